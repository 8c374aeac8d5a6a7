"""Cold-start split and scoring, noise injection, denoising of edges and triples."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from alignment.coldstart import (
    cold_items_of,
    cold_start_split,
    evaluate_cold_start,
    restrict_to_items,
    text_item_knn_scorer,
    text_profile_scorer,
)
from alignment.denoise import (
    denoise_interactions,
    denoise_triples,
    interaction_agreement,
    train_edges,
    triple_agreement,
)
from alignment.experiments import cold_start_baselines, summarize_noise
from alignment.noise import inject_noise


# ------------------------------------------------------------------ cold start
def test_cold_start_split_holds_items_out_entirely(topics):
    cold = cold_start_split(topics, fraction=0.1, seed=3)
    items = cold_items_of(cold)
    assert len(items) == 42
    assert cold.train[:, items].nnz == 0 and cold.valid[:, items].nnz == 0
    everything = topics.train + topics.valid + topics.test
    assert (
        cold.test.nnz == everything[:, items].nnz
    )  # every interaction with a cold item is a test target
    warm = np.setdiff1d(np.arange(topics.n_items), items)
    assert cold.test[:, warm].nnz == 0
    assert cold.train.nnz == topics.train[:, warm].nnz
    np.testing.assert_array_equal(
        cold_items_of(cold_start_split(topics, 0.1, seed=3)), items
    )  # seeded


def test_restrict_to_items():
    scorer = restrict_to_items(lambda users: torch.ones(len(users), 5), [1, 3], 5)
    out = scorer(torch.tensor([0, 1]))
    assert torch.isinf(out[:, [0, 2, 4]]).all() and (out[:, [1, 3]] == 1).all()


def test_text_scorers_hand_checked():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    users = np.array([[2.0, 0.0]], dtype=np.float32)
    torch.testing.assert_close(
        text_profile_scorer(users, items)(torch.tensor([0])), torch.tensor([[1.0, 0.0, 0.6]])
    )
    train = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    # k=1: item 1's nearest warm neighbour is item 0 (cos 0), item 2's is item 0 (cos 0.6)
    knn = text_item_knn_scorer(train, items, k=1)(torch.tensor([0]))
    torch.testing.assert_close(knn, torch.tensor([[0.0, 0.0, 0.6]]))


def test_cold_start_evaluation_ranks_cold_items_only(topics, topic_views):
    cold = cold_start_split(topics, fraction=0.1, seed=0)
    baselines = cold_start_baselines(cold, topic_views)
    profile = baselines["text profile cosine"]
    assert profile.meta["candidates"] == "42 cold items"
    # users prefer one topic and texts are topical: text beats a random ranking of 42 items clearly
    random_recall = 20 / 42
    assert profile.metrics["recall@20"] > random_recall + 0.15
    with pytest.raises(ValueError, match="not a cold-start split"):
        evaluate_cold_start(lambda u: torch.zeros(len(u), topics.n_items), topics)


# ----------------------------------------------------------------------- noise
def test_inject_noise_adds_unseen_pairs_deterministically(topics):
    noisy, fake = inject_noise(topics, 0.2, seed=5)
    assert fake.nnz == round(0.2 * topics.train.nnz)
    seen = topics.train + topics.valid + topics.test
    assert seen.multiply(fake).nnz == 0
    assert noisy.train.nnz == topics.train.nnz + fake.nnz
    assert (noisy.valid != topics.valid).nnz == 0 and (noisy.test != topics.test).nnz == 0
    _, again = inject_noise(topics, 0.2, seed=5)
    assert (again != fake).nnz == 0
    _, other = inject_noise(topics, 0.2, seed=6)
    assert (other != fake).nnz > 0


# -------------------------------------------------------------------- denoising
class FixedViews(torch.nn.Module):
    """Duck-typed aligned model with hand-set graph and projected text embeddings."""

    def __init__(self, user_g, item_g, user_z, item_z):
        super().__init__()
        self.views = [
            torch.tensor(v, dtype=torch.float32) for v in (user_g, item_g, user_z, item_z)
        ]

    def graph_embeddings(self):
        return self.views[0], self.views[1]

    def projected_text(self):
        return self.views[2], self.views[3]


def test_interaction_agreement_hand_checked():
    model = FixedViews(
        user_g=[[1, 0]], item_g=[[1, 0], [0, 1]], user_z=[[1, 1]], item_z=[[1, 0], [-1, 0]]
    )
    scores = interaction_agreement(model, np.array([0, 0]), np.array([0, 1]))
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(scores, [0.5 * (1 + s), 0.5 * (-1 + s)], rtol=1e-6)


def test_denoise_interactions_drops_lowest_and_reports_detection():
    from graphrec.data.dataset import InteractionData

    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    data = InteractionData(
        name="t",
        user_ids=np.array(["a", "b"], dtype=object),
        item_ids=np.array(["x", "y", "z"], dtype=object),
        train=train,
        test=train,
    )
    users, items = train_edges(train)
    assert users.tolist() == [0, 0, 1, 1] and items.tolist() == [0, 1, 1, 2]
    truth = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0]], dtype=np.float32))
    cleaned, report = denoise_interactions(
        data, np.array([0.9, -0.5, 0.1, 0.8]), drop_fraction=0.5, truth=truth
    )
    assert cleaned.train.toarray().tolist() == [[1, 0, 0], [0, 0, 1]]
    assert report.dropped == 2 and report.threshold == pytest.approx(0.1)
    assert report.detection == {"fake": 1, "precision": 0.5, "recall": 1.0}
    only = sp.csr_matrix(
        np.array([[0, 0, 0], [0, 1, 1]], dtype=np.float32)
    )  # e.g. the LLM-augmented edges
    cleaned, report = denoise_interactions(
        data, np.array([0.9, -0.5, 0.1, 0.8]), min_score=0.5, candidates=only
    )
    assert cleaned.train.toarray().tolist() == [[1, 1, 0], [0, 0, 1]] and report.scored == 2
    with pytest.raises(ValueError, match="exactly one"):
        denoise_interactions(data, np.zeros(4))


def test_triple_agreement_hand_checked_and_per_relation_report(topics):
    # items 0, 1, 2 share genre "A"; item 3 alone has "B"
    item_g = np.zeros((topics.n_items, 2))
    item_z = np.zeros((topics.n_items, 2))
    item_g[:4] = [[1, 0], [1, 0], [0, 1], [1, 1]]
    item_z[:4] = [[1, 0], [0, 1], [1, 0], [1, 1]]
    model = FixedViews(np.zeros((topics.n_users, 2)), item_g, np.zeros((topics.n_users, 2)), item_z)
    triples = pd.DataFrame(
        {
            "head": ["i0", "i1", "i2", "i3", "unknown"],
            "relation": ["genre"] * 3 + ["keyword", "genre"],
            "tail": ["A", "A", "A", "B", "A"],
        }
    )
    scores = triple_agreement(model, topics, triples)
    # i0: others' z = z1 + z2 = (1,1), cos(e0, .) = s; others' e = e1 + e2 = (1,1), cos(z0, .) = s
    # i1: z0 + z2 = (2,0), cos(e1, .) = 1; e0 + e2 = (1,1), cos(z1, .) = s; i2 symmetric to i1
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(scores[:3], [s, 0.5 * (1 + s), 0.5 * (1 + s)], rtol=1e-6)
    assert np.isnan(scores[3]) and np.isnan(
        scores[4]
    )  # fact shared by no other item; head not an item
    kept, report = denoise_triples(triples, scores, drop_fraction=1 / 3)
    assert report.dropped == 1 and kept["head"].tolist() == ["i1", "i2", "i3", "unknown"]
    assert report.by_relation == {
        "genre": {"scored": 3, "dropped": 1},
        "keyword": {"scored": 0, "dropped": 0},
    }
    assert "score" in kept.columns


def test_noise_summary_degradation():
    records = [
        {"variant": "A", "noise": 0.0, "value": 0.2},
        {"variant": "A", "noise": 0.2, "value": 0.15},
        {"variant": "A", "noise": 0.0, "value": 0.2},
        {"variant": "A", "noise": 0.2, "value": 0.17},
    ]
    summary = summarize_noise(records, "recall@20")
    assert summary["levels"] == [0.0, 0.2] and summary["results"]["A"] == pytest.approx([0.2, 0.16])
    assert summary["degradation"]["A"] == pytest.approx([0.0, 0.2])
