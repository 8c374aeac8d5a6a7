"""The collaborative KG: sources, id mapping, typed edges, HeteroData, agreement scores, pruning."""

import io

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_data

import graphrec.knowledge.sources as sources
from graphrec.data.dataset import KnowledgeGraph
from graphrec.errors import ConfigError, DataFormatError
from graphrec.knowledge import (
    build_collaborative_kg,
    collaborative_agreement,
    knowledge_graph_for,
    load_knowledge,
    read_kg_arrays,
    read_recbole_kg,
    read_triples_table,
)
from kg.interop import read_arrays


def ckg_of(triples, **kwargs):
    data = tiny_data(KnowledgeGraph(triples=triples))
    return build_collaborative_kg(data, load_knowledge("dataset", data), **kwargs)


def triple_set(ckg):
    names = ckg.entity_ids
    return {
        (names[h], ckg.relation_names[r], names[t])
        for h, r, t in zip(ckg.heads, ckg.relations, ckg.tails)
    }


# ------------------------------------------------------------------ sources
def test_triples_table_tsv_with_scores(tmp_path, tiny_triples):
    path = tmp_path / "kg.tsv"
    tiny_triples.to_csv(path, sep="\t", index=False)
    kg = read_triples_table(path)
    assert list(kg.triples.columns) == ["head", "relation", "tail", "score"]
    assert kg.triples["score"].dtype == np.float64 and len(kg.triples) == 7
    assert load_knowledge(str(path)).num_triples == 7


def test_triples_table_csv_with_link(tmp_path):
    path = tmp_path / "kg.csv"
    path.write_text('head,relation,tail\nm.1,genre,"Drama, dark"\n', encoding="utf-8")
    link = tmp_path / "link.tsv"
    link.write_text("item_id\tentity_id\ni2\tm.1\n", encoding="utf-8")
    kg = read_triples_table(path, link=link)
    assert kg.triples.iloc[0].tolist() == ["m.1", "genre", "Drama, dark"]
    ckg = build_collaborative_kg(tiny_data(), kg)
    assert triple_set(ckg) == {("i2", "genre", "Drama, dark")}


def test_triples_table_errors_name_the_problem(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("head\trel\ttail\na\tb\tc\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="relation"):
        read_triples_table(path)
    path.write_text("head\trelation\ttail\tscore\na\tb\tc\thigh\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="score"):
        read_triples_table(path)
    with pytest.raises(DataFormatError, match="not found"):
        load_knowledge(str(tmp_path / "missing.tsv"))


def test_recbole_kg_and_link(tmp_path):
    (tmp_path / "toy.kg").write_text(
        "head_id:token\trelation_id:token\ttail_id:token\nm.a\tfilm.genre\tm.g\nm.b\tfilm.genre\tm.g\n"
    )
    (tmp_path / "toy.link").write_text("item_id:token\tentity_id:token\ni0\tm.a\ni3\tm.b\n")
    for source in (tmp_path, tmp_path / "toy.kg"):
        kg = read_recbole_kg(source)
        assert len(kg.triples) == 2 and len(kg.item_entity) == 2
    ckg = build_collaborative_kg(tiny_data(), load_knowledge(str(tmp_path)))
    assert triple_set(ckg) == {("i0", "film.genre", "m.g"), ("i3", "film.genre", "m.g")}


def write_kg_export(folder, heads, relations, tails, items, entities, relation_ids, scores=None):
    """The kg package's export layout (kg/interop.py write_arrays)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "heads": np.asarray(heads),
        "relations": np.asarray(relations),
        "tails": np.asarray(tails),
    }
    if scores is not None:
        arrays["scores"] = np.asarray(scores, dtype=np.float64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    (folder / "kg_arrays.npz").write_bytes(buf.getvalue())
    (folder / "item_map.tsv").write_text(
        "item_id\tentity_index\n" + "".join(f"{x}\t{i}\n" for i, x in enumerate(items))
    )
    (folder / "entity_map.tsv").write_text(
        "entity_id\tentity_index\n" + "".join(f"{x}\t{i}\n" for i, x in enumerate(entities))
    )
    (folder / "relation_map.tsv").write_text(
        "relation_id\trelation_index\n" + "".join(f"{x}\t{i}\n" for i, x in enumerate(relation_ids))
    )


def test_kg_package_export_folder(tmp_path):
    folder = tmp_path / "export"
    # entities: 0 = item i1, 1 = item i2 (items first), 2 = "Paris", 3 = "war"
    write_kg_export(
        folder,
        heads=[0, 1, 1],
        relations=[0, 0, 1],
        tails=[2, 2, 3],
        items=["i1", "i2"],
        entities=["film:i1", "film:i2", "Paris", "war"],
        relation_ids=["set_in", "theme"],
        scores=[0.9, 0.4, 0.7],
    )
    kg = read_kg_arrays(folder)
    assert kg.triples[["head", "tail"]].values.tolist() == [
        ["film:i1", "Paris"],
        ["film:i2", "Paris"],
        ["film:i2", "war"],
    ]
    assert kg.item_entity.values.tolist() == [["i1", "film:i1"], ["i2", "film:i2"]]
    ckg = build_collaborative_kg(tiny_data(), load_knowledge(str(folder)))
    assert triple_set(ckg) == {
        ("i1", "set_in", "Paris"),
        ("i2", "set_in", "Paris"),
        ("i2", "theme", "war"),
    }
    assert sorted(ckg.scores.tolist()) == [0.4, 0.7, 0.9]


def test_kg_export_out_of_range_index_is_an_error(tmp_path):
    folder = tmp_path / "export"
    write_kg_export(folder, [0], [0], [5], ["i1"], ["film:i1", "x"], ["r"])
    with pytest.raises(DataFormatError, match="tails"):
        read_kg_arrays(folder)


def test_dataset_source_needs_a_kg():
    with pytest.raises(DataFormatError, match="no knowledge graph"):
        load_knowledge("dataset", tiny_data())


# ---------------------------------------------------------------- building
def test_ids_follow_the_kgat_convention(tiny_triples):
    ckg = ckg_of(tiny_triples)
    assert ckg.n_items == 4 and ckg.entity_ids[:4].tolist() == ["i0", "i1", "i2", "i3"]
    assert ckg.entity_ids[4:].tolist() == ["director_a", "i9", "drama", "comedy", "paris"]
    assert ckg.relation_names == ["born_in", "directed_by", "genre"]
    assert ckg.n_triples == 7 and ckg.n_nodes == 3 + 9
    assert triple_set(ckg) >= {
        ("i0", "genre", "drama"),
        ("director_a", "born_in", "paris"),
        ("i9", "genre", "drama"),
    }


def test_entity_linked_to_two_items_stands_for_both():
    triples = pd.DataFrame({"head": ["film"], "relation": ["genre"], "tail": ["drama"]})
    link = pd.DataFrame({"item_id": ["i0", "i2", "unknown"], "entity_id": ["film", "film", "film"]})
    ckg = build_collaborative_kg(tiny_data(), KnowledgeGraph(triples=triples, item_entity=link))
    assert triple_set(ckg) == {("i0", "genre", "drama"), ("i2", "genre", "drama")}


def test_entities_of_items_outside_the_dataset_are_dropped():
    triples = pd.DataFrame(
        {
            "head": ["film:i0", "film:gone", "film:gone"],
            "relation": ["genre"] * 3,
            "tail": ["drama", "drama", "war"],
        }
    )
    link = pd.DataFrame({"item_id": ["i0", "gone"], "entity_id": ["film:i0", "film:gone"]})
    ckg = build_collaborative_kg(tiny_data(), KnowledgeGraph(triples=triples, item_entity=link))
    assert triple_set(ckg) == {("i0", "genre", "drama")}
    assert ckg.meta["triples_of_absent_items"] == 2 and "war" not in ckg.entity_ids.tolist()


def test_self_loops_dropped_and_duplicates_keep_the_best_score():
    triples = pd.DataFrame(
        {
            "head": ["i0", "i0", "i0", "i1"],
            "relation": ["r", "r", "r", "r"],
            "tail": ["x", "x", "i0", "x"],
            "score": [0.2, 0.9, 1.0, 0.5],
        }
    )
    ckg = ckg_of(triples)
    assert triple_set(ckg) == {("i0", "r", "x"), ("i1", "r", "x")}
    assert sorted(ckg.scores.tolist()) == [0.5, 0.9]


def test_relation_filter_and_min_entity_degree(tiny_triples):
    only_genre = ckg_of(tiny_triples, relations=["genre"])
    assert only_genre.relation_names == ["genre"] and only_genre.n_triples == 5
    assert "director_a" not in only_genre.entity_ids.tolist()
    pruned = ckg_of(tiny_triples, min_entity_degree=2)
    names = set(pruned.entity_ids.tolist())
    # drama (3 triples), comedy (2) and director_a (2) stay; i9 and paris (1 each) go
    assert {"drama", "comedy", "director_a"} <= names and not {"i9", "paris"} & names
    assert pruned.entity_ids[:4].tolist() == ["i0", "i1", "i2", "i3"]  # items never dropped


def test_no_kg_gives_the_interaction_graph():
    ckg = build_collaborative_kg(tiny_data(), None)
    assert ckg.n_entities == 4 and ckg.n_triples == 0 and ckg.n_relations == 0
    edge_index, edge_type = ckg.edge_index()
    assert edge_index.shape == (2, 10) and set(edge_type.tolist()) == {0, 1}


# ------------------------------------------------------------ graph views
def test_typed_edge_index_with_inverse_edges(tiny_triples):
    ckg = ckg_of(tiny_triples)
    edge_index, edge_type = ckg.edge_index(inverse=True)
    n_inter = 5
    assert edge_index.shape == (2, 2 * (n_inter + 7))
    names = ckg.edge_type_names()
    assert (
        names[0] == "interacts"
        and names[ckg.n_relations + 1] == "interacts_inv"
        and len(names) == ckg.num_edge_types
    )
    # user 0 -> item 0 (node 3 + 0) is an interaction; its inverse exists
    pairs = set(zip(edge_index[0].tolist(), edge_index[1].tolist(), edge_type.tolist()))
    assert (0, 3, 0) in pairs and (3, 0, ckg.n_relations + 1) in pairs
    genre = 1 + ckg.relation_names.index("genre")
    drama = 3 + ckg.entity_ids.tolist().index("drama")
    assert (3, drama, genre) in pairs and (drama, 3, genre + ckg.n_relations + 1) in pairs
    adjacency = ckg.adjacency()
    assert (adjacency != adjacency.T).nnz == 0


def test_hetero_data_has_one_edge_type_per_relation_and_end_types(tiny_triples):
    ckg = ckg_of(tiny_triples)
    hetero = ckg.to_hetero_data()
    assert (
        hetero["user"].num_nodes == 3
        and hetero["item"].num_nodes == 4
        and hetero["entity"].num_nodes == 5
    )
    assert hetero["user", "interacts", "item"].edge_index.shape == (2, 5)
    assert hetero["item", "genre", "entity"].edge_index.shape == (2, 4)
    assert hetero["entity", "genre", "entity"].edge_index.shape == (2, 1)  # i9 -> drama
    assert hetero["entity", "born_in", "entity"].edge_score.tolist() == pytest.approx([0.6])
    assert sum(store.edge_index.shape[1] for store in hetero.edge_stores) == 5 + 7


# ---------------------------------------------------------- noise handling
def test_collaborative_agreement_by_hand(tiny_triples):
    ckg = ckg_of(tiny_triples)
    scores = dict(zip(sorted(triple_set(ckg)), [None] * 7))
    names = ckg.entity_ids
    agreement = collaborative_agreement(ckg)
    for h, r, t, s in zip(ckg.heads, ckg.relations, ckg.tails, agreement):
        scores[(names[h], ckg.relation_names[r], names[t])] = s
    # audiences: i0 {u0}, i1 {u0, u1}, i2 {u1}, i3 {u2}
    assert scores[("i0", "genre", "drama")] == pytest.approx(1 / np.sqrt(2))
    assert scores[("i1", "genre", "drama")] == pytest.approx(1 / np.sqrt(2))
    assert scores[("i2", "genre", "comedy")] == pytest.approx(0.0)
    assert scores[("i3", "genre", "comedy")] == pytest.approx(0.0)
    assert np.isnan(scores[("i0", "directed_by", "director_a")])  # no other item shares it
    assert np.isnan(scores[("director_a", "born_in", "paris")])  # no item end
    assert np.isnan(scores[("i9", "genre", "drama")])


def test_item_item_triples_score_the_audience_cosine():
    ckg = ckg_of(
        pd.DataFrame({"head": ["i0", "i0"], "relation": ["sequel", "sequel"], "tail": ["i1", "i3"]})
    )
    names = ckg.entity_ids
    got = {names[t]: s for t, s in zip(ckg.tails, collaborative_agreement(ckg))}
    assert got["i1"] == pytest.approx(1 / np.sqrt(2)) and got["i3"] == pytest.approx(0.0)


def test_prune_by_source_score_and_by_fraction(tiny_triples):
    ckg = ckg_of(tiny_triples)
    kept = ckg.prune(min_score=0.5)
    assert triple_set(kept) == triple_set(ckg) - {
        ("i2", "genre", "comedy"),
        ("i9", "genre", "drama"),
    }
    assert (
        "i9" not in kept.entity_ids.tolist()
    )  # the entity only that triple used is compacted away
    assert kept.meta["pruning"][-1]["dropped"] == 2
    lowest_three = ckg.prune(drop_fraction=3 / 7)
    assert lowest_three.n_triples == 4
    assert ("i2", "genre", "comedy") not in triple_set(lowest_three)
    with pytest.raises(ValueError, match="no scores"):
        ckg_of(tiny_triples.drop(columns="score")).prune(min_score=0.1)


def test_prune_by_collaborative_agreement_keeps_unscored(tiny_triples):
    ckg = ckg_of(tiny_triples)
    kept = ckg.prune(scores=collaborative_agreement(ckg), min_score=0.5)
    assert triple_set(kept) == triple_set(ckg) - {
        ("i2", "genre", "comedy"),
        ("i3", "genre", "comedy"),
    }
    strict = ckg.prune(scores=collaborative_agreement(ckg), min_score=0.5, keep_unscored=False)
    assert triple_set(strict) == {("i0", "genre", "drama"), ("i1", "genre", "drama")}


def test_knowledge_graph_for_a_model_config(tiny_triples):
    from graphrec.config import model_config_from_dict

    data = tiny_data(KnowledgeGraph(triples=tiny_triples))
    config = model_config_from_dict(
        {"name": "kglightgcn", "kg": "dataset", "kg_score": "collaborative", "kg_min_score": 0.5}
    )
    assert knowledge_graph_for(config, data).n_triples == 5
    config = model_config_from_dict(
        {"name": "kglightgcn", "kg": "dataset", "kg_min_score": 0.5}
    )  # source scores
    assert knowledge_graph_for(config, data).n_triples == 5
    with pytest.raises(ConfigError, match="needs the dataset"):
        knowledge_graph_for(config, None)
    config = model_config_from_dict(
        {"name": "kglightgcn", "kg": "dataset", "kg_relations": ["genre"], "kg_drop_fraction": 0.0}
    )
    assert knowledge_graph_for(config, data).relation_names == ["genre"]


# ----------------------------------------------------------- real KGs
def test_gold_facts_of_ml_latest_small_tmdb():
    from graphrec import datasets

    data = datasets.load("ml-latest-small-tmdb")
    ckg = build_collaborative_kg(data, load_knowledge("dataset", data))
    stats = ckg.statistics()
    assert stats["relations"] == 6 and stats["item_coverage"] > 0.98
    assert stats["triples"] == len(data.kg.triples)
    edge_index, edge_type = ckg.edge_index()
    assert int(edge_index.max()) < ckg.n_nodes and int(edge_type.max()) == ckg.num_edge_types - 1


def test_ml100k_freebase_kg():
    from graphrec import datasets

    data = datasets.load("ml-100k")
    ckg = build_collaborative_kg(data, load_knowledge("dataset", data))
    stats = ckg.statistics()
    assert (
        stats["relations"] == 24
        and stats["triples"] > 90_000
        and stats["items_with_triples"] > 1500
    )
    scores = collaborative_agreement(ckg)
    assert (
        np.isfinite(scores).mean() > 0.5
        and torch.isfinite(torch.as_tensor(scores[np.isfinite(scores)])).all()
    )


def test_kg_export_is_read_by_the_kg_package_reader(tmp_path, monkeypatch):
    folder = tmp_path / "export"
    write_kg_export(folder, [0], [0], [1], ["i1"], ["film:i1", "x"], ["r"])
    calls = []

    def counted(path):
        calls.append(path)
        return read_arrays(path)

    monkeypatch.setattr(sources, "read_arrays", counted)
    kg = read_kg_arrays(folder)
    assert calls == [folder] and kg.triples.values.tolist() == [["film:i1", "r", "x"]]
    assert "score" not in kg.triples.columns


def test_kg_export_errors_are_graphrec_data_errors(tmp_path):
    folder = tmp_path / "export"
    write_kg_export(folder, [0], [0], [0], ["i1", "i2"], ["film:i1"], ["r"])
    with pytest.raises(DataFormatError, match="item map longer than entity map") as err:
        read_kg_arrays(folder)
    assert err.value.path == str(folder / "item_map.tsv")
    (folder / "relation_map.tsv").unlink()
    with pytest.raises(DataFormatError, match="missing id map"):
        read_kg_arrays(folder)
