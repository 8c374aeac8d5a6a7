from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData, KnowledgeGraph

REPO = Path(__file__).resolve().parents[2]


def tiny_data(kg: KnowledgeGraph | None = None) -> InteractionData:
    """3 users x 4 items (raw ids i0..i3); train: u0-{i0,i1}, u1-{i1,i2}, u2-{i3}."""
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    return InteractionData(
        name="tiny",
        user_ids=np.array(["u0", "u1", "u2"], dtype=object),
        item_ids=np.array(["i0", "i1", "i2", "i3"], dtype=object),
        train=train,
        test=test,
        kg=kg,
    )


@pytest.fixture
def tiny():
    return tiny_data


@pytest.fixture
def tiny_triples() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "head": ["i0", "i1", "i2", "i3", "i0", "director_a", "i9"],
            "relation": ["genre", "genre", "genre", "genre", "directed_by", "born_in", "genre"],
            "tail": ["drama", "drama", "comedy", "comedy", "director_a", "paris", "drama"],
            "score": [0.9, 0.8, 0.1, 0.7, 0.5, 0.6, 0.3],
        }
    )
