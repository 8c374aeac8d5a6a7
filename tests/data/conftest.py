"""Fixtures for the data-layer tests; helpers live in data_helpers.py."""

from __future__ import annotations

import pandas as pd
import pytest
from data_helpers import synthetic


@pytest.fixture
def frame() -> pd.DataFrame:
    return synthetic()
