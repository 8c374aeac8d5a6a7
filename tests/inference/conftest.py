import logging

import pytest
from inference_helpers import two_clusters

from graphrec.data.synthetic import random_interactions


@pytest.fixture(scope="session")
def tiny_data():
    return random_interactions(n_users=30, n_items=40, per_user=8, seed=1)


@pytest.fixture
def clusters():
    return two_clusters()


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLIs point the root logger at the (captured) stderr; later tests must not log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
