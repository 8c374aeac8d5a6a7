"""Build orchestration: select items, extract (resumable), then assemble the graph.

Output folder layout (``--out runs/kg/NAME``)::

    journal.text.jsonl / journal.knowledge.jsonl   per-item journals (resume state)
    cache.sqlite                                   raw responses (unless --cache elsewhere)
    triples.tsv                                    item, relation, tail, type, entity, source
    entities.tsv                                   resolved entities with aliases
    kg.nq.gz, kg.ttl                               RDF (named graphs + provenance / union)
    graphrec/NAME.kg, NAME.link, kg_arrays.npz, *_map.tsv   what graphrec consumes
    stats.json                                     graph statistics and cumulative run counters
    runs/<run id>.json                             counters of each build invocation
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Dataset

from kg.data import Item, dataset_file, read_items
from kg.errors import BackendError, ConfigError
from kg.interop import KGData, write_arrays, write_recbole
from kg.io import atomic_write_json, atomic_write_text
from kg.llm.backends.base import LLMBackend
from kg.llm.cache import ResponseCache
from kg.llm.journal import read_journal
from kg.lock import folder_lock
from kg.pipeline import MODES, ExtractConfig, Prices, RunStats, extract_items, journal_name
from kg.prompt import PROMPT_VERSION
from kg.rdf import (
    DEFAULT_BASE,
    FORMATS,
    ItemGraph,
    Namespaces,
    build_dataset,
    export,
    graph_stats,
    to_networkx,
)
from kg.resolve import Resolution, ResolveConfig, resolve
from kg.schema import Schema

log = logging.getLogger(__name__)


@dataclass
class SelectConfig:
    """Which items to process.

    Attributes:
        limit: the first N items with text (0 = all).
        sample: a fixed random sample of N items with text (0 = off); same seed, same items.
        seed: seed of the sample.
        item_ids: explicit item ids (overrides limit/sample).
    """

    limit: int = 0
    sample: int = 0
    seed: int = 0
    item_ids: list[str] = field(default_factory=list)


@dataclass
class OutputConfig:
    """What the finished graph is written as.

    Attributes:
        formats: RDF files to write (``nq.gz``, ``nq``, ``ttl``, ``nt``, ``trig``, ``nt.gz`` ...).
        base_iri: namespace root of all IRIs.
        include_knowledge_in_export: also put ``llm_knowledge`` triples into the graphrec
            export (RDF always has both, in separate named graphs).
        store: rdflib store (``default`` in-memory or ``oxigraph``).
    """

    formats: tuple[str, ...] = ("nq.gz", "ttl")
    base_iri: str = DEFAULT_BASE
    include_knowledge_in_export: bool = False
    store: str = "default"

    def __post_init__(self) -> None:
        # checked when the build is configured, so a typo fails before any LLM call
        known = sorted(f"{ext[1:]}{gz}" for ext in FORMATS for gz in ("", ".gz"))
        bad = [f for f in self.formats if f.removesuffix(".gz") not in {e[1:] for e in FORMATS}]
        if bad:
            raise ConfigError(
                f"formats: unknown RDF format {bad[0][:200]!r}; use {', '.join(known)}"
            )


def select_items(items: list[Item], cfg: SelectConfig, mode: str = "text") -> list[Item]:
    """Apply the selection; sampling draws only from items that have something to extract."""
    if cfg.item_ids:
        wanted = {str(i) for i in cfg.item_ids}
        chosen = [it for it in items if it.item_id in wanted]
        missing = wanted - {it.item_id for it in chosen}
        if missing:
            raise ConfigError(f"unknown item ids: {', '.join(sorted(missing)[:10])}")
        return chosen
    if cfg.sample:
        pool = [it for it in items if (it.text if mode == "text" else it.title)]
        rng = random.Random(cfg.seed)
        picked = rng.sample(range(len(pool)), min(cfg.sample, len(pool)))
        return [pool[i] for i in sorted(picked)]
    if cfg.limit:
        return [it for it in items if (it.text if mode == "text" else it.title)][: cfg.limit]
    return items


def load_items_for(
    dataset: str | None, items_path: str | None, text_columns: tuple[str, ...]
) -> tuple[list[Item], Path]:
    if items_path:
        path = Path(items_path)
    elif dataset:
        path = dataset_file(dataset, "items.tsv")
    else:
        raise ConfigError("give --dataset NAME or --items PATH")
    return read_items(path, text_columns=text_columns), path


def run_build(
    items: list[Item],
    schema: Schema,
    backend: LLMBackend,
    out: str | Path,
    extract: ExtractConfig | None = None,
    resolve_cfg: ResolveConfig | None = None,
    output: OutputConfig | None = None,
    cache_path: str | Path | None = "default",
    prices: Prices | None = None,
    quiet: bool = False,
) -> RunStats:
    """Extract (resumably) and then assemble the outputs; returns this invocation's counters."""
    out = Path(out)
    # one writer per output folder: two builds would pay every call twice and journal every item twice
    with folder_lock(out, "kg build output"):
        return _run_build_locked(
            items, schema, backend, out, extract, resolve_cfg, output, cache_path, prices, quiet
        )


def _run_build_locked(
    items: list[Item],
    schema: Schema,
    backend: LLMBackend,
    out: Path,
    extract: ExtractConfig | None,
    resolve_cfg: ResolveConfig | None,
    output: OutputConfig | None,
    cache_path: str | Path | None,
    prices: Prices | None,
    quiet: bool,
) -> RunStats:
    """:func:`run_build` once ``out``'s lock is held."""
    extract = extract or ExtractConfig()
    cache = None
    if cache_path is not None:
        cache = ResponseCache(out / "cache.sqlite" if cache_path == "default" else cache_path)
    try:
        stats = extract_items(items, schema, backend, out, extract, cache, prices, quiet=quiet)
    except (BackendError, KeyboardInterrupt) as exc:  # unavailable, or refused (e.g. HTTP 401)
        partial = getattr(exc, "kg_stats", None)
        if partial is not None:  # calls and tokens of a stopped run were spent: keep the counters
            atomic_write_json(
                out / "runs" / f"{partial.run_id}.json", {"mode": extract.mode, **partial.to_dict()}
            )
        raise
    finally:
        if cache is not None:
            cache.close()
    atomic_write_json(
        out / "runs" / f"{stats.run_id}.json", {"mode": extract.mode, **stats.to_dict()}
    )
    finalize(out, schema, items, backend.model, resolve_cfg, output, quiet=quiet)
    return stats


#: one kept fact of a journal: item, relation, tail, tail type, source
_Row = tuple[str, str, str, str, str]


@dataclass
class _Journals:
    """What the journals of a build folder hold, read once for :func:`finalize`."""

    rows: list[_Row] = field(default_factory=list)
    meta: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # provenance
    totals: dict[str, Counter[str]] = field(default_factory=dict)
    titles: dict[str, tuple[str, str]] = field(default_factory=dict)


def _read_journals(out: Path, model: str) -> _Journals:
    found = _Journals()
    for mode in MODES:
        path = out / journal_name(mode)
        if not path.exists():
            continue
        fingerprint, records = read_journal(path)
        tot: Counter[str] = Counter()
        rejections: Counter[str] = Counter()
        for rec in records:
            tot[f"items_{rec['status']}"] += 1
            if rec["status"] != "done":
                continue
            source = rec.get("source", "text")
            for relation, tail, ttype in rec.get("triples", []):
                found.rows.append((rec["item_id"], relation, tail, ttype, source))
            for k in ("calls", "candidates", "candidates_supported", "unparsed"):
                tot[k] += int(rec.get(k, 0))
            rejections.update(rec.get("rejections", {}))
            found.meta[(rec["item_id"], source)] = {
                "run_id": rec.get("run_id", ""),
                "time": rec.get("time"),
                "model": fingerprint.get("backend", {}).get("model", model),
            }
            if rec.get("title"):
                found.titles[rec["item_id"]] = (rec["title"], rec.get("year", ""))
        tot["kept"] = sum(
            1 for r in found.rows if r[4] == ("llm_knowledge" if mode == "knowledge" else "text")
        )
        found.totals[mode] = tot
        found.totals[mode + "_rejections"] = rejections
    return found


def _write_tables(out: Path, rows: list[_Row], resolution: Resolution) -> list[_Row]:
    """Write triples.tsv and entities.tsv; the rows as (item, relation, type, entity slug, source)."""
    lines = ["item_id\trelation\ttail\ttail_type\tentity\tsource\tsurface"]
    resolved: list[_Row] = []
    for item_id, relation, tail, ttype, source in rows:
        ent = resolution.lookup(ttype, tail)
        resolved.append((item_id, relation, ttype, ent.slug, source))
        lines.append(
            "\t".join([item_id, relation, ent.label, ttype, f"{ttype}/{ent.slug}", source, tail])
        )
    atomic_write_text(out / "triples.tsv", "\n".join(lines) + "\n")
    ent_lines = ["entity\ttype\tlabel\taliases\tmentions"]
    for ent in resolution.entities:
        ent_lines.append(
            f"{ent.type}/{ent.slug}\t{ent.type}\t{ent.label}\t{'|'.join(ent.aliases)}\t{ent.mentions}"
        )
    atomic_write_text(out / "entities.tsv", "\n".join(ent_lines) + "\n")
    return resolved


def _write_rdf(
    out: Path,
    journals: _Journals,
    resolved: list[_Row],
    resolution: Resolution,
    schema: Schema,
    items: list[Item] | None,
    output: OutputConfig,
) -> tuple[Dataset, Namespaces, set[str]]:
    """Build the RDF dataset (one named graph per item and source), export it in every
    format asked; the dataset, its namespaces and the ids of the items done."""
    by_graph: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
    for (item_id, relation, ttype, slug, source), row in zip(resolved, journals.rows):
        by_graph.setdefault((item_id, source), []).append((relation, row[2], ttype, slug))
    for key in journals.meta:  # items with zero kept triples still get a (empty) provenance record
        by_graph.setdefault(key, [])
    item_meta = {**journals.titles, **{it.item_id: (it.title, it.year) for it in (items or [])}}
    done_items = {k[0] for k in by_graph}
    ns = Namespaces(output.base_iri)
    meta = journals.meta
    graphs = [
        ItemGraph(
            item_id,
            source,
            triples,
            meta[(item_id, source)]["model"],
            PROMPT_VERSION,
            f"{schema.name}@{schema.version}",
            meta[(item_id, source)]["run_id"],
            meta[(item_id, source)]["time"],
        )
        for (item_id, source), triples in sorted(by_graph.items())
    ]
    ds = build_dataset(
        graphs,
        resolution.entities,
        {i: item_meta.get(i, ("", "")) for i in sorted(done_items)},
        schema.item_type,
        ns,
        output.store,
    )
    for fmt in output.formats:
        export(ds, out / f"kg.{fmt}")
    return ds, ns, done_items


def _write_graphrec_export(
    out: Path, resolved: list[_Row], done_items: set[str], output: OutputConfig
) -> None:
    """The graphrec export: grounded triples (knowledge ones only on request)."""
    kgdata = KGData()
    for item_id, relation, ttype, slug, source in resolved:
        if source != "text" and not output.include_knowledge_in_export:
            continue
        kgdata.triples.append((f"item/{item_id}", relation, f"{ttype}/{slug}"))
        kgdata.item_entity[item_id] = f"item/{item_id}"
    for item_id in done_items:
        kgdata.item_entity.setdefault(item_id, f"item/{item_id}")
    export_dir = out / "graphrec"
    write_recbole(kgdata, export_dir, out.name or "kg")
    write_arrays(kgdata.to_arrays(), export_dir)


def finalize(
    out: str | Path,
    schema: Schema,
    items: list[Item] | None = None,
    model: str = "",
    resolve_cfg: ResolveConfig | None = None,
    output: OutputConfig | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Assemble journals into resolved entities, RDF, graphrec export and stats."""
    out = Path(out)
    output = output or OutputConfig()
    resolve_cfg = resolve_cfg or ResolveConfig(skip_types=tuple(schema.vocabularies))
    journals = _read_journals(out, model)
    rows = journals.rows
    resolution = resolve(((ttype, tail) for _, _, tail, ttype, _ in rows), resolve_cfg)
    resolved = _write_tables(out, rows, resolution)
    ds, ns, done_items = _write_rdf(out, journals, resolved, resolution, schema, items, output)
    _write_graphrec_export(out, resolved, done_items, output)
    stats = {
        "schema": f"{schema.name}@{schema.version}",
        "prompt_version": PROMPT_VERSION,
        "journals": {k: dict(v) for k, v in journals.totals.items()},
        "entities": len(resolution.entities),
        "mentions_merged": len(rows) - len({(t[2], t[3]) for t in resolved}),
        "graph": graph_stats(to_networkx(ds, ns)),
    }
    atomic_write_json(out / "stats.json", stats)
    return stats
