"""The ``data`` section of a run config and the loader it drives: one way from a config to a split.

Training, evaluation of a saved run, experiments, searches, the pipeline and the report all
load their split through :func:`load_data`, so one section always means one split.  The
section lives here, beside its loader, so that the data layer needs nothing above it
(:mod:`graphrec.config` assembles it into :class:`~graphrec.config.RunConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphrec.config_schema import doc
from graphrec.data.dataset import InteractionData
from graphrec.data.registry import load

__all__ = ["DataConfig", "load_data"]


@dataclass
class DataConfig:
    """Which dataset to load and how to preprocess and split it."""

    dataset: str = doc(
        "Registry name (see `graphrec.datasets.list_datasets()`) or a directory of RecBole atomic files.",
        "ml-latest-small-tmdb",
        pattern=r"[^\x00]{1,4096}",
        path=True,
    )
    split: str | None = doc(
        "Split method: `ratio`, `temporal_global`, `temporal_user`, `leave_one_out` (last by "
        "time), `leave_one_out_random`; null = the dataset's default (pre-split datasets are used "
        "as shipped).",
        None,
    )
    ratios: list[float] | None = doc(
        "Train/valid/test ratios for ratio and temporal splits; null = dataset default (0.8/0.1/0.1).",
        None,
        ge=0.0,
        le=1.0,
    )
    rating_threshold: float | bool | None = doc(
        "Keep interactions with rating >= threshold as implicit positives; null = dataset "
        "default, false = keep every rating.",
        None,
    )
    k_core: int | None = doc(
        "Iterative k-core filter on users and items; null = dataset default, 0 = off.",
        None,
        ge=0,
        le=1_000_000,
    )
    seed: int | None = doc(
        "Seed of the random split; null = dataset default.", None, ge=0, le=2**32 - 1
    )
    split_dir: str | None = doc(
        "Load a split saved earlier (directory with `split.json`) instead of splitting.",
        None,
        path=True,
    )


def load_data(config: DataConfig) -> InteractionData:
    """Load and split the dataset a :class:`DataConfig` describes (null fields = dataset defaults)."""
    options = {
        key: getattr(config, key)
        for key in ("split", "ratios", "rating_threshold", "k_core", "seed", "split_dir")
        if getattr(config, key) is not None
    }
    return load(config.dataset, **options)
