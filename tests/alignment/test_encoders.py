"""The sentence encoder and its on-disk embedding cache."""

import numpy as np
import pytest

from alignment.encoders import EmbeddingCache, SentenceEncoder, encode_texts, text_hash
from graphrec.errors import ConfigError


class Spy:
    """Delegates to the real encoder and records what it was asked to encode."""

    def __init__(self, encoder):
        self.inner = encoder
        self.model_id = encoder.model_id
        self.batches = []

    @property
    def dim(self):
        return self.inner.dim

    def encode(self, texts):
        self.batches.append(list(texts))
        return self.inner.encode(texts)


def test_embedded_encoder_gives_normalised_384d_vectors(encoder):
    vectors = encoder.encode(["A detective hunts a killer.", "Two strangers fall in love."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar = encoder.encode(["A police officer chases a murderer."])[0]
    assert similar @ vectors[0] > similar @ vectors[1]


def test_cache_hits_make_no_encoder_call_and_changed_text_is_re_encoded(encoder, tmp_path):
    texts = ["A chef opens a restaurant.", "Rockets launch to Mars.", "A chef opens a restaurant."]
    spy = Spy(encoder)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    first = encode_texts(spy, texts, cache)
    assert spy.batches == [
        ["A chef opens a restaurant.", "Rockets launch to Mars."]
    ]  # duplicates encoded once
    np.testing.assert_array_equal(first[0], first[2])
    cache.close()

    reopened = EmbeddingCache(tmp_path / "c.sqlite")  # persisted on disk
    spy.batches.clear()
    again = encode_texts(spy, texts, reopened)
    assert spy.batches == [] and reopened.hits == 3 and reopened.misses == 0
    np.testing.assert_array_equal(first, again)

    changed = ["A chef opens a bakery.", "Rockets launch to Mars."]
    third = encode_texts(spy, changed, reopened)
    assert spy.batches == [["A chef opens a bakery."]]
    np.testing.assert_array_equal(third[1], first[1])
    np.testing.assert_allclose(third[0], encoder.encode(["A chef opens a bakery."])[0], atol=1e-6)
    assert len(reopened) == 3


def test_cache_is_keyed_by_model_id(encoder, tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("model-a", [text_hash("x")], np.ones((1, 4), np.float32))
    assert cache.get_many("model-b", [text_hash("x")]) == {}
    np.testing.assert_array_equal(
        cache.get_many("model-a", [text_hash("x")])[text_hash("x")], np.ones(4, np.float32)
    )


def test_encoder_settings_are_part_of_the_model_id(encoder):
    assert encoder.model_id != SentenceEncoder(normalize=False).model_id


def test_unknown_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not a local model directory"):
        SentenceEncoder(str(tmp_path / "nope"))
