"""Command line: ``python -m kg {build,merge,stats,query,evaluate,lexicon,cache-export,cache-import,import-recbole}``.

Exit codes: 0 success (``build``: also when some items failed and others were
done; the failed ones are retried by the next run); 2 bad input or configuration
(the message names the file, line or option), including a build where the backend
refused the credentials (HTTP 401/403) or a redirect, or where every item failed;
3 backend unavailable (finished items are journaled: rerun the same command to
resume); 130 interrupted (same).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kg.brands import resolve_catalogue_option
from kg.data import Item, catalogue_defaults, dataset_file, read_gold, read_items
from kg.errors import BackendUnavailable, ConfigError, KGError
from kg.evaluate import evaluate_run, format_report, read_labels
from kg.io import atomic_write_json, read_text_any
from kg.known import resolve_known_option
from kg.lexicon import build_lexicon
from kg.llm.backends import LLMBackend, OpenAIConfig, TransformersConfig, make_backend
from kg.llm.cache import ResponseCache
from kg.pipeline import ExtractConfig, Prices
from kg.schema import load_schema

if TYPE_CHECKING:
    from rdflib import Dataset

# kg.build, kg.shard, kg.rdf, kg.interop and kg.resolve are imported by the commands that use
# them: they load rdflib and numpy.  Measured wall time of `python -m kg --help` (2 shared
# cores, best of 3): 0.29 s with every kg import in functions, 0.5 s with the imports above at
# module level, 0.77 s with these five too.

log = logging.getLogger("kg")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


TEXT_COLUMNS_HELP = (
    "comma-separated text columns (default: the dataset's, e.g. overview,tagline for "
    "ml-latest-small-tmdb, title,description for amazon18-scientific)"
)
SCHEMA_HELP = "shipped schema name or a YAML path (default: the dataset's, e.g. films, products)"


def _text_columns(args: argparse.Namespace) -> tuple[str, ...]:
    """The --text-columns given, else the dataset's default ones."""
    if args.text_columns is None:
        return catalogue_defaults(args.dataset).text_columns
    return tuple(c for c in args.text_columns.split(",") if c)


def _schema_name(args: argparse.Namespace) -> str:
    return args.schema or catalogue_defaults(args.dataset).schema


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kg", description="Build knowledge graphs from catalogue text with LLMs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_build(sub)
    _add_graph_commands(sub)
    _add_data_commands(sub)
    return parser


def _add_build(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("build", help="extract facts and build the graph (resumable)")
    _build_input_args(b)
    _build_selection_args(b)
    _build_backend_args(b)
    _build_extraction_args(b)
    _build_step_args(b)
    _build_output_args(b)
    _add_common(b)


def _build_input_args(b: argparse.ArgumentParser) -> None:
    """``kg build``'s catalogue: which items file, which text, which schema."""
    g = b.add_argument_group("input")
    g.add_argument(
        "--dataset", help="dataset folder name under the data dir (e.g. ml-latest-small-tmdb)"
    )
    g.add_argument("--items", help="items TSV (item_id, title, text columns); overrides --dataset")
    g.add_argument("--text-columns", help=TEXT_COLUMNS_HELP)
    g.add_argument("--schema", help=SCHEMA_HELP)


def _build_selection_args(b: argparse.ArgumentParser) -> None:
    """``kg build``'s item selection: a sample, a list, a shard."""
    g = b.add_argument_group("items")
    g.add_argument("--limit", type=int, default=0, help="first N items with text")
    g.add_argument("--sample", type=int, default=0, help="fixed random sample of N items with text")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--item-ids", help="comma-separated item ids")
    g.add_argument(
        "--item-ids-file",
        help="file with one item id per line (e.g. the items a recommender trains on)",
    )
    g.add_argument(
        "--shard",
        default="0/1",
        help="i/n: only the items whose stable id hash mod n is i (0-based); "
        "each shard its own --out; combine with 'kg merge'",
    )


def _build_backend_args(b: argparse.ArgumentParser) -> None:
    """``kg build``'s model backend and its runtime settings."""
    g = b.add_argument_group("model backend")
    g.add_argument("--backend", default="embedded", choices=["embedded", "transformers", "openai"])
    g.add_argument("--model", help="openai: model name; transformers: model folder or .gguf file")
    g.add_argument("--base-url", help="openai: endpoint root, e.g. http://127.0.0.1:8000/v1")
    g.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="openai: variable holding the API key"
    )
    g.add_argument("--concurrency", type=int, default=4, help="openai: requests in flight")
    g.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per request")
    g.add_argument("--max-retries", type=int, default=5, help="openai: retries per call")
    g.add_argument(
        "--json-mode",
        default="auto",
        choices=["auto", "schema", "on", "off"],
        help="openai: structured output (auto: json_schema -> json_object -> plain as the server allows)",
    )
    g.add_argument(
        "--batch-size", type=int, default=32, help="transformers/embedded: items decoded together"
    )
    g.add_argument(
        "--threads", type=int, default=0, help="transformers/embedded: torch CPU threads"
    )
    g.add_argument(
        "--matmul-dtype",
        choices=["auto", "float32", "bfloat16"],
        default="float32",
        help="embedded/transformers fast runner: weight products in float32 (default), bfloat16, or "
        "auto (bfloat16 where the CPU multiplies it natively: ~1.5x faster, some replies differ)",
    )


def _build_extraction_args(b: argparse.ArgumentParser) -> None:
    """``kg build``'s prompt and decoding settings."""
    g = b.add_argument_group("extraction")
    g.add_argument("--mode", default="text", choices=["text", "knowledge"])
    g.add_argument(
        "--gleaning", action="store_true", help="second pass for missed facts (strong models)"
    )
    g.add_argument("--relations", default="", help="comma-separated subset of relations to ask for")
    g.add_argument("--max-new-tokens", type=int, default=160)
    g.add_argument("--chunk-chars", type=int, default=2000)


def _build_step_args(b: argparse.ArgumentParser) -> None:
    """``kg build``'s steps beside the model: lexicons, typed checks, known entities, entity resolution."""
    g = b.add_argument_group("steps beside the model")
    g.add_argument(
        "--lexicon",
        help="keyword lexicon (kg lexicon): deterministic candidates learned from other "
        "items' curated keywords, recorded apart from the model's",
    )
    g.add_argument("--lexicon-max", type=int, default=8, help="most lexicon candidates per item")
    g.add_argument(
        "--lexicon-closed",
        action="store_true",
        help="the lexicon's phrases are its relation's closed vocabulary: other values are "
        "rejected (ill_typed), e.g. products' categories from the shop's own category tree",
    )
    g.add_argument(  # issue 19 (kg/typed.py, kg/brands.py)
        "--catalogue",
        help="catalogue lexicon (brand spans, category vocabulary) learned from the catalogue's "
        "own titles and text, no labels; 'auto' learns it into OUT (products); 'auto-abstain' "
        "gives no brand for a leading name no other title starts (higher precision, lower recall)",
    )
    g.add_argument("--no-typed", action="store_true", help="no typed value checks (kg/typed.py)")
    g.add_argument(
        "--no-embeddings", action="store_true", help="entity resolution by string similarity only"
    )
    g.add_argument(
        "--known",
        help="known entities (kg/known.py): directors and cast credited on other items, "
        "recognised in the text first; 'auto' learns them from the dataset's gold credits (films)",
    )


def _build_output_args(b: argparse.ArgumentParser) -> None:
    """``kg build``'s output folder, cache, cost accounting and formats."""
    g = b.add_argument_group("output")
    g.add_argument(
        "--out", required=True, help="output folder (resumes when it holds the same build)"
    )
    g.add_argument("--cache", help="response cache file (default OUT/cache.sqlite)")
    g.add_argument("--no-cache", action="store_true")
    g.add_argument("--price-prompt", type=float, default=0.0, help="price per 1k prompt tokens")
    g.add_argument(
        "--price-completion", type=float, default=0.0, help="price per 1k completion tokens"
    )
    g.add_argument("--formats", default="nq.gz,ttl", help="RDF outputs, e.g. nq.gz,ttl,nt")
    g.add_argument(
        "--store", default="default", choices=["default", "oxigraph"], help="rdflib store"
    )
    g.add_argument(
        "--export-knowledge",
        action="store_true",
        help="include llm_knowledge triples in the graphrec export",
    )


def _add_graph_commands(sub: argparse._SubParsersAction) -> None:
    """stats, query, evaluate, merge: commands on built graphs."""
    s = sub.add_parser("stats", help="graph statistics of a build folder or RDF file")
    s.add_argument("target", help="build folder or RDF file (.nq/.nt/.ttl[.gz])")
    _add_common(s)

    q = sub.add_parser("query", help="run a SPARQL SELECT/ASK query")
    q.add_argument("target", help="build folder or RDF file")
    q.add_argument("sparql", nargs="?", help="the query text (or use --file)")
    q.add_argument("--file", help="file holding the query")
    q.add_argument("--format", default="tsv", choices=["tsv", "json"])
    _add_common(q)

    e = sub.add_parser("evaluate", help="score a build: grounded precision, gold P/R, hand labels")
    e.add_argument("run", help="build folder")
    e.add_argument("--dataset", default="ml-latest-small-tmdb")
    e.add_argument("--items", help="items TSV (default: the dataset's)")
    e.add_argument("--gold", help="gold facts TSV (default: the dataset's gold_facts.tsv)")
    e.add_argument("--text-columns", help=TEXT_COLUMNS_HELP)
    e.add_argument("--schema", help=SCHEMA_HELP)
    e.add_argument("--labels", help="hand-labelled triples TSV (item_id, relation, tail, correct)")
    e.add_argument("--json", dest="json_out", help="also write the report as JSON here")
    _add_common(e)

    m = sub.add_parser(
        "merge", help="merge shard build folders (kg build --shard i/n) into one graph"
    )
    m.add_argument("shards", nargs="+", help="shard output folders")
    m.add_argument("--out", required=True, help="new folder for the merged build")
    m.add_argument("--schema", default="films")
    m.add_argument(
        "--no-embeddings", action="store_true", help="entity resolution by string similarity only"
    )
    m.add_argument("--formats", default="nq.gz,ttl")
    m.add_argument("--export-knowledge", action="store_true")
    _add_common(m)


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    """lexicon, cache-export, cache-import, import-recbole: inputs and caches."""
    lx = sub.add_parser(
        "lexicon",
        help="learn a cross-fitted lexicon of one relation's curated values (keywords, "
        "categories) from the other items' facts",
    )
    lx.add_argument("--dataset", default="ml-latest-small-tmdb")
    lx.add_argument("--items", help="items TSV (default: the dataset's)")
    lx.add_argument("--gold", help="gold facts TSV (default: the dataset's gold_facts.tsv)")
    lx.add_argument("--text-columns", help=TEXT_COLUMNS_HELP)
    lx.add_argument("--relation", default="keyword")
    lx.add_argument("--folds", type=int, default=2)
    lx.add_argument("--min-hits", type=int, default=2)
    lx.add_argument("--min-ratio", type=float, default=0.1, help="keyphraseness threshold")
    lx.add_argument("--out", required=True, help="lexicon file (.json.gz)")
    _add_common(lx)

    ce = sub.add_parser(
        "cache-export", help="write a response cache as gzipped JSON lines (compact, shippable)"
    )
    ce.add_argument("cache", help="cache.sqlite (or a build folder)")
    ce.add_argument("--out", required=True, help="file .jsonl.gz")
    _add_common(ce)
    ci = sub.add_parser("cache-import", help="seed a response cache from 'kg cache-export' output")
    ci.add_argument("file", help=".jsonl.gz from kg cache-export")
    ci.add_argument("--cache", required=True, help="cache.sqlite to fill (or a build folder)")
    _add_common(ci)

    r = sub.add_parser("import-recbole", help="RecBole .kg/.link -> RDF + graphrec arrays")
    r.add_argument("kg", help="NAME.kg file")
    r.add_argument("--link", help="NAME.link file (default: next to the .kg)")
    r.add_argument("--out", required=True)
    r.add_argument("--formats", default="nt.gz")
    _add_common(r)


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _selected_items(args: argparse.Namespace, mode: str) -> tuple[list[Item], list[Item], Path]:
    """The items this build extracts (--dataset/--items, then --limit/--sample/--item-ids, then
    --shard), with every item of the catalogue and its file (the catalogue lexicons learn from all)."""
    # lazy: loads rdflib/numpy (see the note at the top of this module)
    from kg.build import SelectConfig, load_items_for, select_items
    from kg.shard import in_shard, parse_shard

    items, path = load_items_for(args.dataset, args.items, _text_columns(args))
    ids = [i for i in (args.item_ids or "").split(",") if i]
    if args.item_ids_file:
        ids += [
            line.strip()
            for line in read_text_any(args.item_ids_file, "item id file").splitlines()
            if line.strip()
        ]
    select = SelectConfig(limit=args.limit, sample=args.sample, seed=args.seed, item_ids=ids)
    chosen = select_items(items, select, mode)
    shard, shards = parse_shard(args.shard)
    if shards > 1:
        chosen = [it for it in chosen if in_shard(it.item_id, shard, shards)]
    log.info(
        "%s: %d items, %d selected%s",
        path,
        len(items),
        len(chosen),
        f" (shard {shard}/{shards})" if shards > 1 else "",
    )
    return chosen, items, Path(path)


def _backend(args: argparse.Namespace) -> LLMBackend:
    """The LLM backend the build options name (openai needs --base-url and --model)."""
    openai_cfg = None
    if args.backend == "openai":
        if not args.base_url or not args.model:
            raise ConfigError("--backend openai needs --base-url and --model")
        openai_cfg = OpenAIConfig(
            base_url=args.base_url,
            model=args.model,
            api_key_env=args.api_key_env,
            timeout_s=args.timeout,
            max_retries=args.max_retries,
            concurrency=args.concurrency,
            json_mode=args.json_mode,
        )
    hf_cfg = TransformersConfig(
        model_path=args.model or "",
        batch_size=args.batch_size,
        threads=args.threads,
        matmul_dtype=args.matmul_dtype,
    )
    return make_backend(args.backend, openai=openai_cfg, transformers=hf_cfg)


def _extract_config(args: argparse.Namespace, items: list[Item], path: Path) -> ExtractConfig:
    """The extraction settings; ``items`` (the whole catalogue, from ``path``) feed the learned
    catalogue lexicon and known entities (issue 19)."""
    catalogue = (
        resolve_catalogue_option(args.catalogue, items, args.out, str(path))
        if args.catalogue
        else ""
    )
    gold = (
        dataset_file(args.dataset, "gold_facts.tsv")
        if args.known == "auto" and args.dataset
        else ""
    )
    known = resolve_known_option(args.known, items, gold, args.out) if args.known else ""
    return ExtractConfig(
        mode=args.mode,
        max_new_tokens=args.max_new_tokens,
        chunk_chars=args.chunk_chars,
        gleaning=args.gleaning,
        json_mode=args.json_mode != "off",
        relations=tuple(r for r in args.relations.split(",") if r),
        lexicon=args.lexicon or "",
        lexicon_max=args.lexicon_max,
        lexicon_closed=args.lexicon_closed,
        typed=not args.no_typed,
        catalogue=catalogue,
        known=known,
    )


def _cmd_build(args: argparse.Namespace) -> int:
    # lazy: loads rdflib/numpy (see the note at the top of this module)
    from kg.build import OutputConfig, run_build
    from kg.resolve import ResolveConfig

    schema = load_schema(_schema_name(args))
    chosen, catalogue_items, items_path = _selected_items(args, args.mode)
    # before the backend starts: a bad --formats must fail before any LLM call
    output = OutputConfig(
        formats=tuple(f for f in args.formats.split(",") if f),
        store=args.store,
        include_knowledge_in_export=args.export_knowledge,
    )
    backend = _backend(args)
    resolve_cfg = ResolveConfig(
        use_embeddings=not args.no_embeddings, skip_types=tuple(schema.vocabularies)
    )
    cache = None if args.no_cache else (args.cache or "default")
    try:
        stats = run_build(
            chosen,
            schema,
            backend,
            args.out,
            _extract_config(args, catalogue_items, items_path),
            resolve_cfg,
            output,
            cache,
            Prices(args.price_prompt, args.price_completion),
            quiet=args.quiet,
        )
    finally:
        backend.close()
    summary = {k: v for k, v in stats.to_dict().items() if k != "rejections"}
    print(json.dumps({**summary, "rejections": stats.rejections}, indent=1))
    if stats.items_failed and not stats.items_done:
        first = " ".join((stats.first_error or "").split())
        print(
            f"kg: error: every item of this run failed ({stats.items_failed} failed, none done); "
            f"first error: {first}",
            file=sys.stderr,
        )
        return 2
    return 0


def _load_target(target: str) -> Dataset:
    # lazy: loads rdflib/numpy (see the note at the top of this module)
    from kg import rdf

    path = Path(target)
    if path.is_dir():
        for name in ("kg.nq.gz", "kg.nq", "kg.trig", "kg.ttl", "kg.nt", "kg.nt.gz"):
            if (path / name).exists():
                return rdf.load(path / name)
        raise KGError(f"{path}: no kg.nq.gz / kg.ttl / kg.nt in this folder (run kg build first)")
    return rdf.load(path)


def _cmd_stats(args: argparse.Namespace) -> int:
    # lazy: loads rdflib/numpy (see the note at the top of this module)
    from kg.rdf import graph_stats, to_networkx

    ds = _load_target(args.target)
    print(json.dumps(graph_stats(to_networkx(ds)), indent=1))
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    # lazy: loads rdflib/numpy (see the note at the top of this module)
    from kg.rdf import query

    text = Path(args.file).read_text(encoding="utf-8") if args.file else args.sparql
    if not text:
        raise KGError("give the SPARQL text or --file")
    try:
        rows = query(_load_target(args.target), text)
    except KGError:
        raise
    except Exception as exc:  # rdflib parse errors
        raise KGError(f"SPARQL error: {exc}") from None
    if args.format == "json":
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        if rows:
            print("\t".join(rows[0]))
            for row in rows:
                print("\t".join(v.replace("\t", " ") for v in row.values()))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    schema = load_schema(_schema_name(args))
    items_path = Path(args.items) if args.items else dataset_file(args.dataset, "items.tsv")
    gold_path = Path(args.gold) if args.gold else dataset_file(args.dataset, "gold_facts.tsv")
    items = read_items(items_path, text_columns=_text_columns(args))
    labels = read_labels(args.labels) if args.labels else None
    report = evaluate_run(args.run, schema, items, read_gold(gold_path), labels)
    print(format_report(report))
    if args.json_out:
        atomic_write_json(args.json_out, report)
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    # lazy: loads rdflib/numpy (see the note at the top of this module)
    from kg.build import OutputConfig
    from kg.resolve import ResolveConfig
    from kg.shard import merge_builds

    schema = load_schema(args.schema)
    report = merge_builds(
        args.shards,
        args.out,
        schema,
        resolve_cfg=ResolveConfig(
            use_embeddings=not args.no_embeddings, skip_types=tuple(schema.vocabularies)
        ),
        output=OutputConfig(
            formats=tuple(f for f in args.formats.split(",") if f),
            include_knowledge_in_export=args.export_knowledge,
        ),
        quiet=args.quiet,
    )
    print(json.dumps(report, indent=1))
    return 0


def _cmd_lexicon(args: argparse.Namespace) -> int:
    items_path = Path(args.items) if args.items else dataset_file(args.dataset, "items.tsv")
    gold_path = Path(args.gold) if args.gold else dataset_file(args.dataset, "gold_facts.tsv")
    items = read_items(items_path, text_columns=_text_columns(args))
    lex = build_lexicon(
        items,
        read_gold(gold_path),
        args.relation,
        args.folds,
        args.min_hits,
        args.min_ratio,
        source=f"{items_path.parent.name}:{gold_path.name}",
    )
    lex.save(args.out)
    print(
        json.dumps(
            {
                "out": args.out,
                "relation": lex.relation,
                "folds": lex.folds,
                "phrases_per_fold": [len(e) for e in lex.entries],
                "fingerprint": lex.fingerprint(),
            }
        )
    )
    return 0


def _cache_path(target: str) -> Path:
    path = Path(target)
    # a build folder (existing or to be created) or a .sqlite file
    return path / "cache.sqlite" if path.is_dir() or path.suffix not in (".sqlite", ".db") else path


def _cmd_cache_export(args: argparse.Namespace) -> int:
    path = _cache_path(args.cache)
    if not path.exists():
        raise KGError(f"{path}: no such cache")
    cache = ResponseCache(path)
    try:
        n = cache.export_jsonl(args.out)
    finally:
        cache.close()
    print(json.dumps({"exported": n, "out": args.out}))
    return 0


def _cmd_cache_import(args: argparse.Namespace) -> int:
    cache = ResponseCache(_cache_path(args.cache))
    try:
        added = cache.import_jsonl(args.file)
    finally:
        cache.close()
    print(json.dumps({"imported": added, "cache": str(_cache_path(args.cache))}))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    # lazy: loads rdflib/numpy (see the note at the top of this module)
    from kg.build import OutputConfig
    from kg.interop import read_recbole, write_arrays, write_recbole
    from kg.rdf import Namespaces, bind, export, new_dataset

    # a bad --formats fails before anything is written
    formats = OutputConfig(formats=tuple(f for f in args.formats.split(",") if f)).formats
    data = read_recbole(args.kg, args.link)
    out = Path(args.out)
    write_arrays(data.to_arrays(), out)
    write_recbole(data, out, Path(args.kg).stem)
    ns = Namespaces()
    ds = new_dataset()
    bind(ds, ns)
    g = ds.default_graph
    for h, r, t in data.triples:
        g.add((ns.entity[f"Entity/{h}"], ns.ont[r], ns.entity[f"Entity/{t}"]))
    for item, ent in data.item_entity.items():
        g.add((ns.item_iri(item), ns.ont.linkedEntity, ns.entity[f"Entity/{ent}"]))
    for fmt in formats:
        export(ds, out / f"kg.{fmt}")
    print(json.dumps({"triples": len(data.triples), "linked_items": len(data.item_entity)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args)
    handlers = {
        "build": _cmd_build,
        "stats": _cmd_stats,
        "query": _cmd_query,
        "evaluate": _cmd_evaluate,
        "import-recbole": _cmd_import,
        "merge": _cmd_merge,
        "lexicon": _cmd_lexicon,
        "cache-export": _cmd_cache_export,
        "cache-import": _cmd_cache_import,
    }
    try:
        return handlers[args.command](args)
    except BackendUnavailable as exc:
        print(
            f"kg: backend unavailable: {exc}\nFinished items are saved; rerun the same command to resume.",
            file=sys.stderr,
        )
        return 3
    except KeyboardInterrupt:
        print(
            "kg: interrupted; finished items are saved, rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130
    except KGError as exc:
        print(f"kg: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
