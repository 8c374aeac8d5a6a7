"""The lexical `tfidf` encoder (TF-IDF + LSA fitted on the catalogue) and `+`-combined encoder settings."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from alignment_topics import topic_data

from alignment.encoders import (
    CombinedEncoder,
    EmbeddingCache,
    build_encoder,
    encode_texts,
    encoder_parts,
)
from alignment.lexical import TfidfLsaEncoder, randomized_svd, tokenize
from alignment.linear import TextEASE, linear_item_texts
from graphrec.config import model_config_from_dict
from graphrec.errors import ConfigError
from graphrec.models import build_model

CATALOGUE = [
    "Scotch Magic Tape, 3 rolls. Invisible tape for the office.",
    "Scotch Heavy Duty Shipping Tape for boxes.",
    "Paper Mate InkJoy 300 ballpoint pens, blue ink.",
    "Paper Mate Flair felt tip pens, assorted colours.",
    "Pyrex glass beaker 250 ml for the laboratory.",
    "Pyrex graduated glass cylinder 100 ml.",
]


def tfidf_reference(texts, min_df=2, max_df=0.5):
    """Dense sublinear TF-IDF rows, L2-normalised, written out term by term."""
    docs = [tokenize(t) for t in texts]
    df = {}
    for doc in docs:
        for term in set(doc):
            df[term] = df.get(term, 0) + 1
    terms = sorted(t for t, n in df.items() if min_df <= n <= max_df * len(docs))
    rows = np.zeros((len(docs), len(terms)))
    for i, doc in enumerate(docs):
        for j, term in enumerate(terms):
            count = doc.count(term)
            if count:
                rows[i, j] = (1 + np.log(count)) * np.log(len(docs) / df[term])
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1)


def test_tokenize_keeps_letters_and_digits():
    assert tokenize("3M Scotch-Tape 600, 19mm_x") == ["3m", "scotch", "tape", "600", "19mm", "x"]


def test_randomized_svd_matches_the_exact_decomposition():
    matrix = sp.random(60, 40, density=0.2, random_state=1, format="csr") + sp.eye(60, 40)
    values, right = randomized_svd(sp.csr_matrix(matrix), 10)
    _, exact, vt = np.linalg.svd(matrix.toarray())
    assert values == pytest.approx(exact[:10], rel=1e-6)
    # same subspace (signs are arbitrary)
    assert np.abs(np.abs(np.sum(right * vt[:10].T, axis=0)) - 1).max() < 1e-6


def test_randomized_svd_keeps_the_leading_subspace_of_a_wide_ill_conditioned_matrix():
    # a vocabulary-shaped matrix (few texts, many terms) whose singular values span six decades
    rng = np.random.default_rng(3)
    left, _ = np.linalg.qr(rng.standard_normal((80, 80)))
    right_true, _ = np.linalg.qr(rng.standard_normal((2000, 80)))
    spectrum = np.logspace(0, -6, 80)
    matrix = sp.csr_matrix((left * spectrum) @ right_true.T)
    values, right = randomized_svd(matrix, 20, oversample=8)
    assert values == pytest.approx(spectrum[:20], rel=1e-6)
    assert np.abs(np.abs(np.sum(right * right_true[:, :20], axis=0)) - 1).max() < 1e-6


def test_full_rank_lsa_keeps_the_tfidf_cosines():
    encoder = TfidfLsaEncoder(dim=64).fit(CATALOGUE)
    vectors = encoder.encode(CATALOGUE)
    reference = tfidf_reference(CATALOGUE)
    assert vectors.shape == (6, encoder.dim) and encoder.dim <= 5
    np.testing.assert_allclose(vectors @ vectors.T, reference @ reference.T, atol=1e-5)
    # the two Scotch tapes are each other's nearest item, through their shared brand word
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    assert sims.argmax(axis=1).tolist() == [1, 0, 3, 2, 5, 4]


def test_new_texts_fold_in_with_the_catalogue_vocabulary():
    encoder = TfidfLsaEncoder().fit(CATALOGUE)
    new = encoder.encode(["Scotch tape refill", "a completely unrelated sentence"])
    assert np.linalg.norm(new[0]) == pytest.approx(1.0, abs=1e-6)
    assert not new[1].any()  # no catalogue term: the zero vector, not NaN
    assert int(np.argmax(encoder.encode(CATALOGUE) @ new[0])) in (0, 1)


def test_fit_is_deterministic_and_names_its_corpus():
    a, b = TfidfLsaEncoder().fit(CATALOGUE), TfidfLsaEncoder().fit(CATALOGUE)
    np.testing.assert_array_equal(a.encode(CATALOGUE), b.encode(CATALOGUE))
    assert a.model_id == b.model_id != TfidfLsaEncoder().fit(CATALOGUE[:5]).model_id


def test_bad_settings_and_unfitted_use_are_clear_errors():
    with pytest.raises(ConfigError, match="fit it on the catalogue"):
        TfidfLsaEncoder().encode(["x"])
    with pytest.raises(ConfigError, match="no term occurs"):
        TfidfLsaEncoder().fit(["one text", "other words"])
    with pytest.raises(ConfigError, match="dim >= 1"):
        TfidfLsaEncoder(dim=0)


def test_encoder_settings_parse_and_refuse_what_they_cannot_build():
    assert encoder_parts("all-MiniLM-L6-v2+tfidf") == ["all-MiniLM-L6-v2", "tfidf"]
    for bad in ("", "tfidf+", "tfidf+tfidf"):
        with pytest.raises(ConfigError):
            encoder_parts(bad)
    with pytest.raises(ConfigError, match="fitted on the catalogue"):
        build_encoder("tfidf")


def test_combined_vectors_average_the_parts_cosines(tmp_path):
    combined = build_encoder("all-MiniLM-L6-v2+tfidf", catalogue=CATALOGUE)
    assert isinstance(combined, CombinedEncoder)
    sentence, lexical = combined.parts
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    vectors = encode_texts(combined, CATALOGUE, cache)
    assert cache.misses == len(CATALOGUE) and len(cache) == len(CATALOGUE)  # sentence part only
    parts = [sentence.encode(CATALOGUE), lexical.encode(CATALOGUE)]
    expected = sum(p @ p.T for p in parts) / 2
    np.testing.assert_allclose(vectors @ vectors.T, expected, atol=1e-5)
    np.testing.assert_allclose(encode_texts(combined, CATALOGUE, cache), vectors, atol=1e-6)
    assert cache.hits == len(CATALOGUE)


def test_text_ease_with_tfidf_scores_new_items_like_a_refit(tmp_path):
    data = topic_data(n_users=50, n_items=30)
    config = model_config_from_dict(
        {
            "name": "text_ease",
            "encoder": "tfidf",
            "similarity": "cosine",
            "l2": 5.0,
            "cache_dir": str(tmp_path),
        }
    )
    model = build_model(config, data.n_users, data.n_items, data.train, data=data)
    model.fit()
    texts = linear_item_texts(data)
    encoder = TfidfLsaEncoder().fit(texts)
    np.testing.assert_allclose(model.item_text.numpy(), encoder.encode(texts), atol=1e-6)
    users = torch.arange(5)
    new_text = texts[
        3
    ]  # an existing item's text: its new-item column matches the catalogue's prior
    scores = model.score_new_items(users, [new_text])
    expected = model.score_new_item_vectors(users, torch.from_numpy(encoder.encode([new_text])))
    torch.testing.assert_close(scores, expected)
    bare = TextEASE(data.n_users, data.n_items, config, data.train, encoder.encode(texts))
    bare.fit()
    with pytest.raises(ConfigError, match="fitted on the catalogue"):
        bare.score_new_items(users, [new_text])
