"""Dataset registry: load a registered dataset by name, or any data by path.

``load("ml-latest-small-tmdb")`` reads the dataset's files, preprocesses and splits
them with the dataset's documented defaults (see ``datasets/<name>/README.md``)
and returns :class:`~graphrec.data.dataset.InteractionData`.  Every option left at
``None`` takes the dataset's default, so configs can say "default" by omission.

Where the data is found (first match wins; :func:`kg.data.data_roots` holds the rule):

1. ``data_dir=`` or the ``GRAPHREC_DATA_DIR`` environment variable (only there);
2. ``shared/data`` beside the source checkout (``../shared/data``);
3. the user's cache (``~/.cache/graphrec/datasets``), filled from the original
   sources by ``python -m graphrec.datasets fetch NAME``.

No third-party data ships with graphrec.
Nothing is cached implicitly: a split is written to disk only when ``split_dir``
is given, and then it is reused (with hash checks) on the next call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec.data.dataset import InteractionData, KnowledgeGraph
from graphrec.data.preprocess import PreprocessReport, _as_cores, apply_rating_threshold, preprocess
from graphrec.data.readers import (
    ITEM,
    RATING,
    USER,
    AtomicDataset,
    check_ids,
    read_atomic_dir,
    read_interactions,
    read_table,
    require_columns,
)
from graphrec.data.split import (
    MANIFEST,
    build_interaction_data,
    canonical_method,
    load_split,
    parse_ratios,
    safe_name,
    save_split,
    split_interactions,
    split_statistics,
)
from graphrec.errors import ConfigError, DataFormatError
from graphrec.io import iter_json_objects
from kg.data import data_roots as _search_roots
from kg.data import first_dataset_dir, missing_dataset_message

logger = logging.getLogger(__name__)

ENV_VAR = "GRAPHREC_DATA_DIR"

#: Defaults for data that is split by graphrec (also for user paths): RecBole's
#: defaults, i.e. no filtering and a per-user random 8:1:1 split.
GENERIC_DEFAULTS: dict[str, Any] = {
    "split": "ratio",
    "ratios": (0.8, 0.1, 0.1),
    "rating_threshold": None,
    "k_core": 0,
    "duplicates": "first",
    "seed": 2024,
    "unseen_users": "error",
}
#: Options that make no sense for data shipped already split.
SPLIT_OPTIONS = ("split", "ratios", "seed", "k_core", "duplicates")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    Attributes:
        name: registry name.
        description: one line for :func:`list_datasets` users.
        presplit: shipped with a fixed train/valid/test split, used as is.
        defaults: preprocessing/split defaults (keys of :data:`GENERIC_DEFAULTS`).
        extra: extra keyword options this dataset accepts, with their defaults.
    """

    name: str
    description: str
    presplit: bool
    defaults: Mapping[str, Any]
    extra: Mapping[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, DatasetSpec] = {
    "ml-latest-small-tmdb": DatasetSpec(
        name="ml-latest-small-tmdb",
        description="MovieLens ml-latest-small (610 users, 9,742 movies) with TMDB "
        "overviews/taglines and gold KG facts",
        presplit=False,
        defaults={**GENERIC_DEFAULTS, "rating_threshold": 4.0, "k_core": 5},
        extra={"with_text": True, "with_kg": True, "implicit": True},
    ),
    "rlmrec-amazon-book": DatasetSpec(
        name="rlmrec-amazon-book",
        description="Amazon-book split of the RLMRec paper (11,000 users x 9,332 items), used exactly as shipped",
        presplit=True,
        defaults={"rating_threshold": None, "unseen_users": "error"},
        extra={"with_ids": True},
    ),
    "rlmrec-yelp": DatasetSpec(
        name="rlmrec-yelp",
        description="Yelp split of the RLMRec paper (11,091 users x 11,010 items), used exactly as shipped",
        presplit=True,
        defaults={"rating_threshold": None, "unseen_users": "error"},
    ),
    "amazon18-scientific": DatasetSpec(
        name="amazon18-scientific",
        description="Amazon 2018 Industrial & Scientific 5-core (8,317 users x 4,344 items, sparse), titles, "
        "descriptions and gold brand/category facts",
        presplit=False,
        # ordered per user by seq_idx, no timestamps: leave-last-out (valid = second to last)
        defaults={**GENERIC_DEFAULTS, "split": "leave_one_out", "ratios": (0.8, 0.1, 0.1)},
        extra={"with_text": True, "with_kg": True},
    ),
    "ml-100k": DatasetSpec(
        name="ml-100k",
        description="MovieLens-100k (943 users x 1,682 movies) in RecBole atomic files, with a Freebase KG",
        presplit=False,
        defaults=dict(GENERIC_DEFAULTS),
        extra={"with_kg": True, "with_text": True, "implicit": True},
    ),
}
ATOMIC_EXTRA = {
    "name": None,
    "with_kg": True,
    "with_text": True,
    "implicit": True,
    "user_field": USER,
    "item_field": ITEM,
    "rating_field": RATING,
    "time_field": "timestamp",
}
CSV_EXTRA = {
    "name": None,
    "user": USER,
    "item": ITEM,
    "rating": None,
    "timestamp": None,
    "sep": None,
    "header": True,
    "implicit": True,
}


# ------------------------------------------------------------------ locations
def data_roots(data_dir: str | PathLike | None = None) -> list[Path]:
    """Directories searched for datasets by name, in order (see module docstring)."""
    return _search_roots(data_dir)


def dataset_dir(name: str, data_dir: str | PathLike | None = None) -> Path:
    """Directory holding the registered dataset ``name``; raises naming every place searched."""
    if name not in REGISTRY:
        raise ConfigError(
            f"unknown dataset {name!r}; registered: {', '.join(list_datasets())} (or pass a directory path)"
        )
    roots = data_roots(data_dir)
    found = first_dataset_dir(name, roots)
    if found is None:
        raise DataFormatError(missing_dataset_message(name, roots, data_dir))
    return found


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return sorted(REGISTRY)


def dataset_info(name: str) -> dict:
    """Description, defaults and location (``None`` if not found) of a registered dataset."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown dataset {name!r}; registered: {', '.join(list_datasets())}")
    spec = REGISTRY[name]
    try:
        where: str | None = str(dataset_dir(name))
    except DataFormatError:
        where = None
    return {
        "name": name,
        "description": spec.description,
        "presplit": spec.presplit,
        "defaults": dict(spec.defaults),
        "options": dict(spec.extra),
        "path": where,
    }


# ------------------------------------------------------------ catalogue files
def load_items(data_dir: str | PathLike | None = None) -> pd.DataFrame:
    """The full ml-latest-small-tmdb catalogue (``items.tsv``, all 9,742 movies).

    Columns (all ``str``, ``""`` when absent): item_id, title, year, genres,
    overview, tagline, tmdb_id, imdb_id, text_source.
    """
    table = read_table(dataset_dir("ml-latest-small-tmdb", data_dir) / "items.tsv", sep="\t")
    require_columns(table, ("item_id", "title", "year", "genres", "overview", "tagline"))
    check_ids(table, "item_id")
    return table.frame


def load_gold_facts(data_dir: str | PathLike | None = None) -> pd.DataFrame:
    """Gold facts of ml-latest-small-tmdb (``gold_facts.tsv``, 152,316 rows).

    Columns (``str``): item_id (raw MovieLens id), relation (directed_by, starring,
    genre, keyword, production_company, original_language), value, source.
    """
    return _read_facts(
        dataset_dir("ml-latest-small-tmdb", data_dir) / "gold_facts.tsv", ("source",)
    )


def _read_id_map(path: Path, key: str, value: str) -> pd.DataFrame:
    """Read a JSON-lines id map (``{"iid": 0, "asin": "..."}`` per line) as two str columns."""
    keys: list[str] = []
    values: list[str] = []
    for number, record in iter_json_objects(path):
        for name in (key, value):
            if name not in record:
                raise DataFormatError("missing key", path=path, line=number, field=name)
        keys.append(str(record[key]))
        values.append(str(record[value]))
    return pd.DataFrame({"id": keys, value: values})


# ------------------------------------------------------------------ options
def _check_extra(
    overrides: Mapping[str, Any], allowed: Mapping[str, Any], what: str
) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {what}; valid: "
            f"{', '.join(sorted(set(GENERIC_DEFAULTS) | {'split_dir', 'data_dir'} | set(allowed)))}"
        )
    return {**allowed, **overrides}


def _normalise_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate split/preprocessing options and put them in a JSON-able canonical form."""
    out = dict(options)
    try:
        if "split" in out:
            out["split"] = canonical_method(str(out["split"]))
        if "ratios" in out:
            out["ratios"] = [round(r, 10) for r in parse_ratios(out["ratios"])]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if "rating_threshold" in out:
        threshold = out["rating_threshold"]
        if threshold is False:
            threshold = None  # explicit "no threshold"
        if threshold is not None:
            if (
                isinstance(threshold, bool)
                or not isinstance(threshold, (int, float))
                or not np.isfinite(threshold)
            ):
                raise ConfigError(
                    f"rating_threshold must be a number, None or False; got {threshold!r}"
                )
            threshold = float(threshold)
        out["rating_threshold"] = threshold
    if "k_core" in out:
        try:
            user_core, item_core = _as_cores(out["k_core"])
        except (TypeError, ValueError):
            raise ConfigError(
                f"k_core must be an int or [user_core, item_core]; got {out['k_core']!r}"
            ) from None
        if user_core < 0 or item_core < 0:
            raise ConfigError(f"k_core must be >= 0; got {out['k_core']!r}")
        out["k_core"] = user_core if user_core == item_core else [user_core, item_core]
    if "duplicates" in out and out["duplicates"] not in ("first", "last", "drop", "keep"):
        raise ConfigError(
            f"duplicates must be 'first', 'last', 'drop' or 'keep'; got {out['duplicates']!r}"
        )
    if "seed" in out:
        if isinstance(out["seed"], bool) or not isinstance(out["seed"], (int, np.integer)):
            raise ConfigError(f"seed must be an int; got {out['seed']!r}")
        out["seed"] = int(out["seed"])
    if "unseen_users" in out and out["unseen_users"] not in ("error", "drop", "keep"):
        raise ConfigError(
            f"unseen_users must be 'error', 'drop' or 'keep'; got {out['unseen_users']!r}"
        )
    return out


# --------------------------------------------------------------------- load
@dataclass
class _Source:
    """What a loader provides: interactions (or fixed splits) plus side information."""

    name: str
    location: Path
    interactions: Callable[[], pd.DataFrame] | None = None
    splits: dict[str, pd.DataFrame] | None = None
    item_info: Callable[[], pd.DataFrame | None] = lambda: None
    user_info: Callable[[], pd.DataFrame | None] = lambda: None
    kg: Callable[[], KnowledgeGraph | None] = lambda: None
    restrict_kg_to_items: bool = False


def load(
    name_or_path: str | PathLike,
    *,
    split: str | None = None,
    ratios: str | Sequence[float] | None = None,
    rating_threshold: float | bool | None = None,
    k_core: int | Sequence[int] | None = None,
    duplicates: str | None = None,
    seed: int | None = None,
    unseen_users: str | None = None,
    split_dir: str | PathLike | None = None,
    data_dir: str | PathLike | None = None,
    **overrides: Any,
) -> InteractionData:
    """Load, preprocess and split a dataset into :class:`InteractionData`.

    Args:
        name_or_path: a registered name (:func:`list_datasets`), a directory of RecBole
            atomic files, or a CSV/TSV interaction file.
        split: ``ratio`` | ``temporal_global`` | ``temporal_user`` | ``leave_one_out``
            | ``leave_one_out_random`` (see :func:`graphrec.data.split.split_interactions`).
        ratios: e.g. ``(0.8, 0.1, 0.1)`` or ``"8:1:1"``; two values = no validation split.
        rating_threshold: keep ``rating >= threshold``; ``False`` disables a default threshold.
        k_core: iterative k-core (int, or ``(user_core, item_core)``); 0 = off.
        duplicates: repeated (user, item): ``first`` | ``last`` (by time) | ``drop`` | ``keep``.
        seed: seed of random splits.
        unseen_users: valid/test users without training data: ``error`` | ``drop`` | ``keep``.
        split_dir: if it holds a saved split (``split.json``), use that split (hashes
            verified; explicitly given options must match it); otherwise split and save
            the split there for reuse.
        data_dir: folder holding the datasets (default: see module docstring).
        **overrides: dataset-specific options, e.g. ``with_kg=False``, ``with_text=False``,
            ``implicit=False`` (matrix values = ratings); for a CSV file the column
            mapping ``user=``, ``item=``, ``rating=``, ``timestamp=``, ``sep=``, ``header=``;
            for an atomic directory ``name=`` and RecBole field names (``user_field=`` ...).

    Every ``None`` option takes the dataset's default.  Unknown options raise
    :class:`ConfigError`; bad files raise :class:`DataFormatError`.
    """
    given = dict(split=split, ratios=ratios, rating_threshold=rating_threshold, k_core=k_core)
    given.update(duplicates=duplicates, seed=seed, unseen_users=unseen_users)
    explicit = _normalise_options({k: v for k, v in given.items() if v is not None})
    spec = REGISTRY.get(str(name_or_path))
    if spec is not None and spec.presplit:
        _refuse_split_options(spec.name, explicit, split_dir)  # before reading anything
    source, defaults, presplit, extra = _source(name_or_path, data_dir, overrides)
    options = _normalise_options({**defaults, **explicit})

    if presplit:
        return _load_presplit(source, options, explicit, extra, split_dir)

    meta: dict[str, Any] = {"source": str(source.location), "options": options}
    split_dir_path = Path(split_dir) if split_dir is not None else None
    value_col = None if extra.get("implicit", True) else RATING
    if split_dir_path is not None and (split_dir_path / MANIFEST).exists():
        frames, options = _reuse_saved_split(split_dir_path, source, explicit, options, meta)
    else:
        frames = _preprocess_and_split(source, options, split_dir_path, meta)
    if value_col is not None and any(value_col not in f.columns for f in frames.values()):
        raise ConfigError(
            f"implicit=False needs a {value_col!r} column, which {source.name} does not have"
        )
    data = build_interaction_data(
        frames,
        source.name,
        item_info=source.item_info(),
        user_info=source.user_info(),
        meta=meta,
        unseen_users=options["unseen_users"],
        value_col=value_col,
    )
    data.kg = _restricted_kg(source, data)
    logger.info("loaded %s: %s", source.name, _summary(data))
    return data


def _reuse_saved_split(
    split_dir: Path, source: _Source, explicit: dict, options: dict, meta: dict[str, Any]
) -> tuple[dict[str, pd.DataFrame], dict]:
    """The split saved in ``split_dir`` (its settings override the defaults; ``meta`` records it)."""
    frames, manifest = load_split(split_dir)
    _check_manifest(manifest, source.name, explicit, split_dir)
    options = {
        **options,
        **{
            k: v
            for k, v in (manifest.get("options") or {}).items()
            if k in options and k != "unseen_users"
        },
    }
    meta.update(
        options=options,
        preprocessing=manifest.get("preprocessing"),
        split={k: manifest.get(k) for k in ("method", "ratios", "seed", "counts")},
        split_dir=str(split_dir),
        split_files={s: e["sha256"] for s, e in manifest["files"].items()},
    )
    logger.info("%s: reusing the split saved in %s", source.name, split_dir)
    return frames, options


def _preprocess_and_split(
    source: _Source, options: dict, split_dir: Path | None, meta: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """Read, preprocess and split the source's interactions (saved to ``split_dir`` when given)."""
    assert source.interactions is not None
    raw = source.interactions()
    processed, report = preprocess(
        raw,
        rating_threshold=options["rating_threshold"],
        duplicates=options["duplicates"],
        k_core=options["k_core"],
    )
    frames, info = split_interactions(
        processed, options["split"], ratios=options["ratios"], seed=options["seed"]
    )
    meta.update(preprocessing=report.to_dict(), split=info)
    if split_dir is not None:
        save_split(
            frames,
            split_dir,
            source.name,
            method=info["method"],
            ratios=info["ratios"],
            seed=info["seed"],
            extra={
                "options": options,
                "preprocessing": report.to_dict(),
                "source": str(source.location),
            },
        )
        meta["split_dir"] = str(split_dir)
    return frames


def _load_presplit(
    source: _Source, options: dict, explicit: dict, extra: dict, split_dir: str | PathLike | None
) -> InteractionData:
    _refuse_split_options(source.name, explicit, split_dir)
    assert source.splits is not None
    frames = dict(source.splits)
    removed = {}
    if options.get("rating_threshold") is not None:
        for name, frame in frames.items():
            frames[name], removed[name] = apply_rating_threshold(frame, options["rating_threshold"])
    value_col = None if extra.get("implicit", True) else RATING
    meta = {
        "source": str(source.location),
        "options": {k: options[k] for k in ("rating_threshold", "unseen_users") if k in options},
        "split": {"method": "presplit", "counts": split_statistics(frames)},
    }
    if removed:
        meta["below_threshold_removed"] = removed
    data = build_interaction_data(
        frames,
        source.name,
        item_info=source.item_info(),
        user_info=source.user_info(),
        meta=meta,
        unseen_users=options.get("unseen_users", "error"),
        value_col=value_col,
    )
    data.kg = _restricted_kg(source, data)
    logger.info("loaded %s: %s", source.name, _summary(data))
    return data


def _refuse_split_options(
    name: str, explicit: Mapping[str, Any], split_dir: str | PathLike | None
) -> None:
    fixed = [key for key in SPLIT_OPTIONS if key in explicit] + (
        ["split_dir"] if split_dir is not None else []
    )
    if fixed:
        raise ConfigError(
            f"{name} ships a fixed train/valid/test split and is used as shipped; remove {', '.join(fixed)}"
        )


def _summary(data: InteractionData) -> str:
    stats = data.statistics()
    return (
        f"{stats['users']} users x {stats['items']} items, train/valid/test "
        f"{stats['train_interactions']}/{stats['valid_interactions']}/{stats['test_interactions']}"
    )


def _check_manifest(manifest: dict, name: str, explicit: dict, directory: Path) -> None:
    if manifest.get("name") != name:
        raise ConfigError(
            f"split_dir {directory} holds a split of {manifest.get('name')!r}, not of {name!r}"
        )
    stored = _normalise_options(manifest.get("options") or {})
    for key, value in explicit.items():
        if key == "unseen_users":
            continue  # applied when building, not part of the saved split
        if key in stored and stored[key] != value:
            raise ConfigError(
                f"split_dir {directory} was made with {key}={stored[key]!r} but {key}={value!r} was requested; "
                "use another split_dir or drop the option"
            )


def _restricted_kg(source: _Source, data: InteractionData) -> KnowledgeGraph | None:
    kg = source.kg()
    if kg is None:
        return None
    items = set(data.item_ids.tolist())
    link = kg.item_entity.loc[kg.item_entity[ITEM].isin(items)].reset_index(drop=True)
    triples = kg.triples
    if source.restrict_kg_to_items:
        triples = triples.loc[triples["head"].isin(items)].reset_index(drop=True)
    return KnowledgeGraph(triples=triples, item_entity=link)


#: suffixes of the interaction files ``data.dataset`` may name (optionally ``.gz``)
INTERACTION_SUFFIXES = (".csv", ".tsv", ".tab", ".inter", ".txt", ".dat")


def _source(
    name_or_path: str | PathLike, data_dir: str | PathLike | None, overrides: dict
) -> tuple[_Source, dict, bool, dict]:
    """Resolve a name or path to a loader, its defaults, pre-split flag and extra options."""
    key = str(name_or_path)
    if key in REGISTRY:
        spec = REGISTRY[key]
        extra = _check_extra(overrides, spec.extra, key)
        folder = dataset_dir(key, data_dir)
        return LOADERS[key](folder, extra), dict(spec.defaults), spec.presplit, extra
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        extra = _check_extra(overrides, ATOMIC_EXTRA, f"atomic directory {path}")
        atomic = read_atomic_dir(
            path,
            extra["name"],
            user_field=extra["user_field"],
            item_field=extra["item_field"],
            rating_field=extra["rating_field"],
            time_field=extra["time_field"],
        )
        if atomic.presplit and (path / MANIFEST).exists():
            load_split(path)  # a saved split: verify its hashes before trusting it
        source = _atomic(atomic, extra)
        defaults = (
            {"rating_threshold": None, "unseen_users": "error"}
            if atomic.presplit
            else dict(GENERIC_DEFAULTS)
        )
        return source, defaults, atomic.presplit, extra
    if path.is_file():
        # only files that look like interaction tables are read: an error quoting the first line
        # of, say, /etc/passwd would disclose a file the user never meant as data
        if Path(path.name.lower().removesuffix(".gz")).suffix not in INTERACTION_SUFFIXES:
            raise ConfigError(
                f"data.dataset: {str(path)[:200]!r} is a file but not an interaction table "
                f"({', '.join(INTERACTION_SUFFIXES)}); give a registered name, a directory of RecBole atomic files "
                "or a CSV/TSV interaction file"
            )
        extra = _check_extra(overrides, CSV_EXTRA, f"interaction file {path}")
        sep = extra["sep"] or ("\t" if path.suffix.lower() in (".tsv", ".tab", ".inter") else ",")
        source = _Source(
            name=extra["name"] or safe_name(path.stem),
            location=path,
            interactions=lambda: read_interactions(
                path,
                user=extra["user"],
                item=extra["item"],
                rating=extra["rating"],
                timestamp=extra["timestamp"],
                sep=sep,
                header=extra["header"],
            ),
        )
        return source, dict(GENERIC_DEFAULTS), False, extra
    if os.sep in key or "/" in key or path.suffix:
        raise DataFormatError("dataset path not found", path=path)
    raise ConfigError(
        f"unknown dataset {key!r}; registered: {', '.join(list_datasets())}; or pass the path of a directory of "
        "RecBole atomic files or of a CSV/TSV interaction file"
    )


def _ml_tmdb(folder: Path, extra: dict) -> _Source:
    def interactions() -> pd.DataFrame:
        return read_interactions(
            folder / "interactions.tsv",
            user=USER,
            item=ITEM,
            rating=RATING,
            timestamp="timestamp",
            sep="\t",
            quoting=False,
        )

    def item_info() -> pd.DataFrame | None:
        if not extra["with_text"]:
            return None
        return load_items(folder.parent)[
            ["item_id", "title", "year", "genres", "overview", "tagline"]
        ]

    def kg() -> KnowledgeGraph | None:
        if not extra["with_kg"]:
            return None
        return _items_as_entities(load_gold_facts(folder.parent))

    return _Source(
        name="ml-latest-small-tmdb",
        location=folder,
        interactions=interactions,
        item_info=item_info,
        kg=kg,
        restrict_kg_to_items=True,
    )


def _rlmrec(folder: Path, extra: dict) -> _Source:
    name = folder.name
    atomic = read_atomic_dir(folder, name)
    if not atomic.presplit:
        raise DataFormatError(f"expected {name}.train/valid/test.inter", path=folder)
    if not extra.get("with_ids"):
        return _Source(name=atomic.name, location=folder, splits=atomic.splits)

    def item_info() -> pd.DataFrame | None:
        return _read_id_map(folder / "amazon_item.json", "iid", "asin").rename(columns={"id": ITEM})

    def user_info() -> pd.DataFrame | None:
        return _read_id_map(folder / "amazon_user.json", "uid", "reviewerID").rename(
            columns={"id": USER, "reviewerID": "reviewer_id"}
        )

    return _Source(
        name=atomic.name,
        location=folder,
        splits=atomic.splits,
        item_info=item_info,
        user_info=user_info,
    )


def _amazon18(folder: Path, extra: dict) -> _Source:
    """amazon18-scientific: interactions ordered per user by ``seq_idx`` (used as the time
    for leave-last-out), item titles and descriptions, gold brand/category facts."""

    def interactions() -> pd.DataFrame:
        return read_interactions(
            folder / "interactions.tsv",
            user=USER,
            item=ITEM,
            timestamp="seq_idx",
            sep="\t",
            quoting=False,
        )

    def item_info() -> pd.DataFrame | None:
        if not extra["with_text"]:
            return None
        table = read_table(folder / "items.tsv", sep="\t")
        require_columns(table, ("item_id", "title", "description", "brand", "categories"))
        check_ids(table, "item_id")
        return table.frame[["item_id", "title", "description", "brand", "categories"]]

    def kg() -> KnowledgeGraph | None:
        if not extra["with_kg"]:
            return None
        return _items_as_entities(_read_facts(folder / "gold_facts.tsv"))

    return _Source(
        name="amazon18-scientific",
        location=folder,
        interactions=interactions,
        item_info=item_info,
        kg=kg,
        restrict_kg_to_items=True,
    )


def _ml100k(folder: Path, extra: dict) -> _Source:
    return _atomic(read_atomic_dir(folder, "ml-100k"), extra)


def _read_facts(path: Path, extra_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A gold-facts TSV (``item_id``, ``relation``, ``value``, ``extra_columns``) with every id checked."""
    table = read_table(path, sep="\t")
    require_columns(table, ("item_id", "relation", "value", *extra_columns))
    for column in ("item_id", "relation", "value"):
        check_ids(table, column)
    return table.frame


def _items_as_entities(facts: pd.DataFrame) -> KnowledgeGraph:
    """Facts about items as a KG whose items are their own entities (head = raw item id)."""
    triples = pd.DataFrame(
        {"head": facts["item_id"], "relation": facts["relation"], "tail": facts["value"]}
    )
    heads = pd.unique(facts["item_id"])
    return KnowledgeGraph(
        triples=triples, item_entity=pd.DataFrame({ITEM: heads, "entity_id": heads})
    )


def _joined(frame: pd.DataFrame | None, key: str) -> pd.DataFrame | None:
    """Side information with token_seq cells joined back to text (``["Toy", "Story"]`` -> ``"Toy Story"``)."""
    if frame is None:
        return None
    out = frame.copy()
    types = frame.attrs.get("field_types", {})
    for column, kind in types.items():
        if kind == "token_seq" and column in out.columns and column != key:
            out[column] = out[column].map(" ".join)
    return out


def _atomic(atomic: AtomicDataset, extra: dict) -> _Source:
    def kg() -> KnowledgeGraph | None:
        if not extra["with_kg"] or atomic.kg is None:
            return None
        triples = atomic.kg[["head", "relation", "tail"]].reset_index(drop=True)
        if atomic.link is not None:
            link = atomic.link[[ITEM, "entity_id"]].reset_index(drop=True)
            return KnowledgeGraph(triples=triples, item_entity=link)
        return KnowledgeGraph(triples=triples)

    return _Source(
        name=atomic.name,
        location=atomic.directory,
        interactions=(lambda: atomic.inter) if atomic.inter is not None else None,
        splits=atomic.splits,
        item_info=lambda: _joined(atomic.item, ITEM) if extra["with_text"] else None,
        user_info=lambda: _joined(atomic.user, USER),
        kg=kg,
    )


#: How each registered dataset's folder is read.
LOADERS: dict[str, Callable[[Path, dict], _Source]] = {
    "ml-latest-small-tmdb": _ml_tmdb,
    "rlmrec-amazon-book": _rlmrec,
    "rlmrec-yelp": _rlmrec,
    "amazon18-scientific": _amazon18,
    "ml-100k": _ml100k,
}


# --------------------------------------------------------------- statistics
def dataset_statistics(data: InteractionData) -> dict:
    """Statistics for a dataset card: per-split users/items/interactions, density,
    text coverage (when ``item_info`` has an ``overview``) and KG size."""
    stats = data.statistics()
    for split in ("train", "valid", "test"):
        matrix = getattr(data, split)
        if matrix is not None:
            stats[f"{split}_items"] = int((np.diff(matrix.tocsc().indptr) > 0).sum())
    stats["avg_interactions_per_user"] = stats["interactions"] / max(1, data.n_users)
    stats["avg_interactions_per_item"] = stats["interactions"] / max(1, data.n_items)
    train_items = np.diff(data.train.tocsc().indptr) > 0
    stats["items_only_in_valid_or_test"] = int((~train_items).sum())
    if data.item_info is not None and "overview" in data.item_info.columns:
        has_text = data.item_info["overview"].astype(str).str.strip().ne("").to_numpy()
        per_item = np.zeros(data.n_items)
        for split in ("train", "valid", "test"):
            matrix = getattr(data, split)
            if matrix is not None:
                per_item += np.diff(matrix.tocsc().indptr)
        stats["items_with_overview"] = int(has_text.sum())
        stats["items_with_overview_share"] = float(has_text.mean()) if data.n_items else 0.0
        stats["interactions_on_items_with_overview_share"] = float(
            per_item[has_text].sum() / max(1, per_item.sum())
        )
    if data.kg is not None:
        stats["kg_relations"] = int(data.kg.triples["relation"].nunique())
        stats["kg_items_linked"] = int(data.kg.item_entity[ITEM].nunique())
    return stats


def format_statistics(stats: Mapping[str, Any]) -> str:
    """Render :func:`dataset_statistics` as a Markdown table."""
    lines = ["| statistic | value |", "|---|---|"]
    for key, value in stats.items():
        if isinstance(value, float):
            shown = f"{value:.6f}" if value < 0.01 else f"{value:,.4f}"
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = str(value)
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


__all__ = [
    "ENV_VAR",
    "REGISTRY",
    "DatasetSpec",
    "PreprocessReport",
    "data_roots",
    "dataset_dir",
    "dataset_info",
    "dataset_statistics",
    "format_statistics",
    "list_datasets",
    "load",
    "load_gold_facts",
    "load_items",
]
