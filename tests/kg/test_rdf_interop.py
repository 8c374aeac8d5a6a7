"""RDF: layout, provenance, round trips in every format, SPARQL, networkx; arrays and RecBole."""

from __future__ import annotations

import numpy as np
import pytest
from rdflib import Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import PROV, RDFS, SKOS

from kg.data import find_dataset
from kg.errors import DataFormatError
from kg.interop import KGData, read_arrays, read_recbole, write_arrays, write_recbole
from kg.rdf import (
    ItemGraph,
    Namespaces,
    build_dataset,
    export,
    graph_stats,
    load,
    query,
    to_networkx,
)
from kg.resolve import Entity

NS = Namespaces()


def small_dataset():
    entities = [
        Entity("Character", "Woody", ["woody"], "woody"),
        Entity("Keyword", "toy", ["toys"], "toy"),
        Entity("Person", "John Lasseter", [], "john-lasseter"),
    ]
    graphs = [
        ItemGraph(
            "1",
            "text",
            [
                ("features_character", "Woody", "Character", "woody"),
                ("keyword", "toys", "Keyword", "toy"),
            ],
            "smollm2",
            "p3",
            "films@3",
            "run-a",
            "2026-01-01T00:00:00+00:00",
        ),
        ItemGraph(
            "2",
            "text",
            [("keyword", "toy", "Keyword", "toy")],
            "smollm2",
            "p3",
            "films@3",
            "run-a",
            None,
        ),
        ItemGraph(
            "1",
            "llm_knowledge",
            [("directed_by", "John Lasseter", "Person", "john-lasseter")],
            "smollm2",
            "p3",
            "films@3",
            "run-b",
            None,
        ),
    ]
    return build_dataset(
        graphs, entities, {"1": ("Toy Story", "1995"), "2": ("Toy Story 2", "1999")}, "Film"
    )


def test_layout_and_provenance():
    ds = small_dataset()
    item = URIRef(NS.base + "item/1")
    woody = URIRef(NS.base + "entity/Character/woody")
    text_graph = ds.graph(URIRef(NS.base + "graph/text/1"))
    assert (item, URIRef(NS.base + "ont/features_character"), woody) in text_graph
    assert (woody, RDFS.label, Literal("Woody")) in ds
    assert (woody, SKOS.altLabel, Literal("woody")) in ds
    g = URIRef(NS.base + "graph/llm_knowledge/1")
    assert (g, URIRef(NS.base + "ont/source"), Literal("llm_knowledge")) in ds
    assert (g, PROV.wasDerivedFrom, item) in ds
    # knowledge triples are not in the grounded graph
    assert not any(p == URIRef(NS.base + "ont/directed_by") for _, p, _ in text_graph)


@pytest.mark.parametrize("name", ["kg.nq", "kg.nq.gz", "kg.trig"])
def test_quad_formats_round_trip(tmp_path, name):
    ds = small_dataset()
    export(ds, tmp_path / name)
    back = load(tmp_path / name)
    assert set(back.quads((None, None, None, None))) == set(ds.quads((None, None, None, None)))


@pytest.mark.parametrize("name", ["kg.ttl", "kg.nt", "kg.nt.gz"])
def test_triple_formats_round_trip(tmp_path, name):
    from rdflib import Graph

    ds = small_dataset()
    export(ds, tmp_path / name)
    union = Graph()
    for s, p, o, _ in ds.quads((None, None, None, None)):
        union.add((s, p, o))
    back = load(tmp_path / name)
    assert isomorphic(back.default_graph, union)


def test_sparql():
    rows = query(
        small_dataset(),
        f"""
        PREFIX ont: <{NS.base}ont/>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        SELECT ?film ?kw WHERE {{
          GRAPH ?g {{ ?item ont:keyword ?k }} ?g ont:source "text" . ?item rdfs:label ?film . ?k rdfs:label ?kw
        }} ORDER BY ?film""",
    )
    assert rows == [{"film": "Toy Story", "kw": "toy"}, {"film": "Toy Story 2", "kw": "toy"}]
    assert query(small_dataset(), "ASK { ?s ?p ?o }") == [{"ask": "true"}]


def test_networkx_view_and_stats():
    g = to_networkx(small_dataset())
    assert g.number_of_edges() == 4
    assert g.nodes[NS.base + "entity/Keyword/toy"]["label"] == "toy"
    stats = graph_stats(g)
    assert stats["nodes_per_type"] == {"Character": 1, "Film": 2, "Keyword": 1, "Person": 1}
    assert stats["edges_per_relation"]["keyword"] == 2
    assert stats["weak_components"] == 1 and stats["degree"]["max"] == 3


def test_unknown_format_is_a_clear_error(tmp_path):
    with pytest.raises(DataFormatError, match="unknown RDF format"):
        export(small_dataset(), tmp_path / "kg.xyz")


def test_arrays_and_recbole_round_trip(tmp_path):
    data = KGData(
        [
            ("item/2", "genre", "Genre/drama"),
            ("item/1", "genre", "Genre/drama"),
            ("item/1", "keyword", "Keyword/toy"),
        ],
        {"1": "item/1", "2": "item/2", "10": "item/10"},
    )
    arrays = data.to_arrays()
    assert arrays.item_ids == ["1", "2", "10"]
    assert arrays.entity_ids[:3] == ["item/1", "item/2", "item/10"]  # items first
    assert arrays.heads.tolist() == [1, 0, 0] and arrays.relations.tolist() == [0, 0, 1]
    write_arrays(arrays, tmp_path)
    back = read_arrays(tmp_path)
    assert np.array_equal(back.tails, arrays.tails) and back.entity_ids == arrays.entity_ids
    kg_path, link_path = write_recbole(data, tmp_path, "tiny")
    again = read_recbole(kg_path, link_path)
    assert again.triples == data.triples and again.item_entity == data.item_entity


def test_recbole_errors_name_file_and_line(tmp_path):
    path = tmp_path / "x.kg"
    path.write_text("head_id:token\trelation_id:token\ttail_id:token\na\tb\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"x.kg:2: expected 3 fields"):
        read_recbole(path)
    path.write_text("head:token\trelation_id:token\ttail_id:token\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"field 'head_id'"):
        read_recbole(path)


def test_import_ml100k_freebase_kg():
    ml100k = find_dataset("ml-100k")
    data = read_recbole(ml100k / "ml-100k.kg", ml100k / "ml-100k.link")
    assert len(data.triples) == 91631 and len(data.item_entity) > 1500
    arrays = data.to_arrays()
    assert arrays.num_triples == 91631 and len(arrays.relation_ids) == 24
    assert arrays.heads.max() < len(arrays.entity_ids)
