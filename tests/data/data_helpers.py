"""Shared helpers for the data-layer tests (a uniquely named module, not conftest, so
that ``from data_helpers import ...`` cannot pick up another directory's conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kg.data import data_roots, first_dataset_dir

REPO = Path(__file__).resolve().parents[2]
# No dataset is in the repository: tests resolve them as users do (GRAPHREC_DATA_DIR, ../shared/data, the cache).
ML100K = first_dataset_dir("ml-100k", data_roots()) or data_roots()[0] / "ml-100k"

needs_ml100k = pytest.mark.skipif(
    not ML100K.is_dir(),
    reason=f"{ML100K} not available (python -m graphrec.datasets fetch ml-100k)",
)


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def synthetic(
    n_users: int = 40, n_items: int = 60, per_user: tuple[int, int] = (1, 30), seed: int = 0
) -> pd.DataFrame:
    """Random interactions with unique (user, item) pairs, ratings and distinct-ish timestamps."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        k = int(rng.integers(per_user[0], per_user[1] + 1))
        for i in rng.choice(n_items, size=min(k, n_items), replace=False):
            rows.append(
                (f"u{u}", f"i{i}", float(rng.integers(1, 11) / 2), float(rng.integers(0, 10_000)))
            )
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
