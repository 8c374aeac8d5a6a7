"""Train/valid/test splitters, :class:`InteractionData` construction, split files.

Splitters take a standard interaction frame (``user_id``, ``item_id``, optional
``rating``/``timestamp``) and return ``{"train": df, "valid": df, "test": df}``
(no ``"valid"`` key for two ratios).  They are deterministic: the frame is first
put in a canonical order (user, item, timestamp), so the same data and seed give
the same split whatever the row order of the file.

Per-user counts follow RecBole's rule (``int(ratio * n)`` for valid/test, the rest
to train, then a user with a fractional share below one still gets one valid /
test interaction while more than one train interaction remains), so every user
keeps at least one training interaction: with 8:1:1 a user with 5 interactions
gets 3/1/1, with 2 gets 1/0/1, with 1 gets 1/0/0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec.data.dataset import SPLITS, InteractionData, KnowledgeGraph
from graphrec.data.readers import ITEM, RATING, TIME, USER, read_atomic_file
from graphrec.errors import DataFormatError
from graphrec.io import atomic_open, atomic_write_json

logger = logging.getLogger(__name__)

#: Split methods of :func:`split_interactions` (names shared with ``graphrec.config.DataConfig.split``).
SPLIT_METHODS = (
    "ratio",
    "temporal_global",
    "temporal_user",
    "leave_one_out",
    "leave_one_out_random",
)
#: Accepted short names.
SPLIT_ALIASES = {
    "random": "ratio",
    "temporal": "temporal_global",
    "loo": "leave_one_out",
    "loo_random": "leave_one_out_random",
}
MANIFEST = "split.json"
MANIFEST_FORMAT = "graphrec-split/1"
UnseenPolicy = Literal["error", "drop", "keep"]


# ---------------------------------------------------------------- helpers
def parse_ratios(ratios: str | Sequence[float]) -> tuple[float, ...]:
    """Normalise ``"8:1:1"``, ``(8, 1, 1)`` or ``(0.8, 0.1, 0.1)`` to fractions summing to 1.

    Two ratios mean train/test, three train/valid/test.
    """
    if isinstance(ratios, str):
        try:
            values = [float(part) for part in re.split(r"[:,/ ]+", ratios.strip()) if part]
        except ValueError:
            raise ValueError(f"ratios must look like '8:1:1', got {ratios!r}") from None
    else:
        values = [float(r) for r in ratios]
    if (
        len(values) not in (2, 3)
        or any(not np.isfinite(v) or v < 0 for v in values)
        or values[0] <= 0
    ):
        raise ValueError(
            f"ratios must be 2 or 3 non-negative numbers with a positive train share, got {ratios!r}"
        )
    total = sum(values)
    return tuple(v / total for v in values)


def _split_names(ratios: Sequence[float]) -> tuple[str, ...]:
    return ("train", "valid", "test") if len(ratios) == 3 else ("train", "test")


def split_counts(sizes: np.ndarray, ratios: Sequence[float]) -> np.ndarray:
    """Per-group split sizes, shape ``[len(sizes), len(ratios)]`` (RecBole's rule).

    ``int(r * n)`` for every split but train, train gets the rest; then, from the
    last split backwards, a split whose exact share is in ``(0, 1)`` gets one
    interaction from train as long as train keeps more than one.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    shares = np.asarray(ratios, dtype=np.float64)
    exact = shares[None, :] * sizes[:, None]
    counts = exact.astype(np.int64)  # truncation, as RecBole's int()
    counts[:, 0] = sizes - counts[:, 1:].sum(axis=1)
    for j in range(len(shares) - 1, 0, -1):
        give = (counts[:, 0] > 1) & (exact[:, j] > 0) & (exact[:, j] < 1)
        counts[give, j] += 1
        counts[give, 0] -= 1
    return counts


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [USER, ITEM] + ([TIME] if TIME in frame.columns else [])
    out = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


def _require(frame: pd.DataFrame, column: str, method: str) -> None:
    if column not in frame.columns:
        raise DataFormatError(
            f"split method {method!r} needs a {column!r} column; the interactions have {list(frame.columns)}",
            path=frame.attrs.get("path"),
            field=column,
        )


def _by_rank(frame: pd.DataFrame, within_user_key: np.ndarray, counts_of) -> np.ndarray:
    """Label each row with a split index from its rank inside its user.

    ``within_user_key`` orders a user's rows (earliest / random first);
    ``counts_of(sizes)`` gives the per-user split sizes ``[n_users, k]``.
    """
    codes = pd.factorize(frame[USER], sort=False)[0]
    order = np.lexsort((within_user_key, codes))  # by user, then key; stable for ties
    users = codes[order]
    starts = (
        np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        if len(users)
        else np.zeros(0, dtype=np.int64)
    )
    sizes = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, sizes)
    bounds = np.repeat(np.cumsum(counts_of(sizes), axis=1), sizes, axis=0)
    labels = np.empty(len(frame), dtype=np.int64)
    labels[order] = (rank[:, None] >= bounds).sum(axis=1)
    return labels


def _frames(
    frame: pd.DataFrame, labels: np.ndarray, names: Sequence[str]
) -> dict[str, pd.DataFrame]:
    out = {}
    for index, name in enumerate(names):
        part = frame.loc[labels == index].reset_index(drop=True)
        part.attrs = dict(frame.attrs)
        out[name] = part
    return out


# -------------------------------------------------------------- splitters
def split_random(
    frame: pd.DataFrame, ratios: str | Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2024
) -> dict[str, pd.DataFrame]:
    """Per-user random split by ratio: each user's interactions are shuffled (seeded)
    and cut by :func:`split_counts`; every user keeps at least one train item."""
    ratios = parse_ratios(ratios)
    frame = _canonical(frame)
    keys = np.random.default_rng(seed).random(len(frame))
    labels = _by_rank(frame, keys, lambda sizes: split_counts(sizes, ratios))
    return _frames(frame, labels, _split_names(ratios))


def split_temporal_user(
    frame: pd.DataFrame, ratios: str | Sequence[float] = (0.8, 0.1, 0.1)
) -> dict[str, pd.DataFrame]:
    """Per-user temporal split: each user's earliest interactions go to train, the
    latest to test (sizes from :func:`split_counts`; equal timestamps in item order)."""
    _require(frame, TIME, "temporal_user")
    ratios = parse_ratios(ratios)
    frame = _canonical(frame)
    labels = _by_rank(frame, frame[TIME].to_numpy(), lambda sizes: split_counts(sizes, ratios))
    return _frames(frame, labels, _split_names(ratios))


def split_temporal_global(
    frame: pd.DataFrame, ratios: str | Sequence[float] = (0.8, 0.1, 0.1)
) -> dict[str, pd.DataFrame]:
    """Global temporal cut at timestamp quantiles.

    With ``t_v`` / ``t_t`` the timestamps at the 80% / 90% positions (for 8:1:1),
    train is ``ts < t_v``, valid ``t_v <= ts < t_t`` and test ``ts >= t_t``, so
    every train interaction is strictly older than every valid/test one; when many
    interactions share a cut timestamp the realised ratios move a little.
    Users whose interactions are all after ``t_v`` have no training data; see
    ``unseen_users`` in :func:`build_interaction_data`.  The cut timestamps are
    the smallest timestamps of valid and test.
    """
    _require(frame, TIME, "temporal_global")
    ratios = parse_ratios(ratios)
    frame = _canonical(frame)
    times = np.sort(frame[TIME].to_numpy(), kind="stable")
    counts = (
        split_counts(np.array([len(frame)]), ratios)[0]
        if len(frame)
        else np.zeros(len(ratios), dtype=np.int64)
    )
    positions = np.cumsum(counts)[:-1]
    # A cut at the end (an empty last split) is +inf, so nothing lands after it.
    cuts = [float(times[p]) if p < len(times) else float("inf") for p in positions]
    labels = np.searchsorted(np.asarray(cuts), frame[TIME].to_numpy(), side="right")
    return _frames(frame, labels, _split_names(ratios))


def split_leave_one_out(
    frame: pd.DataFrame,
    *,
    order: Literal["time", "random"] = "time",
    seed: int = 2024,
    valid: bool = True,
) -> dict[str, pd.DataFrame]:
    """Leave-one-out: per user the last interaction goes to test and (``valid``)
    the second last to valid; "last" is by timestamp or, with ``order="random"``,
    by a seeded shuffle.  Users with too few interactions keep one in train: 1 ->
    train only, 2 -> train + test."""
    if order not in ("time", "random"):
        raise ValueError(f"order must be 'time' or 'random', not {order!r}")
    if order == "time":
        _require(frame, TIME, "leave_one_out")
    frame = _canonical(frame)
    keys = (
        frame[TIME].to_numpy()
        if order == "time"
        else np.random.default_rng(seed).random(len(frame))
    )

    def counts_of(sizes: np.ndarray) -> np.ndarray:
        test = (sizes >= 2).astype(np.int64)
        cols = [sizes - test, test]
        if valid:
            val = (sizes >= 3).astype(np.int64)
            cols = [sizes - test - val, val, test]
        return np.stack(cols, axis=1)

    labels = _by_rank(frame, keys, counts_of)
    return _frames(frame, labels, ("train", "valid", "test") if valid else ("train", "test"))


def canonical_method(method: str) -> str:
    """The canonical name of a split method or alias; ``ValueError`` if unknown."""
    canonical = SPLIT_ALIASES.get(method, method)
    if canonical not in SPLIT_METHODS:
        raise ValueError(
            f"unknown split method {method!r}; expected one of {', '.join(SPLIT_METHODS)} "
            f"(aliases: {', '.join(f'{a}={c}' for a, c in SPLIT_ALIASES.items())})"
        )
    return canonical


def split_interactions(
    frame: pd.DataFrame,
    method: str = "ratio",
    *,
    ratios: str | Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 2024,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Split with one of :data:`SPLIT_METHODS` and describe the split.

    ``ratio`` (per-user random ratio, seeded), ``temporal_global`` (global cut at
    timestamp quantiles), ``temporal_user`` (per-user by time), ``leave_one_out``
    (by time), ``leave_one_out_random`` (seeded).  For leave-one-out, ratios with
    two entries mean no validation split, otherwise the values are ignored.

    Returns:
        ``(frames, info)``, ``info`` holding ``method``, ``ratios``, ``seed`` (``None``
        where unused) and per-split ``counts`` (plus ``cut_timestamps`` for
        ``temporal_global``).
    """
    method = canonical_method(method)
    ratios_t = parse_ratios(ratios)
    info: dict = {"method": method, "ratios": [round(r, 10) for r in ratios_t], "seed": seed}
    if method == "ratio":
        frames = split_random(frame, ratios_t, seed)
    elif method == "temporal_user":
        frames = split_temporal_user(frame, ratios_t)
        info["seed"] = None
    elif method == "temporal_global":
        frames = split_temporal_global(frame, ratios_t)
        info["cut_timestamps"] = [
            float(f[TIME].min()) if len(f) else None for f in list(frames.values())[1:]
        ]
        info["seed"] = None
    else:
        random_order = method == "leave_one_out_random"
        frames = split_leave_one_out(
            frame, order="random" if random_order else "time", seed=seed, valid=len(ratios_t) == 3
        )
        info["ratios"] = None
        if not random_order:
            info["seed"] = None
    info["counts"] = split_statistics(frames)
    logger.info(
        "split %s: %s",
        method,
        ", ".join(f"{name} {c['interactions']}" for name, c in info["counts"].items()),
    )
    return frames, info


def split_statistics(frames: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    """``{split: {"interactions", "users", "items"}}`` of raw split frames."""
    return {
        name: {
            "interactions": len(f),
            "users": int(f[USER].nunique()),
            "items": int(f[ITEM].nunique()),
        }
        for name, f in frames.items()
    }


# ------------------------------------------------------ InteractionData
def sort_ids(raw_ids: Iterable[str]) -> tuple[np.ndarray, str]:
    """Sorted unique raw ids and the order used.

    Ids that are all non-negative decimal integers sort numerically (``"2"`` before
    ``"10"``), so datasets shipped with ids ``0..n-1`` keep internal id == raw id;
    anything else sorts lexicographically.  Returns ``(ids, "numeric"|"lexicographic")``.
    """
    unique = pd.unique(
        pd.Series(list(raw_ids) if not isinstance(raw_ids, pd.Series) else raw_ids, dtype=object)
    )
    values = [str(v) for v in unique]
    if values and all(v.isascii() and v.isdigit() for v in values):
        values.sort(key=lambda v: (int(v), v))
        kind = "numeric"
    else:
        values.sort()
        kind = "lexicographic"
    return np.asarray(values, dtype=object), kind


def _align(
    info: pd.DataFrame | None, key: str, ids: np.ndarray, what: str
) -> tuple[pd.DataFrame | None, int]:
    """Reindex side information by raw id to internal order ``0..n-1``.

    Rows for ids missing from ``info`` get ``""`` in text columns (how the movie
    files spell "no text") and NaN in numeric ones.  Returns ``(frame, covered)``.
    """
    if info is None:
        return None, 0
    frame = info.set_index(key) if key in info.columns else info.copy()
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise DataFormatError(
            f"{what} has several rows for id {dup!r}", path=info.attrs.get("path"), field=key
        )
    covered = int(frame.index.isin(ids).sum())
    aligned = frame.reindex(pd.Index(ids, dtype=object))
    for column in aligned.columns:
        if not pd.api.types.is_numeric_dtype(aligned[column]):
            aligned[column] = aligned[column].astype(object).where(aligned[column].notna(), "")
    aligned = aligned.reset_index(drop=True)
    aligned.index.name = None
    return aligned, covered


def build_interaction_data(
    frames: Mapping[str, pd.DataFrame],
    name: str,
    item_info: pd.DataFrame | None = None,
    user_info: pd.DataFrame | None = None,
    kg: KnowledgeGraph | None = None,
    meta: dict | None = None,
    *,
    unseen_users: UnseenPolicy = "error",
    value_col: str | None = None,
) -> InteractionData:
    """Build :class:`InteractionData` from split frames of raw ids.

    Args:
        frames: ``{"train": df, "test": df}`` and optionally ``"valid"``; each with
            ``user_id`` and ``item_id`` columns.
        name: dataset name.
        item_info / user_info: side information with an ``item_id`` / ``user_id``
            column (or index); aligned to internal ids, extra ids ignored.
        kg: knowledge graph in raw ids, passed through.
        meta: provenance to store; counts from this function are added.
        unseen_users: what to do with valid/test users that have no training
            interaction: ``"error"`` (default) raises, ``"drop"`` removes their
            valid/test rows and reports the count, ``"keep"`` keeps them (cold-start
            users with an empty train row).
        value_col: column holding matrix values (e.g. ``"rating"``); ``None`` gives
            1.0 (implicit feedback).

    The id maps cover every user and item of every split, sorted (see
    :func:`sort_ids`), so items seen only in valid/test exist (cold start).  A
    ``(user, item)`` pair repeated inside a split is stored once (first value).

    Raises:
        DataFormatError: missing train/test, an empty split, unknown split names or
            unseen users under ``"error"``.
    """
    frames = _checked_frames(frames, name, unseen_users, value_col)
    meta = dict(meta or {})
    frames = _handle_unseen_users(frames, name, unseen_users, meta)
    all_frames = list(frames.values())
    user_ids, user_order = sort_ids(pd.concat([f[USER] for f in all_frames], ignore_index=True))
    item_ids, item_order = sort_ids(pd.concat([f[ITEM] for f in all_frames], ignore_index=True))
    matrices, within_duplicates, overlap = _split_matrices(
        frames, name, user_ids, item_ids, value_col
    )
    aligned_items, items_covered = _align(item_info, ITEM, item_ids, "item_info")
    aligned_users, users_covered = _align(user_info, USER, user_ids, "user_info")
    meta.update(
        {
            "id_order": {"users": user_order, "items": item_order},
            "duplicates_within_splits": within_duplicates,
            "pairs_in_several_splits": overlap,
            "unseen_users": unseen_users,
        }
    )
    if aligned_items is not None:
        meta["items_with_info"] = items_covered
    if aligned_users is not None:
        meta["users_with_info"] = users_covered
    return InteractionData(
        name=name,
        user_ids=user_ids,
        item_ids=item_ids,
        train=matrices["train"],
        valid=matrices.get("valid"),
        test=matrices["test"],
        item_info=aligned_items,
        user_info=aligned_users,
        kg=kg,
        meta=meta,
    )


def _checked_frames(
    frames: Mapping[str, pd.DataFrame],
    name: str,
    unseen_users: UnseenPolicy,
    value_col: str | None,
) -> dict[str, pd.DataFrame]:
    """The split frames in :data:`SPLITS` order, once names, columns and sizes are checked."""
    unknown = set(frames) - set(SPLITS)
    if unknown:
        raise DataFormatError(
            f"unknown split name(s) {sorted(unknown)} for dataset {name!r}; expected {SPLITS}"
        )
    for required in ("train", "test"):
        if required not in frames:
            raise DataFormatError(f"dataset {name!r} has no {required!r} split", field=required)
    if unseen_users not in ("error", "drop", "keep"):
        raise ValueError(f"unseen_users must be 'error', 'drop' or 'keep', not {unseen_users!r}")
    ordered = {split: frames[split] for split in SPLITS if split in frames}
    for split, frame in ordered.items():
        for column in (USER, ITEM) + ((value_col,) if value_col else ()):
            if column not in frame.columns:
                raise DataFormatError(
                    f"split {split!r} has no {column!r} column",
                    path=frame.attrs.get("path"),
                    field=column,
                )
        if len(frame) == 0:
            raise DataFormatError(
                f"split {split!r} of dataset {name!r} is empty (0 interactions)",
                path=frame.attrs.get("path"),
                field=split,
            )
    return ordered


def _handle_unseen_users(
    frames: dict[str, pd.DataFrame], name: str, unseen_users: UnseenPolicy, meta: dict
) -> dict[str, pd.DataFrame]:
    """Apply the ``unseen_users`` policy to valid/test users without training interactions
    (``drop`` records its counts in ``meta``)."""
    train_users = set(frames["train"][USER].tolist())
    dropped_users: set[str] = set()
    dropped_rows = 0
    for split in ("valid", "test"):
        if split not in frames:
            continue
        frame = frames[split]
        unseen = ~frame[USER].isin(train_users).to_numpy()
        if not unseen.any():
            continue
        users = sorted(set(frame.loc[unseen, USER].tolist()))
        if unseen_users == "error":
            raise DataFormatError(
                f"split {split!r} of dataset {name!r} has {len(users)} user(s) with no training "
                f"interaction (e.g. {', '.join(map(repr, users[:5]))}); pass unseen_users='drop' "
                "to drop them or unseen_users='keep' to keep them as cold-start users",
                path=frame.attrs.get("path"),
                field=USER,
            )
        if unseen_users == "drop":
            dropped_users.update(users)
            dropped_rows += int(unseen.sum())
            kept = frame.loc[~unseen].reset_index(drop=True)
            kept.attrs = dict(frame.attrs)
            if len(kept) == 0:
                raise DataFormatError(
                    f"split {split!r} of dataset {name!r} is empty after dropping {len(users)} "
                    "unseen user(s)",
                    field=split,
                )
            frames[split] = kept
    if unseen_users == "drop":
        meta["unseen_users_dropped"] = len(dropped_users)
        meta["unseen_interactions_dropped"] = dropped_rows
        if dropped_users:
            logger.warning(
                "%s: dropped %d valid/test interactions of %d users with no training interaction",
                name,
                dropped_rows,
                len(dropped_users),
            )
    return frames


def _split_matrices(
    frames: dict[str, pd.DataFrame],
    name: str,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    value_col: str | None,
) -> tuple[dict[str, sp.csr_matrix], dict[str, int], dict[str, int]]:
    """One CSR matrix per split (a pair repeated inside a split stored once, first value), the
    count of such repeats per split and of pairs shared by two splits (both logged)."""
    shape = (len(user_ids), len(item_ids))
    matrices: dict[str, sp.csr_matrix] = {}
    within_duplicates: dict[str, int] = {}
    pair_sets = {}
    for split, frame in frames.items():
        rows = pd.Categorical(frame[USER], categories=user_ids).codes.astype(np.int64)
        cols = pd.Categorical(frame[ITEM], categories=item_ids).codes.astype(np.int64)
        pair = rows * shape[1] + cols
        first = ~pd.Series(pair).duplicated().to_numpy()
        within_duplicates[split] = int((~first).sum())
        values = (
            np.ones(int(first.sum()), dtype=np.float32)
            if value_col is None
            else frame[value_col].to_numpy(np.float32)[first]
        )
        matrices[split] = sp.csr_matrix(
            (values, (rows[first], cols[first])), shape=shape, dtype=np.float32
        )
        pair_sets[split] = np.unique(pair[first])
    if any(within_duplicates.values()):
        logger.warning(
            "%s: repeated (user, item) pairs inside splits stored once: %s", name, within_duplicates
        )
    overlap = {}
    names = list(frames)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = int(np.intersect1d(pair_sets[a], pair_sets[b], assume_unique=True).size)
            if shared:
                overlap[f"{a}&{b}"] = shared
    if overlap:
        logger.warning("%s: (user, item) pairs present in more than one split: %s", name, overlap)
    return matrices, within_duplicates, overlap


# ------------------------------------------------------------- split files
def _format_float(values: np.ndarray) -> list[str]:
    # Integral values (timestamps, whole ratings) without ".0"; others round-trip via repr.
    return [
        str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v)) for v in values
    ]


def _inter_bytes(frame: pd.DataFrame, path: Path) -> bytes:
    columns = [c for c in (USER, ITEM, RATING, TIME) if c in frame.columns]
    cells: list[list[str]] = []
    for column in columns:
        if column in (USER, ITEM):
            values = frame[column].astype(str)
            bad = values.str.contains(r"[\t\r\n]", regex=True).to_numpy() | values.eq("").to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataFormatError(
                    f"id {values.iloc[row]!r} is empty or contains a tab/newline and cannot be written",
                    path=path,
                    field=column,
                )
            cells.append(values.tolist())
        else:
            cells.append(_format_float(frame[column].to_numpy(np.float64)))
    kinds = {USER: "token", ITEM: "token", RATING: "float", TIME: "float"}
    lines = ["\t".join(f"{c}:{kinds[c]}" for c in columns)]
    lines.extend("\t".join(row) for row in zip(*cells))
    return ("\n".join(lines) + "\n").encode("utf-8")


def safe_name(name: str) -> str:
    """A dataset name usable as a file stem (path separators and odd characters replaced)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "dataset"


def save_split(
    frames: Mapping[str, pd.DataFrame],
    directory: str | PathLike,
    name: str,
    *,
    method: str | None = None,
    ratios: Sequence[float] | None = None,
    seed: int | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a split as RecBole atomic files plus a ``split.json`` manifest.

    Files: ``NAME.train.inter``, ``NAME.valid.inter`` (when present),
    ``NAME.test.inter`` with raw ids and typed headers, each written atomically,
    then ``split.json`` with ``method``, ``ratios``, ``seed``, per-split
    ``counts`` and the ``sha256`` and size of every file (``extra`` is stored
    too).  The manifest is written last and removed first, so an interrupted save
    never leaves a manifest that vouches for half-written files.

    Returns:
        Path of ``split.json``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST
    manifest_path.unlink(missing_ok=True)
    stem = safe_name(name)
    files = {}
    for split in SPLITS:
        if split not in frames:
            continue
        path = directory / f"{stem}.{split}.inter"
        payload = _inter_bytes(frames[split], path)
        with atomic_open(path, "wb") as handle:
            handle.write(payload)
        files[split] = {
            "file": path.name,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "bytes": len(payload),
        }
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "method": method,
        "ratios": None if ratios is None else [float(r) for r in ratios],
        "seed": seed,
        "counts": split_statistics({s: frames[s] for s in files}),
        "files": files,
    }
    for key, value in (extra or {}).items():
        if key in manifest:
            raise ValueError(f"extra key {key!r} would overwrite a manifest field")
        manifest[key] = value
    atomic_write_json(manifest_path, manifest)
    logger.info("saved split of %s to %s", name, directory)
    return manifest_path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: str | PathLike) -> dict:
    """Read and check the shape of ``split.json`` in ``directory``."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise DataFormatError(
            f"no {MANIFEST} here: not a split saved by graphrec.data.split.save_split",
            path=directory,
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataFormatError(f"not a {MANIFEST_FORMAT} manifest", path=path, field="format")
    files = manifest.get("files")
    if not isinstance(files, dict) or "train" not in files or "test" not in files:
        raise DataFormatError("manifest must list train and test files", path=path, field="files")
    return manifest


def load_split(directory: str | PathLike) -> tuple[dict[str, pd.DataFrame], dict]:
    """Load a split written by :func:`save_split`, verifying every file's sha256.

    Returns:
        ``(frames, manifest)``, frames keyed ``train``/``valid``/``test``.

    Raises:
        DataFormatError: no or invalid manifest, a missing file, or a file whose
            size or hash differs from the manifest (modified or truncated).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    frames = {}
    for split, entry in manifest["files"].items():
        if (
            split not in SPLITS
            or not isinstance(entry, dict)
            or "file" not in entry
            or "sha256" not in entry
        ):
            raise DataFormatError(
                f"bad entry for split {split!r}", path=directory / MANIFEST, field="files"
            )
        path = directory / Path(entry["file"]).name  # never follow a path out of the directory
        if not path.is_file():
            raise DataFormatError(f"split file listed in {MANIFEST} is missing", path=path)
        size = path.stat().st_size
        if "bytes" in entry and size != entry["bytes"]:
            raise DataFormatError(
                f"file has {size} bytes but {MANIFEST} records {entry['bytes']}: it was truncated "
                "or modified after the split was saved",
                path=path,
            )
        digest = _sha256(path)
        if digest != entry["sha256"]:
            raise DataFormatError(
                f"sha256 {digest[:12]}... does not match {entry['sha256'][:12]}... in {MANIFEST}: "
                "the file was modified after the split was saved",
                path=path,
            )
        frames[split] = read_atomic_file(
            path, required=(USER, ITEM), numeric_required=(RATING, TIME)
        )
    return frames, manifest
