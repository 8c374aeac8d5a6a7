"""graphrec.inference on the alignment package's models (`aligned`, `text_ease`, `alpharec`,
`text_init`): train tiny -> load from the run directory alone (item texts from the serving
bundle) -> recommend -> fold-in."""

import dataclasses

import numpy as np
import pytest
import torch
from alignment_topics import topic_data

from graphrec.config import load_config
from graphrec.evaluation.ranking import gather_csr_rows, mask_scores, topk_with_ties
from graphrec.inference import TrainedRecommender, explain, load_recommender
from graphrec.training import load_run, run_training

VARIANTS = {
    "aligned": [
        "model.name=aligned",
        "model.embedding_dim=8",
        "model.backbone={name: lightgcn, num_layers: 2}",
        "model.objective=contrastive",
    ],
    "text_ease": ["model.name=text_ease"],
    "alpharec": [
        "model.name=alpharec",
        "model.embedding_dim=8",
        "model.hidden_dim=16",
        "model.num_layers=2",
    ],
    "text_init": [
        "model.name=text_init",
        "model.backbone={name: lightgcn, embedding_dim: 8, num_layers: 2}",
    ],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_plugin_model_loads_recommends_and_folds_in(variant, tmp_path, monkeypatch):
    data = topic_data(n_users=60, n_items=40)
    config = load_config(
        None,
        VARIANTS[variant]
        + [
            f"model.cache_dir={tmp_path / 'cache'}",
            "train.epochs=1",
            "train.progress=false",
            "train.num_threads=1",
            "eval.ks=[5]",
            "train.select_metric=recall@5",
            f"out_dir={tmp_path}",
            f"name={variant}",
        ],
    )
    run_training(config, data)
    monkeypatch.setattr(
        "graphrec.training.run.load_data", lambda *a, **k: pytest.fail("dataset loaded")
    )
    rec = load_recommender(config.run_dir)
    _, _, model = load_run(config.run_dir, data=data)
    scores = model.scorer()(torch.arange(data.n_users)).float().contiguous()
    mask_scores(scores, *gather_csr_rows(data.train, np.arange(data.n_users)))
    _, expected = topk_with_ties(scores, 5)
    got = rec.recommend(list(data.user_ids), k=5)
    assert [r.items for r in got] == [
        [str(data.item_ids[i]) for i in row] for row in expected.numpy()
    ]
    basket = [str(i) for i in data.item_ids[data.train[0].indices]]
    new = rec.recommend_for_items(basket, k=5)
    assert len(new.items) == 5 and not set(new.items) & set(basket)
    assert len(rec.similar_items("i0", k=3).items) == 3
    assert explain(rec, user="u0", k=2)[0]["method"] in ("exact", "propagation")


@pytest.mark.parametrize("num_layers", [0, 1])
def test_alpharec_folds_a_new_user_in_as_the_graph_with_the_user_added(num_layers):
    """alpharec's own fold-in (MLP of the mean text, then the new user's row of Â): with at most one layer it
    is exactly the user's embedding in the model built on the training graph with the user appended."""
    from alignment.alpharec import AlphaRec
    from graphrec.config import model_config_from_dict

    data = topic_data(n_users=60, n_items=40)
    rng = np.random.default_rng(0)
    texts = rng.normal(size=(data.n_items, 12)).astype(np.float32)
    config = model_config_from_dict(
        {"name": "alpharec", "embedding_dim": 6, "hidden_dim": 10, "num_layers": num_layers}
    )
    torch.manual_seed(0)
    full = AlphaRec(data.n_users, data.n_items, config, data.train, item_embeddings=texts)
    without_last = AlphaRec(
        data.n_users - 1, data.n_items, config, data.train[:-1], item_embeddings=texts
    )
    without_last.load_state_dict(full.state_dict())
    with torch.no_grad():
        expected_user = full.embeddings()[0][-1]
        got = without_last.fold_in_embeddings(data.train[-1:])[0]
    assert torch.allclose(got, expected_user, atol=1e-5)
    rec = TrainedRecommender(
        without_last,
        dataclasses.replace(
            data, user_ids=data.user_ids[:-1], train=data.train[:-1], valid=None, test=None
        ),
    )
    basket = [str(i) for i in data.item_ids[data.train[-1].indices]]
    with torch.no_grad():
        expected = (
            without_last.fold_in_embeddings(data.train[-1:]) @ without_last.embeddings()[1].T
        )[0]
    got = rec.recommend_for_items(basket, k=5)
    assert got.scores == pytest.approx(
        torch.sort(
            expected[[i for i in range(data.n_items) if str(data.item_ids[i]) not in basket]],
            descending=True,
        )
        .values[:5]
        .tolist(),
        abs=1e-6,
    )
