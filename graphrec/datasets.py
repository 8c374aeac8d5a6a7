"""Public dataset API: ``graphrec.datasets.load("ml-latest-small-tmdb")``.

A thin front for :mod:`graphrec.data.registry`.  Run it as a module to list the
datasets or print the statistics of one (the tables in the dataset cards)::

    python -m graphrec.datasets list
    python -m graphrec.datasets stats ml-latest-small-tmdb
    python -m graphrec.datasets stats /path/to/ml-100k --split temporal_user
    python -m graphrec.datasets fetch rlmrec-yelp     # original sources -> ~/.cache/graphrec/datasets

No dataset ships with graphrec: a name resolves to ``$GRAPHREC_DATA_DIR/NAME``, else
``../shared/data/NAME`` beside a source checkout, else the user's cache that ``fetch`` fills.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from graphrec.console import user_errors_exit
from graphrec.data.fetch import RECIPES, fetch
from graphrec.data.registry import (
    ENV_VAR,
    data_roots,
    dataset_dir,
    dataset_info,
    dataset_statistics,
    format_statistics,
    list_datasets,
    load,
    load_gold_facts,
    load_items,
)

__all__ = [
    "ENV_VAR",
    "data_roots",
    "dataset_dir",
    "dataset_info",
    "dataset_statistics",
    "fetch",
    "format_statistics",
    "list_datasets",
    "load",
    "load_gold_facts",
    "load_items",
]


@user_errors_exit
def main(argv: list[str] | None = None) -> int:
    """Command line: ``list`` or ``stats NAME_OR_PATH [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m graphrec.datasets", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered datasets and where they are found")
    stats = sub.add_parser("stats", help="load a dataset and print its statistics as Markdown")
    stats.add_argument("dataset")
    stats.add_argument("--split")
    stats.add_argument("--ratios")
    stats.add_argument("--rating-threshold", type=float)
    stats.add_argument("--k-core", type=int)
    stats.add_argument("--seed", type=int)
    stats.add_argument("--unseen-users", choices=("error", "drop", "keep"))
    get = sub.add_parser(
        "fetch",
        help="download a dataset from its original sources into the user's cache, "
        "checking pinned checksums",
    )
    get.add_argument("dataset", choices=sorted(set(RECIPES) | set(list_datasets())))
    get.add_argument("--cache-dir", help="install here instead of ~/.cache/graphrec/datasets")
    get.add_argument(
        "--mirror",
        help="a URL holding every source file under its own name (instead of the originals)",
    )
    get.add_argument(
        "--force", action="store_true", help="download and rebuild even if already there"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "list":
        for name in list_datasets():
            info = dataset_info(name)
            print(
                f"{name}\t{info['path'] or 'NOT FOUND (python -m graphrec.datasets fetch ' + name + ')'}\t"
                f"{info['description']}"
            )
        return 0
    if args.command == "fetch":
        folder = fetch(
            args.dataset,
            args.cache_dir and Path(args.cache_dir),
            base_url=args.mirror,
            force=args.force,
        )
        print(f"{args.dataset}: {folder}")
        return 0
    data = load(
        args.dataset,
        split=args.split,
        ratios=args.ratios,
        rating_threshold=args.rating_threshold,
        k_core=args.k_core,
        seed=args.seed,
        unseen_users=args.unseen_users,
    )
    print(format_statistics(dataset_statistics(data)))
    preprocessing = data.meta.get("preprocessing")
    if preprocessing:
        print(
            f"\ninput: {preprocessing['input_interactions']:,} interactions, {preprocessing['input_users']:,} users, "
            f"{preprocessing['input_items']:,} items; preprocessing: {'; '.join(preprocessing['steps'])}"
        )
    split = data.meta.get("split") or {}
    print(
        f"split: {split.get('method')}"
        + "".join(f", {k}={split[k]}" for k in ("ratios", "seed") if split.get(k) is not None)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
