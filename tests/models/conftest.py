import pytest

from graphrec.data.synthetic import random_interactions


@pytest.fixture
def small_data():
    return random_interactions()
