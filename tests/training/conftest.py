import pytest

from graphrec.data.synthetic import random_interactions


@pytest.fixture
def small_data():
    return random_interactions(n_users=60, n_items=80, per_user=10)
