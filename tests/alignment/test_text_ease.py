"""text_ease: EASE with a text prior (alignment/linear.py) — closed form, limits, zero-shot
items, train.py end to end."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from alignment.linear import (
    TextEASE,
    TextEASEConfig,
    attribute_text,
    item_text_key,
    linear_item_texts,
    text_ease_weights,
    text_matrix,
)
from graphrec.config import model_config_from_dict
from graphrec.errors import ConfigError
from graphrec.models import EASE, MODELS, available_models, build_model

REPO = Path(__file__).resolve().parents[2]


def reference_weights(x, f, s, l2, c, beta, extra=None):
    """Per column j: argmin ||X_j - X b||² + β||F_j - F b||² + ρ||b - c S_j||² + Σ_i r_i b_i² with
    b_j = 0, by lstsq (``extra``: the per-item ridge r, default none)."""
    n = x.shape[1]
    extra = np.zeros(n) if extra is None else extra
    out = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        design = np.vstack(
            [
                x[:, others],
                np.sqrt(beta) * f[:, others],
                np.sqrt(l2) * np.eye(n - 1),
                np.diag(np.sqrt(extra[others])),
            ]
        )
        target = np.concatenate(
            [x[:, j], np.sqrt(beta) * f[:, j], np.sqrt(l2) * c * s[others, j], np.zeros(n - 1)]
        )
        out[others, j] = np.linalg.lstsq(design, target, rcond=None)[0]
    return out


def tiny(seed=0, users=30, items=9, dim=5):
    rng = np.random.default_rng(seed)
    x = (rng.random((users, items)) < 0.3).astype(np.float64)
    f = rng.normal(size=(dim, items))
    f /= np.linalg.norm(f, axis=0, keepdims=True)
    s = rng.normal(size=(items, items))
    np.fill_diagonal(s, 0.0)
    return x, f, s


@pytest.mark.parametrize(
    "l2, c, beta", [(3.0, 1.0, 0.0), (0.7, 2.5, 0.0), (5.0, 0.4, 2.0), (2.0, 0.0, 1.5)]
)
def test_closed_form_equals_constrained_least_squares_per_column(l2, c, beta):
    x, f, s = tiny()
    gram = torch.from_numpy(x.T @ x + beta * f.T @ f)
    got = text_ease_weights(gram, torch.from_numpy(s), l2, c).numpy()
    want = reference_weights(x, f, s, l2, c, beta)
    assert np.all(np.diag(got) == 0.0)
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("c", [0.0, 1.5])
def test_extra_ridge_per_item_equals_constrained_least_squares(c):
    """DLAE's popularity ridge r_i = d·(XᵀX)_ii on top of ρ (benchmarks/text_ease_ablations.py)."""
    x, f, s = tiny(seed=3)
    gram = x.T @ x
    extra = 0.8 * np.diag(gram)
    got = text_ease_weights(
        torch.from_numpy(gram), torch.from_numpy(s), 2.0, c, extra_ridge=torch.from_numpy(extra)
    ).numpy()
    want = reference_weights(x, f, s, 2.0, c, 0.0, extra=extra)
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-8)
    plain = text_ease_weights(torch.from_numpy(gram), torch.from_numpy(s), 2.0, c).numpy()
    assert np.abs(got - plain).max() > 1e-3  # the ridge changes B


def test_lae_text_matrix_is_ease_on_the_text_features():
    _, f, _ = tiny(seed=1)
    s = text_matrix(torch.from_numpy(f.T.copy()), "lae", similarity_l2=0.5).numpy()
    zeros = np.zeros((f.shape[1], f.shape[1]))
    np.testing.assert_allclose(s, reference_weights(f, f, zeros, 0.5, 0.0, 0.0), atol=1e-10)


def test_cosine_text_matrix_sparsified_per_scored_item():
    rng = np.random.default_rng(2)
    e = rng.normal(size=(12, 4))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    full = text_matrix(torch.from_numpy(e), "cosine").numpy()
    np.testing.assert_allclose(full, e @ e.T - np.eye(12), atol=1e-12)
    top = text_matrix(torch.from_numpy(e), "cosine", neighbours=3).numpy()
    assert np.all((top != 0).sum(axis=0) == 3) and np.all(np.diag(top) == 0)
    for j in range(12):
        kept = np.flatnonzero(top[:, j])
        others = np.delete(full[:, j], j)
        assert np.allclose(np.sort(top[kept, j]), np.sort(others)[-3:])
    thresholded = text_matrix(torch.from_numpy(e), "cosine", min_similarity=0.5).numpy()
    assert np.all((thresholded == 0) | (thresholded >= 0.5))


def make(data, embeddings, train=None, **values):
    config = model_config_from_dict({"name": "text_ease", **values})
    train = data.train if train is None else train
    model = TextEASE(data.n_users, data.n_items, config, train, item_embeddings=embeddings)
    model.fit()
    return model


def test_text_weight_zero_is_ease_exactly(topics, topic_views):
    # with cold_items: prior (items without interactions keep EASE's zero column)
    ours = make(topics, topic_views.item, l2=50.0, text_weight=0.0, cold_items="prior")
    # text_ease fits in float64; EASE's default (precision: auto) would take float32 here
    ease = EASE(
        topics.n_users,
        topics.n_items,
        model_config_from_dict({"name": "ease", "l2": 50.0, "precision": "float64"}),
        topics.train,
    )
    ease.fit()
    assert torch.equal(ours.weights, ease.weights)


def test_large_l2_tends_to_the_text_prior_and_text_only_is_the_limit(topics, topic_views):
    values = {"similarity": "cosine", "neighbours": 20, "text_weight": 2.0, "cold_items": "prior"}
    limit = make(topics, topic_views.item, text_only=True, **values)
    prior = 2.0 * limit.text_similarity().float()
    assert torch.equal(limit.weights, prior)
    far = make(topics, topic_views.item, l2=1e9, **values)
    assert (far.weights - prior).abs().max() < 1e-6 * prior.abs().max()
    near = make(topics, topic_views.item, l2=10.0, **values)
    assert (near.weights - prior).abs().max() > 1e-2


@pytest.mark.parametrize("cold_items", ["prior", "neighbours"])
def test_zero_shot_item_is_scored_through_its_text(topics, topic_views, cold_items):
    item = 0
    train = topics.train.tolil()
    train[:, item] = 0
    train = sp.csr_matrix(train)
    train.eliminate_zeros()
    assert train[:, item].nnz == 0
    users = torch.arange(topics.n_users)
    plain = make(
        topics, topic_views.item, train=train, l2=20.0, text_weight=0.0, cold_items="prior"
    ).scorer()(users)
    assert torch.all(plain[:, item] == 0)
    text = make(
        topics,
        topic_views.item,
        train=train,
        l2=20.0,
        text_weight=1.0,
        similarity="cosine",
        neighbours=50,
        cold_items=cold_items,
    ).scorer()(users)
    scores = text[:, item]
    assert torch.count_nonzero(scores) > 0.5 * topics.n_users
    user_topic = np.asarray(topics.meta["user_topic"])
    same = torch.from_numpy(user_topic == topics.meta["item_topic"][item])
    assert scores[same].mean() > 2 * scores[~same].mean()  # the item reaches its topic's users


def test_cold_l2_rederives_only_the_cold_columns_as_a_fit_with_it_would(topics, topic_views):
    train = topics.train.tolil()
    train[:, [0, 1]] = 0
    train = sp.csr_matrix(train)
    train.eliminate_zeros()
    values = {"l2": 20.0, "similarity_l2": 10.0, "cold_items": "neighbours"}
    model = make(topics, topic_views.item, train=train, **values)
    before = model.weights.clone()
    model.set_cold_l2(1.0)
    refit = make(topics, topic_views.item, train=train, cold_l2=1.0, **values)
    assert torch.equal(model.weights, refit.weights)
    trained = torch.from_numpy(train.getnnz(axis=0) > 0)
    assert not trained[:2].any()
    assert torch.equal(model.weights[:, trained], before[:, trained])  # as fitted
    assert (model.weights[:, ~trained] - before[:, ~trained]).abs().max() > 1e-4
    model.set_cold_l2(None)  # back to similarity_l2
    assert torch.equal(model.weights, before)
    with pytest.raises(ConfigError, match="cold_l2 must be positive"):
        model.set_cold_l2(0.0)
    prior = make(topics, topic_views.item, train=train, l2=20.0, cold_items="prior")
    with pytest.raises(ConfigError, match="only with cold_items: neighbours"):
        prior.set_cold_l2(1.0)


def test_config_errors_and_needs_texts(topics):
    for values, message in [
        ({"l2": 0}, "l2 must be positive"),
        ({"neighbours": -1}, "neighbours"),
        ({"text_only": True, "text_weight": 0}, "text_only needs"),
    ]:
        with pytest.raises(ConfigError, match=message):
            model_config_from_dict({"name": "text_ease", **values})
    with pytest.raises(ConfigError, match="needs the dataset's item texts"):
        build_model(
            model_config_from_dict({"name": "text_ease"}),
            topics.n_users,
            topics.n_items,
            topics.train,
        )


def test_registered_through_the_entry_point_and_texts_with_attributes(topics):
    assert "text_ease" in available_models() and MODELS["text_ease"] is TextEASE
    assert isinstance(model_config_from_dict({"name": "text_ease"}), TextEASEConfig)
    row = {
        "title": "Hard Start Kit",
        "brand": "Supco Inc.",
        "categories": "Industrial > Capacitors",
        "description": "Boosts starting torque.",
    }
    assert attribute_text(row) == (
        "Hard Start Kit. Brand: Supco Inc. Categories: Industrial > Capacitors. "
        "Boosts starting torque."
    )
    assert linear_item_texts(topics, "catalogue+attributes") == linear_item_texts(
        topics, "catalogue"
    )


def test_kg_facts_follow_the_item_text_with_entity_labels(topics, tmp_path):
    raw = [str(r) for r in topics.item_ids.tolist()]
    export = tmp_path / "build" / "graphrec"
    export.mkdir(parents=True)
    (export / "kg.tsv").write_text(
        "head\trelation\ttail\n"
        f"{raw[0]}\tgenre\tGenre/space-opera\n"
        f"{raw[0]}\tkeyword\tKeyword/laser\n"
        "not-an-item\tgenre\tGenre/drama\n",
        encoding="utf-8",
    )
    # the kg package's labels live beside the export (entities.tsv of the build folder)
    (tmp_path / "build" / "entities.tsv").write_text(
        "entity\ttype\tlabel\taliases\nGenre/space-opera\tGenre\tSpace opera\t\n", encoding="utf-8"
    )
    plain, with_kg = (
        linear_item_texts(topics, "catalogue"),
        linear_item_texts(topics, "catalogue", kg=str(export / "kg.tsv")),
    )
    assert with_kg[0] == plain[0] + " Genre: Space opera. Keywords: Keyword/laser."
    assert with_kg[1:] == plain[1:]  # facts about other entities are left out


def test_kg_is_part_of_the_text_models_input_key(topics):
    plain = model_config_from_dict({"name": "text_ease"})
    with_kg = model_config_from_dict({"name": "text_ease", "kg": "dataset"})
    assert item_text_key(plain) != item_text_key(with_kg)
    for name in ("alpharec", "text_init"):
        assert model_config_from_dict({"name": name, "kg": "x.tsv"}).kg == "x.tsv"


# ---------------------------------------------------------------- the contract suite
_SUITE_PATH = REPO / "tests" / "models" / "test_contract.py"
_spec = importlib.util.spec_from_file_location("graphrec_contract_suite_for_text_ease", _SUITE_PATH)
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)


@pytest.fixture(
    params=[
        {"similarity": "lae", "feature_weight": 0.5},
        {"similarity": "cosine", "neighbours": 10},
        {"text_only": True},
    ],
    ids=["lae-collective", "cosine-knn10", "text-only"],
)
def text_ease_factory(request, monkeypatch, topic_views):
    def build(config, n_users, n_items, train, data=None):
        return TextEASE(n_users, n_items, config, train, item_embeddings=topic_views.item)

    def factory(name, data, seed=0, **overrides):
        torch.manual_seed(seed)
        model = build(
            model_config_from_dict({"name": name, "l2": 20.0, **request.param, **overrides}),
            data.n_users,
            data.n_items,
            data.train,
        )
        model.fit()
        return model

    monkeypatch.setattr(suite, "make", factory)
    monkeypatch.setattr(suite, "build_model", build)
    return request.param


_closed = {
    name: fn for name, fn in vars(suite.TestClosedFormContract).items() if name.startswith("test_")
}
TestTextEASEContract = pytest.mark.usefixtures("text_ease_factory")(
    pytest.mark.parametrize("name", ["text_ease"])(type("TestTextEASEContract", (), _closed))
)


def test_the_contract_suite_is_the_real_one():
    assert len(_closed) >= 6 and "test_checkpoint_round_trip" in _closed


# ---------------------------------------------------------------- train.py end to end
def write_atomic(data, folder: Path) -> None:
    """``data`` as a pre-split RecBole atomic dataset with an item file holding the texts."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        coo = getattr(data, split).tocoo()
        lines = ["user_id:token\titem_id:token"] + [
            f"{data.user_ids[u]}\t{data.item_ids[i]}" for u, i in zip(coo.row, coo.col)
        ]
        (folder / f"{folder.name}.{split}.inter").write_text("\n".join(lines) + "\n")
    info = data.item_info
    columns = ["title", "year", "genres", "overview"]
    lines = ["item_id:token\t" + "\t".join(f"{c}:token" for c in columns)]
    lines += [
        f"{raw}\t" + "\t".join(str(info.iloc[i][c]) for c in columns)
        for i, raw in enumerate(data.item_ids)
    ]
    (folder / f"{folder.name}.item").write_text("\n".join(lines) + "\n")


def test_train_py_end_to_end_beats_ease_on_topic_data(topics, tmp_path):
    folder = tmp_path / "topics"
    write_atomic(topics, folder)
    results = {}
    for name, model in {
        "text": "  name: text_ease\n  l2: 20.0\n  text_weight: 1.0\n  similarity: cosine\n  neighbours: 50\n"
        f"  cache_dir: {tmp_path / 'cache'}\n",
        "ease": "  name: ease\n  l2: 20.0\n",
    }.items():
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            f"data:\n  dataset: {folder}\nmodel:\n{model}train:\n  num_threads: 1\n  progress: false\n"
            "eval:\n  ks: [10, 20]\n  mask_valid_at_test: true\n"
        )
        subprocess.run(
            [
                sys.executable,
                str(REPO / "train.py"),
                "--config",
                str(config),
                "--out-dir",
                str(tmp_path / "runs"),
                "--name",
                name,
                "--quiet",
            ],
            check=True,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        run = tmp_path / "runs" / name
        assert (run / "per_user" / "test.npz").exists() and (
            run / "checkpoints" / "best.pt"
        ).exists()
        results[name] = json.loads((run / "results.json").read_text())
    assert results["text"]["best_epoch"] == 1
    # users keep to one topic and texts name the topic: the text prior must help on this data
    assert results["text"]["test"]["recall@20"] > results["ease"]["test"]["recall@20"]
