"""Topic data with item texts for the alignment tests (a module of its own so tests import it by a unique name)."""

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData

TOPICS = {
    "space": [
        "Astronauts pilot a starship to a distant planet.",
        "A robot crew explores a galaxy of alien worlds.",
        "A space station drifts past a black hole.",
        "Rockets launch a mission to colonise Mars.",
    ],
    "romance": [
        "Two strangers fall in love in Paris.",
        "A wedding planner finds romance with a groom's brother.",
        "Old sweethearts rekindle their love by the sea.",
        "A love letter changes two lives forever.",
    ],
    "crime": [
        "A detective hunts a serial killer in the city.",
        "Gangsters plan a bank heist in Chicago.",
        "A mob boss betrays his family for money.",
        "Police chase a drug cartel across the border.",
    ],
    "cooking": [
        "A chef opens a small restaurant in Rome.",
        "Bakers compete to make the perfect cake.",
        "A family recipe saves a failing kitchen.",
        "A food critic learns to cook pasta.",
    ],
}


def topic_data(
    n_users: int = 400, n_items: int = 420, per_user: int = 8, seed: int = 0
) -> InteractionData:
    """Users each prefer one topic; 80% of their interactions are items of that topic.

    Item texts come from a few sentences per topic (``overview``), titles are unique.
    The last two interactions of each user go to validation and test.
    """
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    item_topic = np.arange(n_items) % len(names)
    user_topic = rng.integers(0, len(names), n_users)
    rows, cols = [], []
    for user in range(n_users):
        own = np.flatnonzero(item_topic == user_topic[user])
        other = np.flatnonzero(item_topic != user_topic[user])
        k_own = int(round(0.8 * per_user))
        items = np.concatenate(
            [
                rng.choice(own, k_own, replace=False),
                rng.choice(other, per_user - k_own, replace=False),
            ]
        )
        rng.shuffle(items)
        rows.append(np.full(per_user, user))
        cols.append(items)
    users, items = np.stack(rows), np.stack(cols)

    def matrix(part: slice) -> sp.csr_matrix:
        u, i = users[:, part].ravel(), items[:, part].ravel()
        return sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_users, n_items))

    info = pd.DataFrame(
        {
            "title": [f"Film {i}" for i in range(n_items)],
            "year": ["2000"] * n_items,
            "genres": [names[t].capitalize() for t in item_topic],
            "overview": [TOPICS[names[t]][(i // len(names)) % 4] for i, t in enumerate(item_topic)],
            "tagline": [""] * n_items,
        }
    )
    return InteractionData(
        name="topics",
        user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        train=matrix(slice(0, per_user - 2)),
        valid=matrix(slice(per_user - 2, per_user - 1)),
        test=matrix(slice(per_user - 1, per_user)),
        item_info=info,
        meta={"user_topic": user_topic.tolist(), "item_topic": item_topic.tolist()},
    )
