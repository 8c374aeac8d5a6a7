"""New items from their text (issue 15): `text_ease`'s prior column and `alpharec`'s zero-shot projection score an
item that is not in the training data exactly as a refit with it in the catalogue (and no interactions) would;
the recommender ranks them with the catalogue, the server takes them in `/recommend`, other models refuse."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from alignment_topics import topic_data

from alignment.alpharec import AlphaRec
from alignment.linear import TextEASE
from graphrec.config import load_config, model_config_from_dict
from graphrec.inference import InvalidRequestError, load_recommender
from graphrec.inference.server import running_server
from graphrec.training import run_training


def random_case(n_users=40, n_items=25, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    train = sp.random(
        n_users, n_items, density=0.25, format="csr", random_state=seed, dtype=np.float32
    )
    train.data[:] = 1.0
    texts = rng.normal(size=(n_items + 2, dim)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return train, texts


def padded(train, extra):
    """The training matrix with `extra` empty item columns appended (items without interactions)."""
    return sp.hstack(
        [train, sp.csr_matrix((train.shape[0], extra), dtype=np.float32)], format="csr"
    )


@pytest.mark.parametrize(
    "settings",
    [
        {"similarity": "cosine"},
        {"similarity": "lae", "similarity_l2": 3.0},
        {"similarity": "lae", "neighbours": 5, "min_similarity": 0.0},
        {"similarity": "cosine", "text_only": True, "text_weight": 2.0},
    ],
)
def test_text_ease_new_item_column_is_that_of_a_refit_with_the_item(settings):
    train, texts = random_case()
    n_users, n_items = train.shape
    config = model_config_from_dict(
        {"name": "text_ease", "l2": 5.0, "text_weight": 1.5, "cold_items": "prior", **settings}
    )
    model = TextEASE(n_users, n_items, config, train, item_embeddings=texts[:n_items])
    model.fit()
    users = torch.arange(n_users)
    for new in (n_items, n_items + 1):  # each new item alone, as the model's math defines it
        refit = TextEASE(
            n_users,
            n_items + 1,
            config,
            padded(train, 1),
            item_embeddings=texts[list(range(n_items)) + [new]],
        )
        refit.fit()
        expected = refit.score(users)[:, n_items]
        got = model.score_new_item_vectors(users, torch.from_numpy(texts[new : new + 1]))[:, 0]
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
        assert expected.abs().max() > 1e-3  # a real, non-zero column


def test_text_ease_refuses_new_items_without_a_text_prior():
    train, texts = random_case()
    for settings, message in (
        ({"text_weight": 0.0, "cold_items": "prior"}, "no text prior"),
        ({"feature_weight": 1.0}, "feature_weight"),
    ):
        config = model_config_from_dict({"name": "text_ease", **settings})
        model = TextEASE(*train.shape, config, train, item_embeddings=texts[: train.shape[1]])
        model.fit()
        with pytest.raises(Exception, match=message):
            model.score_new_item_vectors(torch.arange(3), torch.from_numpy(texts[-1:]))


def test_alpharec_new_item_scores_as_an_item_without_interactions():
    train, texts = random_case(dim=8)
    n_users, n_items = train.shape
    config = model_config_from_dict(
        {"name": "alpharec", "embedding_dim": 4, "hidden_dim": 8, "num_layers": 2}
    )
    torch.manual_seed(0)
    model = AlphaRec(n_users, n_items, config, train, item_embeddings=texts[:n_items])
    bigger = AlphaRec(n_users, n_items + 2, config, padded(train, 2), item_embeddings=texts)
    bigger.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = bigger.score(torch.arange(n_users))[:, n_items:]
        got = model.score_items(torch.arange(n_users), torch.from_numpy(texts[n_items:]))
    assert torch.allclose(got, expected, atol=1e-5)


def train_run(tmp_path, name, *overrides):
    data = topic_data(n_users=60, n_items=40)
    config = load_config(
        None,
        [
            f"model.name={name}",
            *overrides,
            f"model.cache_dir={tmp_path / 'cache'}",
            "train.epochs=1",
            "train.progress=false",
            "train.num_threads=1",
            "eval.ks=[5]",
            "train.select_metric=recall@5",
            f"out_dir={tmp_path}",
            f"name={name}",
        ],
    )
    run_training(config, data)
    return config.run_dir, data


SPACE = "Film 900. Space. Astronauts pilot a starship to a distant planet."


@pytest.fixture(scope="module")
def text_ease_run(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("text_ease"), "text_ease", "model.similarity=cosine")


def test_recommend_ranks_new_items_with_the_catalogue(text_ease_run):
    run_dir, data = text_ease_run
    rec = load_recommender(run_dir)
    space_fans = [u for u, t in zip(data.user_ids, data.meta["user_topic"]) if t == 0][:3]
    new = {
        "new-space": SPACE,
        "new-food": "Film 901. Cooking. A chef opens a small restaurant in Rome.",
    }
    scores = rec.score_new_items(space_fans, new)
    assert (
        scores.shape == (3, 2) and (scores[:, 0] > scores[:, 1]).all()
    )  # space fans prefer the space film
    lists = rec.recommend(space_fans, k=rec.n_items + 2, new_items=new)
    for user, row, listed in zip(space_fans, scores, lists):
        assert {"new-space", "new-food"} <= set(listed.items)
        position = listed.items.index("new-space")
        assert listed.scores[position] == pytest.approx(float(row[0]), abs=1e-6)
        assert listed.scores == sorted(listed.scores, reverse=True)
        plain = rec.recommend([user], k=rec.n_items)[0]
        assert [
            i for i in listed.items if not i.startswith("new-")
        ] == plain.items  # catalogue order unchanged
    only_new = rec.recommend(
        space_fans[:1], k=5, new_items=new, filter=lambda raw: raw.startswith("new")
    )[0]
    assert only_new.items == ["new-space", "new-food"]
    with pytest.raises(InvalidRequestError, match="catalogue item already"):
        rec.recommend(space_fans, new_items={"i0": SPACE})
    with pytest.raises(InvalidRequestError, match="non-empty string"):
        rec.score_new_items(space_fans, {"x": "  "})


def test_alpharec_run_scores_new_items_and_id_models_refuse(tmp_path):
    run_dir, data = train_run(tmp_path, "alpharec", "model.embedding_dim=8", "model.hidden_dim=16")
    rec = load_recommender(run_dir)
    got = rec.recommend(
        ["u0", "u1"], k=3, new_items={"new": SPACE}, filter=lambda raw: raw == "new"
    )
    assert [r.items for r in got] == [["new"], ["new"]]
    assert got[0].scores[0] == pytest.approx(
        float(rec.score_new_items(["u0"], {"new": SPACE})[0, 0]), abs=1e-6
    )
    run_dir, _ = train_run(tmp_path, "text_init", "model.backbone={name: mf, embedding_dim: 8}")
    with pytest.raises(InvalidRequestError, match="'text_init' cannot score unseen items"):
        load_recommender(run_dir).recommend(["u0"], new_items={"new": SPACE})


@pytest.fixture(scope="module")
def server(text_ease_run):
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    with running_server(load_recommender(text_ease_run[0]), max_k=50) as url:
        yield url


def test_server_recommends_new_items_and_validates_them(server, text_ease_run):
    httpx = pytest.importorskip("httpx")
    rec = load_recommender(text_ease_run[0])
    new = {"new-space": SPACE}
    body = {"user": "u0", "k": 5, "new_items": new}
    got = httpx.post(server + "/recommend", json=body).json()
    assert got["items"] == rec.recommend(["u0"], k=5, new_items=new)[0].items
    for bad, status, message in (
        ({"i0": SPACE}, 422, "catalogue item already"),
        ({"x": ""}, 422, "at least 1 character"),
        ({f"n{i}": "t" for i in range(1001)}, 422, "at most 1000"),
        ([SPACE], 422, "valid dictionary"),
    ):
        response = httpx.post(server + "/recommend", json={"user": "u0", "new_items": bad})
        assert response.status_code == status and message in str(response.json()["detail"]), (
            response.text
        )


def test_readme_new_items_snippet_runs(text_ease_run):
    """The README's "New items from text" Python snippet, on the tiny text_ease run (its user ids)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## New items from text") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'rec.recommend(["1"], k=10, new_items=new)' in code
    code = (
        code.replace('"runs/text-ease"', repr(str(text_ease_run[0])))
        .replace('"1"', '"u1"')
        .replace('"2"', '"u2"')
    )
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    rec, new = namespace["rec"], namespace["new"]
    assert rec.score_new_items(["u1", "u2"], new).shape == (2, 1)
    assert "tt-new-1" in rec.recommend(["u1"], k=rec.n_items + 1, new_items=new)[0].items


def test_concurrent_new_item_requests_each_get_their_own_scores(text_ease_run):
    """The server scores new items in worker threads: concurrent requests with different texts must not mix."""
    from concurrent.futures import ThreadPoolExecutor

    rec = load_recommender(text_ease_run[0])
    texts = [
        SPACE,
        "Film 902. Romance. Two strangers fall in love in Paris.",
        "Film 903. Crime. A detective hunts a killer.",
        "Film 904. Cooking. Bakers compete to make the perfect cake.",
    ]
    users = list(rec.user_ids[:10])
    expected = [rec.score_new_items(users, {"n": text}) for text in texts]
    with ThreadPoolExecutor(8) as pool:
        got = list(
            pool.map(lambda j: (j % 4, rec.score_new_items(users, {"n": texts[j % 4]})), range(64))
        )
    for which, scores in got:
        np.testing.assert_allclose(scores, expected[which], atol=1e-6)


def test_cold_items_neighbours_builds_cold_columns_from_the_trained_items():
    train, texts = random_case(n_items=25)
    train = sp.csr_matrix(train.multiply(np.r_[np.ones(20), np.zeros(5)][None, :]))  # 5 cold items
    train.eliminate_zeros()
    n_users, n_items = train.shape
    settings = {"name": "text_ease", "l2": 5.0, "similarity_l2": 2.0, "cold_items": "prior"}
    prior = TextEASE(n_users, n_items, model_config_from_dict(settings), train, texts[:n_items])
    prior.fit()
    config = model_config_from_dict({**settings, "cold_items": "neighbours"})
    model = TextEASE(n_users, n_items, config, train, item_embeddings=texts[:n_items])
    model.fit()
    b_prior, b = prior.weights.double().numpy(), model.weights.double().numpy()
    np.testing.assert_array_equal(b[:, :20], b_prior[:, :20])  # trained items' columns untouched
    z = texts[:n_items].astype(np.float64)
    ridge = np.linalg.solve(z[:20] @ z[:20].T + 2.0 * np.eye(20), z[:20] @ z[20:].T)
    expected = b_prior[:, :20] @ ridge
    expected[np.arange(20, 25), np.arange(5)] = 0.0
    np.testing.assert_allclose(b[:, 20:], expected, atol=1e-5)
    assert not np.allclose(b[:, 20:], b_prior[:, 20:], atol=1e-3)  # not the prior column
    # a new item with a cold item's text gets that cold item's column (up to its zero diagonal entry)
    column = model.new_item_weights(torch.from_numpy(texts[22:23])).numpy()[:, 0]
    column[22] = 0.0
    np.testing.assert_allclose(column, b[:, 22], atol=1e-5)


def test_cold_items_neighbours_needs_the_fit_but_not_a_prior():
    train, texts = random_case()
    config = model_config_from_dict(
        {"name": "text_ease", "l2": 5.0, "text_weight": 0.0, "cold_items": "neighbours"}
    )
    model = TextEASE(*train.shape, config, train, item_embeddings=texts[: train.shape[1]])
    model.fit()
    scores = model.score_new_item_vectors(torch.arange(3), torch.from_numpy(texts[-2:]))
    assert scores.shape == (3, 2) and torch.isfinite(scores).all() and scores.abs().sum() > 0
