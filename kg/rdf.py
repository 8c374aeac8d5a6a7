"""RDF storage, export and import (rdflib), plus the networkx view.

Layout (``BASE`` defaults to ``https://w3id.org/graphrec/kg/``)::

    BASE item/<id>                 the catalogue items        (a ont:<ItemType>)
    BASE entity/<Type>/<slug>      resolved entities          (a ont:<Type>; rdfs:label; skos:altLabel)
    BASE ont/<relation>            relations and types
    BASE graph/<source>/<item id>  one named graph per item and source with its extracted triples

Provenance of every named graph (default graph): ``prov:wasDerivedFrom`` the item,
``ont:source`` (``text`` or ``llm_knowledge``), ``ont:model``, ``ont:promptVersion``,
``ont:schemaVersion``, ``ont:runId``, ``prov:generatedAtTime``.  Grounded and
knowledge triples live in different graphs, so they are never mixed silently.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from rdflib import RDF, RDFS, XSD, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import PROV, SKOS

from kg.errors import DataFormatError
from kg.io import atomic_write_bytes, read_text_any

if TYPE_CHECKING:  # kg.resolve loads numpy; the RDF layer needs only the type
    from kg.resolve import Entity

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://w3id.org/graphrec/kg/"
FORMATS = {".nq": "nquads", ".nt": "nt", ".ttl": "turtle", ".trig": "trig"}


@dataclass(frozen=True)
class Namespaces:
    """The project IRIs under one base."""

    base: str = DEFAULT_BASE

    @property
    def item(self) -> Namespace:
        return Namespace(self.base + "item/")

    @property
    def entity(self) -> Namespace:
        return Namespace(self.base + "entity/")

    @property
    def ont(self) -> Namespace:
        return Namespace(self.base + "ont/")

    @property
    def graph(self) -> Namespace:
        return Namespace(self.base + "graph/")

    def item_iri(self, item_id: str) -> URIRef:
        return self.item[quote(str(item_id), safe="")]

    def entity_iri(self, entity_type: str, slug: str) -> URIRef:
        return self.entity[f"{quote(entity_type, safe='')}/{quote(slug, safe='')}"]

    def graph_iri(self, source: str, item_id: str) -> URIRef:
        return self.graph[f"{quote(source, safe='')}/{quote(str(item_id), safe='')}"]

    def item_id_of(self, iri: str) -> str | None:
        prefix = str(self.item)
        return unquote(iri[len(prefix) :]) if iri.startswith(prefix) else None


def new_dataset(store: str = "default") -> Dataset:
    """An empty dataset; ``store="oxigraph"`` uses pyoxigraph through oxrdflib (if installed)."""
    if store in ("default", "memory"):
        return Dataset(default_union=True)
    if store == "oxigraph":
        try:
            return Dataset(store="Oxigraph", default_union=True)
        except Exception as exc:  # plugin missing
            raise DataFormatError(
                f"the oxigraph store needs oxrdflib: pip install oxrdflib ({exc})"
            ) from None
    raise DataFormatError(f"unknown RDF store {store!r} (default or oxigraph)")


def bind(ds: Dataset | Graph, ns: Namespaces) -> None:
    ds.bind("item", ns.item)
    ds.bind("ent", ns.entity)
    ds.bind("ont", ns.ont)
    ds.bind("kgg", ns.graph)
    ds.bind("skos", SKOS)
    ds.bind("prov", PROV)


@dataclass
class ItemGraph:
    """One item's triples from one source, with provenance."""

    item_id: str
    source: str
    triples: list[tuple[str, str, str, str]]  # (relation, tail surface, tail type, entity slug)
    model: str
    prompt_version: str
    schema_version: str
    run_id: str
    time: str | None = None


def build_dataset(
    item_graphs: Iterable[ItemGraph],
    entities: Iterable[Entity],
    items: dict[str, tuple[str, str]],
    item_type: str,
    ns: Namespaces | None = None,
    store: str = "default",
) -> Dataset:
    """Assemble the dataset: entities (labels, aliases, types), items, per-item named graphs."""
    ns = ns or Namespaces()
    ds = new_dataset(store)
    bind(ds, ns)
    default = ds.default_graph
    for ent in entities:
        iri = ns.entity_iri(ent.type, ent.slug)
        default.add((iri, RDF.type, ns.ont[ent.type]))
        default.add((iri, RDFS.label, Literal(ent.label)))
        for alias in ent.aliases:
            default.add((iri, SKOS.altLabel, Literal(alias)))
    for item_id, (title, year) in items.items():
        iri = ns.item_iri(item_id)
        default.add((iri, RDF.type, ns.ont[item_type]))
        if title:
            default.add((iri, RDFS.label, Literal(title)))
        if year:
            default.add((iri, ns.ont.year, Literal(year)))
    for ig in item_graphs:
        g_iri = ns.graph_iri(ig.source, ig.item_id)
        graph = ds.graph(g_iri)
        subject = ns.item_iri(ig.item_id)
        for relation, _tail, tail_type, slug in ig.triples:
            graph.add((subject, ns.ont[relation], ns.entity_iri(tail_type, slug)))
        default.add((g_iri, RDF.type, PROV.Entity))
        default.add((g_iri, PROV.wasDerivedFrom, subject))
        default.add((g_iri, ns.ont.source, Literal(ig.source)))
        default.add((g_iri, ns.ont.model, Literal(ig.model)))
        default.add((g_iri, ns.ont.promptVersion, Literal(ig.prompt_version)))
        default.add((g_iri, ns.ont.schemaVersion, Literal(ig.schema_version)))
        default.add((g_iri, ns.ont.runId, Literal(ig.run_id)))
        if ig.time:
            default.add((g_iri, PROV.generatedAtTime, Literal(ig.time, datatype=XSD.dateTime)))
    return ds


def _format_of(path: Path) -> tuple[str, bool]:
    suffixes = path.suffixes
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if ext not in FORMATS:
        raise DataFormatError(
            f"unknown RDF format {ext!r}; use one of {', '.join(FORMATS)} (optionally .gz)",
            path=path,
        )
    return FORMATS[ext], gz


def _union_graph(ds: Dataset) -> Graph:
    g = Graph()
    for prefix, iri in ds.namespaces():
        g.bind(prefix, iri, override=True)
    for s, p, o, _c in ds.quads((None, None, None, None)):
        g.add((s, p, o))
    return g


def export(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` as N-Quads / TriG (named graphs kept) or Turtle / N-Triples (union of graphs).

    A ``.gz`` suffix compresses.  Written atomically.
    """
    path = Path(path)
    fmt, gz = _format_of(path)
    target: Dataset | Graph = ds if fmt in ("nquads", "trig") else _union_graph(ds)
    data = target.serialize(format=fmt, encoding="utf-8")
    atomic_write_bytes(path, data, gzipped=gz)
    return path


def load(path: str | Path, store: str = "default") -> Dataset:
    """Read an RDF file (format from the extension, ``.gz`` allowed) into a dataset."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError("file not found", path=path)
    fmt, _ = _format_of(path)
    ds = new_dataset(store)
    text = read_text_any(path)
    try:
        if fmt in ("nquads", "trig"):
            ds.parse(data=text, format=fmt)
        else:
            ds.default_graph.parse(data=text, format=fmt)
    except Exception as exc:  # rdflib raises parser-specific types
        raise DataFormatError(f"cannot parse as {fmt}: {exc}", path=path) from None
    return ds


def query(ds: Dataset, sparql: str) -> list[dict[str, str]]:
    """Run a SPARQL SELECT/ASK over the union of all graphs; rows as {variable: value}."""
    result = ds.query(sparql)
    if result.type == "ASK":
        return [{"ask": str(bool(result.askAnswer)).lower()}]
    if result.type != "SELECT":
        raise DataFormatError("only SELECT and ASK queries are supported")
    names = [str(v) for v in result.vars or []]
    rows: list[dict[str, str]] = []
    for row in result:
        assert isinstance(row, tuple)  # a SELECT result row (a ResultRow tuple)
        rows.append({n: ("" if row[i] is None else str(row[i])) for i, n in enumerate(names)})
    return rows


def to_networkx(ds: Dataset, ns: Namespaces | None = None):
    """MultiDiGraph view: nodes are items and entities (attributes ``label``, ``type``);
    one edge per extracted triple (key = relation, attribute ``source``)."""
    import networkx as nx  # type: ignore[import-untyped]

    ns = ns or Namespaces()
    g = nx.MultiDiGraph()
    ont = str(ns.ont)
    labels: dict[str, str] = {}
    types: dict[str, str] = {}
    sources: dict[str, str] = {}
    for s, p, o, _ in ds.quads((None, None, None, None)):
        if p == RDFS.label:
            labels[str(s)] = str(o)
        elif p == RDF.type and str(o).startswith(ont):
            types[str(s)] = str(o)[len(ont) :]
        elif p == ns.ont.source:
            sources[str(s)] = str(o)
    graph_prefix = str(ns.graph)
    for s, p, o, c in ds.quads((None, None, None, None)):
        ctx = str(getattr(c, "identifier", c)) if c is not None else ""
        if not ctx.startswith(graph_prefix) or not isinstance(o, URIRef):
            continue
        rel = str(p)[len(ont) :] if str(p).startswith(ont) else str(p)
        g.add_edge(str(s), str(o), key=rel, relation=rel, source=sources.get(ctx, ""))
    for node in g.nodes:
        g.nodes[node]["label"] = labels.get(node, "")
        g.nodes[node]["type"] = types.get(node, "")
    return g


def graph_stats(g) -> dict[str, Any]:
    """Entities per type, relation counts, degree distribution and components."""
    import networkx as nx  # type: ignore[import-untyped]

    degrees = sorted((d for _, d in g.degree()), reverse=False)
    n = len(degrees)
    components = list(nx.weakly_connected_components(g)) if n else []
    hist = Counter(degrees)
    return {
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "nodes_per_type": dict(
            sorted(Counter(d.get("type", "") for _, d in g.nodes(data=True)).items())
        ),
        "edges_per_relation": dict(sorted(Counter(k for _, _, k in g.edges(keys=True)).items())),
        "degree": {
            "min": degrees[0] if n else 0,
            "median": degrees[n // 2] if n else 0,
            "mean": round(sum(degrees) / n, 3) if n else 0.0,
            "max": degrees[-1] if n else 0,
            "histogram": {str(k): v for k, v in sorted(hist.items())[:30]},
        },
        "weak_components": len(components),
        "largest_component": max((len(c) for c in components), default=0),
    }
