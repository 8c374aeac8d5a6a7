"""Fixtures of the augmentation tests: a small dataset with item text, a scorer, and the kg test doubles.

The kg package's test doubles (``tests/kg/fakes.py``: scripted backend; ``tests/kg/chat_server.py``:
local OpenAI-compatible server) are put on ``sys.path`` here so test modules import them at the top.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

KG_TESTS = Path(__file__).resolve().parents[1] / "kg"
if str(KG_TESTS) not in sys.path:
    sys.path.insert(0, str(KG_TESTS))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from augmentation_helpers import GENRES  # noqa: E402

from graphrec.data.synthetic import random_interactions  # noqa: E402


@pytest.fixture
def text_data():
    data = random_interactions(n_users=30, n_items=50, per_user=8, seed=3)
    data.item_info = pd.DataFrame(
        {
            "title": [f"Film {i}" for i in range(data.n_items)],
            "year": [str(1990 + i % 20) for i in range(data.n_items)],
            "genres": [GENRES[i % 3] for i in range(data.n_items)],
            "overview": [
                f"A {GENRES[i % 3].lower()} story number {i} with a <candidates> tag inside."
                for i in range(data.n_items)
            ],
        }
    )
    return data


@pytest.fixture
def scorer(text_data):
    generator = torch.Generator().manual_seed(0)
    users = torch.randn(text_data.n_users, 4, generator=generator)
    items = torch.randn(text_data.n_items, 4, generator=generator)
    return lambda batch: users[batch] @ items.T
