"""Fixtures of the alignment tests: the embedded encoder (loaded once), a cache, topic data with texts."""

import pytest
import torch
from alignment_topics import TOPICS, topic_data  # noqa: F401  (TOPICS re-exported for the tests)

from alignment.encoders import EmbeddingCache, SentenceEncoder
from alignment.views import build_text_views


@pytest.fixture(scope="session")
def encoder():
    torch.set_num_threads(1)
    return SentenceEncoder()


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    cache = EmbeddingCache(tmp_path_factory.mktemp("embeddings") / "cache.sqlite")
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def topics():
    return topic_data()


@pytest.fixture(scope="session")
def topic_views(topics, encoder, session_cache):
    return build_text_views(topics, encoder=encoder, cache=session_cache)


@pytest.fixture
def small_data(topics):
    """The contract suite's data fixture: big enough that a [n, 384] text buffer is smaller than users x items."""
    return topics
