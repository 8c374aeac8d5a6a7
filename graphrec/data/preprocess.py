"""Interaction preprocessing: rating threshold, duplicates, iterative k-core.

All functions take and return the standard interaction frame (``user_id``,
``item_id`` as str, optional ``rating`` / ``timestamp`` as float64) and report how
many rows, users and items each step removed, so that a dataset card or a log
can say exactly what happened to the raw data.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from graphrec.data.readers import ITEM, RATING, TIME, USER
from graphrec.errors import DataFormatError

logger = logging.getLogger(__name__)

DuplicatePolicy = Literal["first", "last", "drop", "keep"]


@dataclass
class PreprocessReport:
    """What :func:`preprocess` did; every count refers to interaction rows unless named.

    ``duplicates_removed`` counts rows removed (a pair seen 3 times with
    ``keep="first"`` removes 2 rows); k-core counts are totals over all rounds.
    """

    input_interactions: int = 0
    input_users: int = 0
    input_items: int = 0
    duplicates: str = "first"
    duplicates_removed: int = 0
    rating_threshold: float | None = None
    below_threshold_removed: int = 0
    user_core: int = 0
    item_core: int = 0
    k_core_rounds: int = 0
    k_core_users_removed: int = 0
    k_core_items_removed: int = 0
    k_core_interactions_removed: int = 0
    output_interactions: int = 0
    output_users: int = 0
    output_items: int = 0
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _counts(frame: pd.DataFrame) -> tuple[int, int, int]:
    return len(frame), int(frame[USER].nunique()), int(frame[ITEM].nunique())


def deduplicate(frame: pd.DataFrame, keep: DuplicatePolicy = "first") -> tuple[pd.DataFrame, int]:
    """Handle repeated ``(user, item)`` pairs.

    Args:
        frame: interactions.
        keep: ``"first"`` keeps the earliest interaction of each pair (by timestamp
            when there is one, ties in file order), ``"last"`` the latest, ``"drop"``
            removes every row of a repeated pair, ``"keep"`` leaves all rows.

    Returns:
        ``(frame, removed)``: the rows kept, in their original order, and the number
        of rows removed.
    """
    if keep not in ("first", "last", "drop", "keep"):
        raise ValueError(f"duplicates must be 'first', 'last', 'drop' or 'keep', not {keep!r}")
    if keep == "keep" or frame.empty:
        return frame, 0
    # Decide in time order, then remove by position so the input order survives.
    if TIME in frame.columns:
        order = np.argsort(frame[TIME].to_numpy(), kind="stable")
    else:
        order = np.arange(len(frame))
    duplicated = (
        frame.iloc[order]
        .duplicated([USER, ITEM], keep=False if keep == "drop" else keep)
        .to_numpy()
    )
    remove = np.zeros(len(frame), dtype=bool)
    remove[order[duplicated]] = True
    return frame.loc[~remove], int(remove.sum())


def apply_rating_threshold(
    frame: pd.DataFrame, threshold: float | None
) -> tuple[pd.DataFrame, int]:
    """Keep interactions with ``rating >= threshold`` (implicit feedback).

    ``None`` keeps everything.  Returns ``(frame, removed)``.
    """
    if threshold is None:
        return frame, 0
    if RATING not in frame.columns:
        raise DataFormatError(
            f"rating_threshold={threshold} needs a rating column, but the interactions have only {list(frame.columns)}",
            path=frame.attrs.get("path"),
            field=RATING,
        )
    keep = frame[RATING].to_numpy() >= float(threshold)
    return frame.loc[keep], int((~keep).sum())


def k_core_filter(
    frame: pd.DataFrame, user_core: int = 0, item_core: int = 0
) -> tuple[pd.DataFrame, dict]:
    """Iteratively drop users with < ``user_core`` and items with < ``item_core`` interactions.

    Removing an item can push a user below the threshold and vice versa, so the
    filter repeats until nothing changes; the result is the largest sub-frame in
    which every user and item meets its threshold.  Counts are of rows, so apply it
    after deduplication.

    Returns:
        ``(frame, stats)`` with ``stats`` keys ``rounds``, ``users_removed``,
        ``items_removed`` and ``interactions_removed``.
    """
    _, users0, items0 = _counts(frame)
    rows0 = len(frame)
    rounds = 0
    current = frame
    while (user_core > 1 or item_core > 1) and len(current):
        keep = np.ones(len(current), dtype=bool)
        if user_core > 1:
            keep &= (
                current.groupby(USER, sort=False)[USER].transform("size").to_numpy() >= user_core
            )
        if item_core > 1:
            keep &= (
                current.groupby(ITEM, sort=False)[ITEM].transform("size").to_numpy() >= item_core
            )
        if keep.all():
            break
        rounds += 1
        current = current.loc[keep]
    _, users1, items1 = _counts(current)
    stats = {
        "rounds": rounds,
        "users_removed": users0 - users1,
        "items_removed": items0 - items1,
        "interactions_removed": rows0 - len(current),
    }
    return current, stats


def _as_cores(k_core: int | tuple[int, int] | None) -> tuple[int, int]:
    if k_core is None or k_core is False:
        return 0, 0
    if isinstance(k_core, (tuple, list)):
        if len(k_core) != 2:
            raise ValueError(f"k_core must be an int or (user_core, item_core), got {k_core!r}")
        return int(k_core[0]), int(k_core[1])
    return int(k_core), int(k_core)


def preprocess(
    frame: pd.DataFrame,
    *,
    rating_threshold: float | None = None,
    duplicates: DuplicatePolicy = "first",
    k_core: int | tuple[int, int] | None = 0,
) -> tuple[pd.DataFrame, PreprocessReport]:
    """Deduplicate, threshold ratings, then k-core filter, in that order.

    Deduplication comes first so that the rating of the kept interaction (e.g. the
    user's latest opinion with ``duplicates="last"``) decides whether the pair
    passes the threshold; k-core comes last because it must see the final rows.

    Args:
        frame: standard interaction frame.
        rating_threshold: keep ``rating >= threshold``; ``None`` keeps all rows.
        duplicates: see :func:`deduplicate`.
        k_core: ``k`` for both users and items, or ``(user_core, item_core)``;
            ``0``/``1``/``None`` disables it.

    Returns:
        ``(frame, report)``; the frame keeps the input's row order and a fresh
        ``RangeIndex``.  The report is also logged at INFO level.
    """
    user_core, item_core = _as_cores(k_core)
    report = PreprocessReport(
        duplicates=duplicates,
        rating_threshold=rating_threshold,
        user_core=user_core,
        item_core=item_core,
    )
    report.input_interactions, report.input_users, report.input_items = _counts(frame)
    attrs = dict(frame.attrs)

    out, report.duplicates_removed = deduplicate(frame, duplicates)
    report.steps.append(f"duplicates={duplicates}: -{report.duplicates_removed} rows")
    out, report.below_threshold_removed = apply_rating_threshold(out, rating_threshold)
    if rating_threshold is not None:
        report.steps.append(f"rating >= {rating_threshold}: -{report.below_threshold_removed} rows")
    out, stats = k_core_filter(out, user_core, item_core)
    report.k_core_rounds = stats["rounds"]
    report.k_core_users_removed = stats["users_removed"]
    report.k_core_items_removed = stats["items_removed"]
    report.k_core_interactions_removed = stats["interactions_removed"]
    if user_core > 1 or item_core > 1:
        report.steps.append(
            f"k-core (users>={user_core}, items>={item_core}, {stats['rounds']} rounds): "
            f"-{stats['interactions_removed']} rows, -{stats['users_removed']} users, -{stats['items_removed']} items"
        )
    out = out.reset_index(drop=True)
    out.attrs = attrs
    report.output_interactions, report.output_users, report.output_items = _counts(out)
    logger.info(
        "preprocess: %d -> %d interactions, %d -> %d users, %d -> %d items (%s)",
        report.input_interactions,
        report.output_interactions,
        report.input_users,
        report.output_users,
        report.input_items,
        report.output_items,
        "; ".join(report.steps),
    )
    return out, report
