"""Explanations on a tiny graph whose right answer is known (conftest.two_clusters)."""

import numpy as np
import torch
from inference_helpers import kg_folder

from graphrec.config import model_config_from_dict
from graphrec.inference import TrainedRecommender, explain
from graphrec.models import build_model


def fitted(name, data, **config):
    model = build_model(
        model_config_from_dict({"name": name, **config}),
        data.n_users,
        data.n_items,
        data.train,
        data=data,
    )
    if not model.trainable:
        model.fit()
    return TrainedRecommender(model, data)


def test_ease_reasons_are_the_exact_decomposition(clusters):
    rec = fitted("ease", clusters, l2=1.0)
    out = explain(rec, user="x", items=["b", "d"])
    b, d = out
    assert (
        b["method"] == "exact"
        and b["because"][0]["item"] == "a"
        and b["because"][0]["title"] == "Alien"
    )
    assert d["because"][0]["item"] == "c"
    # X_u[j] * B[j, i] summed over the user's items is the score
    weights = rec.model.weights.numpy()
    assert np.isclose(b["because"][0]["contribution"], weights[0, 1], rtol=1e-5)
    user_items = clusters.train[40].indices
    assert np.isclose(weights[user_items, 1].sum(), b["score"], rtol=1e-5)
    # and the top-k default explains the user's own recommendations
    assert [e["item"] for e in explain(rec, user="x", k=2)] == rec.recommend(["x"], k=2)[0].items


def test_itemknn_reasons_and_popularity_is_not_decomposable(clusters):
    rec = fitted("itemknn", clusters, neighbours=2, shrink=0.0)
    assert explain(rec, user="x", items=["b"])[0]["because"][0]["item"] == "a"
    pop = explain(fitted("popularity", clusters), user="x", items=["b"])[0]
    assert pop["method"] == "not decomposable" and pop["because"] == [] and pop["popularity"] == 20


def test_embedding_reasons_follow_the_propagation_weights(clusters):
    torch.manual_seed(0)
    rec = fitted("lightgcn", clusters, embedding_dim=8)
    out = explain(rec, basket=["a", "c"], items=["b"], top=5)[0]
    assert out["method"] == "propagation"
    _, item_emb = rec.embeddings()
    degree = clusters.item_popularity()
    expected = {j: float(item_emb[j] @ item_emb[1]) / np.sqrt(2 * (degree[j] + 1)) for j in (0, 2)}
    for reason in out["because"]:
        assert np.isclose(
            reason["contribution"], expected["ac".index(reason["item"]) * 2], rtol=1e-4
        )
    # the contributions add up to the fold-in score
    assert np.isclose(sum(v for v in expected.values()), out["score"], rtol=1e-4)


def test_kg_paths_name_the_shared_entity_with_provenance(tmp_path, clusters):
    rec = fitted("kglightgcn", clusters, embedding_dim=8, kg=str(kg_folder(tmp_path)))
    out = explain(rec, user="x", items=["b", "d", "e"])
    b_paths, d_paths, e_paths = (o["kg_paths"] for o in out)
    assert e_paths == []
    assert b_paths[0]["from_item"] == "a" and b_paths[0]["via"]["entity"] == "Person/scott"
    assert b_paths[0]["text"] == "you liked Alien; both have directed_by Ridley Scott"
    assert b_paths[0]["facts"][1]["provenance"] == [
        {"source": "text", "evidence": "directed by Ridley Scott"}
    ]
    assert "provenance" not in b_paths[0]["facts"][0]  # no evidence recorded for Alien's fact
    assert d_paths[0]["from_item"] == "c" and d_paths[0]["via"]["label"] == "Genre/animation"


def test_kg_from_the_dataset_gives_paths_too(clusters):
    rec = fitted("kgat", clusters, embedding_dim=8, kg="dataset")
    paths = explain(rec, user="x", items=["b"])[0]["kg_paths"]
    assert paths and paths[0]["via"]["entity"] == "Person/scott"
