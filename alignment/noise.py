"""Noise injection: fake training interactions for robustness experiments."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData


def inject_noise(
    data: InteractionData, fraction: float, seed: int = 0
) -> tuple[InteractionData, sp.csr_matrix]:
    """Add ``round(fraction * train.nnz)`` fake training interactions, uniform over unseen pairs.

    Fake pairs are distinct and occur in no split (train, valid or test), so validation
    and test targets are untouched.  Returns ``(noisy data, fake)`` where ``fake`` is the
    ``[n_users, n_items]`` 0/1 matrix of the injected pairs (the ground truth of a
    denoiser).  The same ``(data, fraction, seed)`` always gives the same pairs.
    """
    if fraction < 0:
        raise ValueError(f"fraction must be >= 0, got {fraction}")
    n_users, n_items = data.n_users, data.n_items
    n_fake = int(round(fraction * data.train.nnz))
    seen = data.train.copy()
    for split in (data.valid, data.test):
        if split is not None:
            seen = seen + split
    seen = seen.tocoo()
    taken = np.unique(seen.row.astype(np.int64) * n_items + seen.col)
    if n_fake > n_users * n_items - len(taken):
        raise ValueError(
            f"cannot add {n_fake} fake interactions: only {n_users * n_items - len(taken)} unseen pairs"
        )
    rng = np.random.default_rng(seed)
    chosen = np.zeros(0, dtype=np.int64)
    while len(chosen) < n_fake:
        draw = rng.integers(0, n_users * n_items, size=2 * (n_fake - len(chosen)) + 16)
        draw = draw[~np.isin(draw, taken)]
        chosen = np.unique(
            np.concatenate([chosen, draw])
        )  # sorted: order does not depend on draw order
    if len(chosen) > n_fake:
        chosen = rng.choice(chosen, size=n_fake, replace=False)
    fake = sp.csr_matrix(
        (np.ones(len(chosen), np.float32), (chosen // n_items, chosen % n_items)),
        shape=(n_users, n_items),
    )
    meta = dict(data.meta)
    meta["noise"] = {"fraction": fraction, "seed": seed, "fake_interactions": int(fake.nnz)}
    noisy = InteractionData(
        name=f"{data.name}-noise{fraction:g}-seed{seed}",
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        train=data.train + fake,
        valid=data.valid,
        test=data.test,
        item_info=data.item_info,
        user_info=data.user_info,
        kg=data.kg,
        meta=meta,
    )
    return noisy, fake
