"""Every registered graphrec model: train tiny -> load from the run directory -> recommend -> fold-in."""

import numpy as np
import pytest
import torch
from inference_helpers import train_tiny

from graphrec.data.bundle import has_bundle
from graphrec.evaluation.ranking import gather_csr_rows, mask_scores, topk_with_ties
from graphrec.inference import UnknownIdError, load_recommender
from graphrec.models import MODELS, available_models
from graphrec.training import load_run

ALL_NAMES = [name for name in available_models() if MODELS[name].__module__.startswith("graphrec.")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("runs")
    return {name: train_tiny(out, name, tiny_data) for name in ALL_NAMES}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_load_recommend_fold_in(name, runs, tiny_data, monkeypatch):
    run_dir = runs[name]
    assert has_bundle(run_dir)
    # no dataset is read: loading the dataset would fail
    monkeypatch.setattr(
        "graphrec.training.run.load_data", lambda *a, **k: pytest.fail("dataset loaded")
    )
    rec = load_recommender(run_dir)
    assert rec.model.name == name and not rec.model.training

    # the same lists as the run's model scored by the harness's own ranking
    _, _, model = load_run(run_dir, data=tiny_data)
    users = torch.arange(tiny_data.n_users)
    scores = model.scorer()(users).float().contiguous()
    mask_scores(scores, *gather_csr_rows(tiny_data.train, np.arange(tiny_data.n_users)))
    _, expected = topk_with_ties(scores, 5)
    got = rec.recommend(list(tiny_data.user_ids), k=5)
    for row, lst in zip(expected.numpy(), got):
        assert lst.items == [str(tiny_data.item_ids[i]) for i in row]
        assert len(lst.scores) == 5 and all(np.isfinite(lst.scores))
        assert not set(lst.items) & set(
            tiny_data.item_ids[
                tiny_data.train[int(np.flatnonzero(tiny_data.user_ids == lst.user)[0])].indices
            ]
        )

    # fold-in of a new user from raw item ids
    basket = [str(i) for i in tiny_data.item_ids[tiny_data.train[3].indices]]
    new = rec.recommend_for_items(basket, k=5)
    assert new.user is None and len(new.items) == 5 and not set(new.items) & set(basket)
    assert all(np.isfinite(new.scores)) and new.scores == sorted(new.scores, reverse=True)
    if not MODELS[
        name
    ].trainable:  # X_u · W: a training user's own row folds in exactly to that user
        assert new.items == rec.recommend([tiny_data.user_ids[3]], k=5)[0].items

    similar = rec.similar_items(tiny_data.item_ids[0], k=4)
    assert len(similar.items) == 4 and tiny_data.item_ids[0] not in similar.items

    with pytest.raises(UnknownIdError, match="'nobody'"):
        rec.recommend(["nobody"])
    fallback = rec.recommend(["nobody"], k=3, unknown="popularity")[0]
    assert fallback.fallback == "popularity" and fallback.items == rec.popular(3).items
