"""Quality and throughput of kg extraction on ml-latest-small-tmdb, scored against gold.

Runs the embedded model (SmolLM2-135M-Instruct, offline) on a fixed random sample of
items with overviews (seed 0), resumably (rerun the same command to continue an
interrupted run), then scores it with ``kg evaluate``'s measures and writes
``benchmarks/results/kg_quality.json`` and ``kg_quality.md``.

    nice -n 10 python benchmarks/kg_quality.py --n 200 --knowledge 40 --lexicon auto

``--lexicon auto`` learns the cross-fitted keyword lexicon (``kg lexicon``: from other
items' curated keywords only) into the run folder and adds its candidates; the report
scores the model's triples and the lexicon's additions apart ("by origin").

Another backend: ``--backend openai --base-url http://host:8000/v1 --model NAME``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kg.build import OutputConfig, SelectConfig, finalize, run_build, select_items  # noqa: E402
from kg.data import dataset_file, read_gold, read_items  # noqa: E402
from kg.evaluate import (  # noqa: E402
    evaluate_run,
    format_report,
    read_labels,
    score_against_gold,
)
from kg.interop import read_recbole  # noqa: E402
from kg.io import atomic_write_json, atomic_write_text  # noqa: E402
from kg.lexicon import build_lexicon  # noqa: E402
from kg.llm.backends import OpenAIConfig, TransformersConfig, make_backend  # noqa: E402
from kg.pipeline import ExtractConfig  # noqa: E402
from kg.rdf import Namespaces, new_dataset, query  # noqa: E402
from kg.resolve import ResolveConfig  # noqa: E402
from kg.schema import load_schema  # noqa: E402
from kg.text import EvidenceIndex  # noqa: E402

log = logging.getLogger("kg_quality")
TEXT_RELATIONS = "keyword,features_character,set_in,set_in_period,genre"


def _run_counters(out: Path, mode: str) -> dict:
    """Sum the per-invocation counters of one mode (a resumed build has several)."""
    total: dict[str, float] = {
        "invocations": 0,
        "items": 0,
        "seconds": 0.0,
        "calls": 0,
        "cache_hits": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }
    for path in sorted((out / "runs").glob("*.json")):
        rec = json.loads(path.read_text())
        if rec.get("mode") != mode:
            continue
        total["invocations"] += 1
        total["items"] += rec["items_done"] + rec["items_failed"]
        for k in ("seconds", "calls", "cache_hits", "prompt_tokens", "completion_tokens"):
            total[k] += rec[k]
    rate = round(total["items"] / total["seconds"], 4) if total["seconds"] else None
    total["seconds"] = round(total["seconds"], 1)
    return {**total, "items_per_s": rate}


def store_benchmark(kg_file: Path, repeats: int = 1) -> dict:
    """rdflib's in-memory store vs Oxigraph (oxrdflib) on an imported KG: load, SPARQL, export."""
    data = read_recbole(kg_file)
    ns = Namespaces()
    triples = [
        (ns.entity[f"Entity/{h}"], ns.ont[r], ns.entity[f"Entity/{t}"]) for h, r, t in data.triples
    ]
    sparql = "SELECT ?r (COUNT(*) AS ?n) WHERE { ?s ?r ?o } GROUP BY ?r ORDER BY DESC(?n) LIMIT 5"
    out: dict = {"kg": kg_file.name, "triples": len(triples)}
    for store in ("default", "oxigraph"):
        try:
            ds = new_dataset(store)
        except Exception as exc:  # oxrdflib missing
            out[store] = {"error": str(exc)}
            continue
        t0 = time.perf_counter()
        g = ds.default_graph
        for t in triples:
            g.add(t)
        t1 = time.perf_counter()
        rows = query(ds, sparql)
        t2 = time.perf_counter()
        ds.serialize(format="nquads")
        t3 = time.perf_counter()
        out[store] = {
            "add_s": round(t1 - t0, 2),
            "sparql_group_count_s": round(t2 - t1, 2),
            "nquads_export_s": round(t3 - t2, 2),
            "top_relation": rows[0] if rows else None,
        }
    return out


def genre_word_baseline(sample, gold, items, schema) -> dict:
    """Deterministic reference, no model: every genre whose spelling occurs in the text."""
    preds = []
    for it in sample:
        ev = EvidenceIndex(it.evidence)
        for genre in schema.vocabularies["Genre"]:
            if any(
                ev.supports(x) for x in schema.vocabulary_spellings("Genre", genre) if len(x) > 2
            ):
                preds.append((it.item_id, "genre", genre, "Genre"))
    by_id = {it.item_id: it for it in items}
    return score_against_gold(
        preds, gold, by_id, {it.item_id for it in sample}, schema, relations=["genre"]
    )["genre"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", default="ml-latest-small-tmdb")
    ap.add_argument("--items", help="items TSV (default: the dataset's)")
    ap.add_argument("--gold", help="gold facts TSV (default: the dataset's)")
    ap.add_argument("--n", type=int, default=200, help="items in the text-mode sample")
    ap.add_argument(
        "--knowledge",
        type=int,
        default=40,
        help="items (first of the sample) for knowledge mode; 0 = off",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--relations", default=TEXT_RELATIONS, help="relations asked for in text mode ('' = all)"
    )
    ap.add_argument("--backend", default="embedded", choices=["embedded", "transformers", "openai"])
    ap.add_argument("--model")
    ap.add_argument("--base-url")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    ap.add_argument("--max-new-tokens", type=int, default=120)
    ap.add_argument(
        "--batch-size", type=int, default=32, help="items decoded together (embedded/transformers)"
    )
    ap.add_argument(
        "--lexicon",
        default="",
        help="keyword lexicon file, or 'auto' to learn it into the run folder",
    )
    ap.add_argument("--lexicon-max", type=int, default=8)
    ap.add_argument("--out", default=str(REPO / "runs" / "kg" / "kg_quality"))
    ap.add_argument("--labels", default=str(REPO / "tests" / "kg" / "fixtures" / "hand_labels.tsv"))
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "kg_quality.json"))
    ap.add_argument(
        "--score-only", action="store_true", help="do not extract; score what the run folder holds"
    )
    ap.add_argument(
        "--store-bench", help="RecBole .kg file: also time rdflib's memory store vs Oxigraph on it"
    )
    ap.add_argument("-q", "--quiet", action="store_true")
    return ap.parse_args(argv)


def extract(
    args: argparse.Namespace,
    schema,
    sample: list,
    out: Path,
    relations: tuple[str, ...],
    lexicon: str,
) -> None:
    """Build the KG of the sample with the chosen LLM (text mode, then --knowledge items), or with
    --score-only just the item labels of a build already in ``out``."""
    if args.score_only:
        finalize(out, schema, sample)
        return
    backend = make_backend(
        args.backend,
        openai=OpenAIConfig(base_url=args.base_url, model=args.model)
        if args.backend == "openai"
        else None,
        transformers=TransformersConfig(
            model_path=args.model or "", batch_size=args.batch_size, threads=args.threads
        ),
    )
    resolve_cfg = ResolveConfig(skip_types=tuple(schema.vocabularies))
    start = time.perf_counter()
    run_build(
        sample,
        schema,
        backend,
        out,
        ExtractConfig(
            max_new_tokens=args.max_new_tokens,
            relations=relations,
            lexicon=lexicon,
            lexicon_max=args.lexicon_max,
        ),
        resolve_cfg,
        OutputConfig(),
        quiet=args.quiet,
    )
    if args.knowledge:
        run_build(
            sample[: args.knowledge],
            schema,
            backend,
            out,
            ExtractConfig(mode="knowledge", max_new_tokens=args.max_new_tokens),
            resolve_cfg,
            OutputConfig(),
            quiet=args.quiet,
        )
    finalize(
        out, schema, sample
    )  # item labels for all sampled items, not only the knowledge subset
    log.info("extraction finished in %.0fs", time.perf_counter() - start)
    backend.close()


def write_markdown(path: Path, results: dict, table: str, n_items: int, seed: int) -> None:
    """The human-readable side of the results file: the quality table, throughput, the no-model reference."""
    md = [
        f"# kg quality ({results['model']}, {n_items} items, seed {seed})",
        "",
        "Command: `" + results["command"] + "`",
        "",
        "```",
        table,
        "```",
        "",
        "Throughput: " + json.dumps(results["throughput"]),
        "",
        "Deterministic reference (no model): every genre whose spelling occurs in the text: "
        + json.dumps(results["baseline_genre_words_in_text"]),
    ]
    atomic_write_text(path, "\n".join(md) + "\n")


def main() -> int:
    args = parse_args()
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )

    schema = load_schema("films")
    items_path = Path(args.items) if args.items else dataset_file(args.dataset, "items.tsv")
    gold_path = Path(args.gold) if args.gold else dataset_file(args.dataset, "gold_facts.tsv")
    items = read_items(items_path)
    sample = select_items(items, SelectConfig(sample=args.n, seed=args.seed))
    out = Path(args.out)
    relations = tuple(r for r in args.relations.split(",") if r)
    lexicon = args.lexicon
    if lexicon == "auto":
        lexicon = str(out / "lexicon.json.gz")
        if not Path(lexicon).exists():
            build_lexicon(
                items, read_gold(gold_path), source=f"{args.dataset}:gold_facts.tsv"
            ).save(lexicon)
    extract(args, schema, sample, out, relations, lexicon)
    labels = read_labels(args.labels) if Path(args.labels).exists() else None
    report = evaluate_run(out, schema, items, read_gold(gold_path), labels)
    stats = json.loads((out / "stats.json").read_text())
    results = {
        "command": "nice -n 10 python benchmarks/kg_quality.py " + " ".join(sys.argv[1:]),
        "dataset": args.dataset,
        "sample": {"n": len(sample), "seed": args.seed, "items_with_overview_only": True},
        "backend": args.backend,
        "model": args.model
        or ("SmolLM2-135M-Instruct.Q4_1.gguf" if args.backend == "embedded" else ""),
        "relations_asked": list(relations) or schema.item_relations(),
        "lexicon": {"file": lexicon, "max_per_item": args.lexicon_max} if lexicon else None,
        "throughput": {
            "text": _run_counters(out, "text"),
            "knowledge": _run_counters(out, "knowledge"),
        },
        "rejections": stats["journals"],
        "entities": stats["entities"],
        "graph": {
            k: stats["graph"][k] for k in ("nodes", "edges", "nodes_per_type", "weak_components")
        },
        "quality": report,
        "baseline_genre_words_in_text": genre_word_baseline(
            sample, read_gold(gold_path), items, schema
        ),
    }
    if args.store_bench:
        results["rdf_store"] = store_benchmark(Path(args.store_bench))
    atomic_write_json(args.results, results)
    table = format_report(report)
    write_markdown(Path(args.results).with_suffix(".md"), results, table, len(sample), args.seed)
    print(table)
    print(json.dumps(results["throughput"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
