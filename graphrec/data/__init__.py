"""The data layer: readers, preprocessing, splitters and the dataset registry.

Most users need only :func:`graphrec.datasets.load` (or :func:`load_data` with a run
config's ``data`` section); the pieces are exported here for custom pipelines::

    frame = read_interactions("ratings.csv", user="userId", item="movieId", rating="rating", timestamp="timestamp")
    frame, report = preprocess(frame, rating_threshold=4.0, k_core=5)
    frames, info = split_interactions(frame, "ratio", ratios=(0.8, 0.1, 0.1), seed=2024)
    data = build_interaction_data(frames, "my-ratings", meta={"split": info})
"""

from graphrec.data.dataset import SPLITS, InteractionData, KnowledgeGraph, data_fingerprint
from graphrec.data.loader import DataConfig, load_data
from graphrec.data.preprocess import (
    PreprocessReport,
    apply_rating_threshold,
    deduplicate,
    k_core_filter,
    preprocess,
)
from graphrec.data.readers import (
    ITEM,
    RATING,
    TIME,
    USER,
    AtomicDataset,
    read_atomic_dir,
    read_atomic_file,
    read_interactions,
    read_table,
)
from graphrec.data.split import (
    SPLIT_METHODS,
    build_interaction_data,
    load_split,
    save_split,
    split_interactions,
    split_leave_one_out,
    split_random,
    split_temporal_global,
    split_temporal_user,
)

__all__ = [
    "ITEM",
    "RATING",
    "SPLITS",
    "SPLIT_METHODS",
    "TIME",
    "USER",
    "AtomicDataset",
    "DataConfig",
    "InteractionData",
    "KnowledgeGraph",
    "PreprocessReport",
    "apply_rating_threshold",
    "build_interaction_data",
    "data_fingerprint",
    "deduplicate",
    "k_core_filter",
    "load_data",
    "load_split",
    "preprocess",
    "read_atomic_dir",
    "read_atomic_file",
    "read_interactions",
    "read_table",
    "save_split",
    "split_interactions",
    "split_leave_one_out",
    "split_random",
    "split_temporal_global",
    "split_temporal_user",
]
