#!/usr/bin/env python
"""Closed-form baselines — EASE, ItemKNN, most-popular — with settings chosen on validation.

    python benchmarks/baselines.py                                  # ml-latest-small-tmdb, rlmrec-amazon-book,
                                                                    # amazon18-scientific; 1 torch thread
    python benchmarks/baselines.py --datasets ml-latest-small-tmdb --ease-l2 100 500 --knn-neighbours 50
    python benchmarks/baselines.py --report-only                    # tables from the finished cells only

Each dataset uses the split and evaluation of its ``configs/<dataset>/lightgcn.yaml`` (``data`` and ``eval``
sections: cut-offs, masking), so the numbers sit next to LightGCN's.  Every cell — one model at one
setting — is a run of :class:`graphrec.training.Trainer` (fit once = "epoch 1", validation, test at that
epoch) without a run directory.  EASE's ``l2`` (λ) is chosen on validation Recall@20 from ``--ease-l2``,
ItemKNN's (``neighbours``, ``shrink``) from the grid ``--knn-neighbours`` × ``--knn-shrink``; the table
reports the test metrics at the chosen setting only (test metrics of the other cells are kept in the
JSON but take no part in the choice), and the seconds ``fit()`` took (1 torch thread unless
``--threads``; shared machines make them upper bounds).

Resumable: finished cells are kept in ``benchmarks/results/baselines.json`` (written atomically after
every cell) and skipped when the command runs again; ``--out`` changes where the JSON and Markdown go.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphrec.config import TrainConfig, load_config, model_config_from_dict  # noqa: E402
from graphrec.io import atomic_write_json, atomic_write_text  # noqa: E402
from graphrec.models import build_model  # noqa: E402
from graphrec.training import Trainer  # noqa: E402
from graphrec.training.run import load_data  # noqa: E402

DATASETS = ["ml-latest-small-tmdb", "rlmrec-amazon-book", "amazon18-scientific"]
EASE_L2 = [10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]
KNN_NEIGHBOURS = [20, 50, 100, 200, 400, 1000]
KNN_SHRINK = [0.0, 10.0, 100.0, 500.0]
SELECT = "recall@20"
REPORTED = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
LABELS = {"popularity": "most-popular", "itemknn": "ItemKNN", "ease": "EASE"}


def cells(args: argparse.Namespace) -> list[tuple[str, dict]]:
    """``(model name, model settings)`` of every grid cell, in running order."""
    out: list[tuple[str, dict]] = [("popularity", {})]
    out += [
        ("itemknn", {"neighbours": k, "shrink": h})
        for k in args.knn_neighbours
        for h in args.knn_shrink
    ]
    out += [("ease", {"l2": lam}) for lam in args.ease_l2]
    return out


def cell_key(model: str, settings: dict) -> str:
    return model + "".join(f" {k}={v:g}" for k, v in sorted(settings.items()))


def run_cell(dataset: str, model: str, settings: dict, data, threads: int) -> dict:
    """Fit, validate and test one model through the trainer (no run directory)."""
    protocol = load_config(REPO / "configs" / dataset / "lightgcn.yaml")
    config = model_config_from_dict({"name": model, **settings})
    train = TrainConfig(
        epochs=1, select_metric=SELECT, num_threads=threads, progress=False, resume=False
    )
    built = build_model(config, data.n_users, data.n_items, data.train, data=data)
    result = Trainer(built, data, train, protocol.eval, run_dir=None).fit()
    assert result.valid is not None, "the protocol's datasets all have a validation split"
    return {
        "model": model,
        "settings": settings,
        "fit_seconds": result.seconds_per_epoch,
        "valid": {k: result.valid.metrics[k] for k in (SELECT, *REPORTED)},
        "test": {k: result.test.metrics[k] for k in REPORTED},
        "eval": {
            "ks": list(protocol.eval.ks),
            "mask_valid_at_test": protocol.eval.mask_valid_at_test,
        },
    }


def chosen(block: dict, model: str, grid: set[str]) -> dict | None:
    """The finished cell of ``model`` in ``grid`` with the best validation metric (first on ties)."""
    finished = [c for key, c in block["cells"].items() if c["model"] == model and key in grid]
    return max(finished, key=lambda c: c["valid"][SELECT], default=None)


def markdown(report: dict, datasets: list[str], grid: set[str]) -> str:
    lines = [
        "| dataset | model | chosen on valid R@20 | cells | valid R@20 | R@10 | N@10 | R@20 | N@20 | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in datasets:
        block = report["datasets"].get(dataset, {"cells": {}})
        for model in ("popularity", "itemknn", "ease"):
            cell = chosen(block, model, grid)
            if cell is None:
                continue
            n = sum(c["model"] == model and key in grid for key, c in block["cells"].items())
            setting = ", ".join(f"{k} {v:g}" for k, v in sorted(cell["settings"].items())) or "-"
            test = cell["test"]
            lines.append(
                f"| {dataset} | {LABELS[model]} | {setting} | {n} | {cell['valid'][SELECT]:.4f} | "
                + " | ".join(f"{test[m]:.4f}" for m in REPORTED)
                + f" | {cell['fit_seconds']:.2f} |"
            )
    lines += [
        "",
        f"Test metrics at the setting with the best validation Recall@20 (full ranking, training items "
        f"masked; split and evaluation of each dataset's `configs/<dataset>/lightgcn.yaml`). "
        f"`fit s`: seconds of `fit()` with {report['threads']} torch thread(s) on {report['machine']}, "
        "shared with other jobs, so upper bounds.",
    ]
    return "\n".join(lines) + "\n"


def save(report: dict, out: Path, datasets: list[str], grid: set[str]) -> None:
    atomic_write_json(out.with_suffix(".json"), report)
    atomic_write_text(out.with_suffix(".md"), markdown(report, datasets, grid))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--ease-l2", nargs="+", type=float, default=EASE_L2, help="EASE λ grid")
    parser.add_argument("--knn-neighbours", nargs="+", type=int, default=KNN_NEIGHBOURS)
    parser.add_argument("--knn-shrink", nargs="+", type=float, default=KNN_SHRINK)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results" / "baselines",
        help="JSON and Markdown path without suffix",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="write the tables from finished cells only"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import json

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    path = args.out.with_suffix(".json")
    report = json.loads(path.read_text()) if path.exists() else {"datasets": {}}
    grid = {cell_key(m, s) for m, s in cells(args)}
    report.update(
        threads=args.threads,
        machine=f"{platform.machine()} {platform.system()}, torch {torch.__version__}",
    )
    for dataset in args.datasets:
        block = report["datasets"].setdefault(dataset, {"cells": {}})
        todo = [(m, s) for m, s in cells(args) if cell_key(m, s) not in block["cells"]]
        if args.report_only or not todo:  # the table covers this call's grid and datasets only
            continue
        data = load_data(load_config(REPO / "configs" / dataset / "lightgcn.yaml").data)
        block["statistics"] = {
            "users": data.n_users,
            "items": data.n_items,
            "train": int(data.train.nnz),
        }
        for model, settings in todo:
            started = time.perf_counter()
            cell = run_cell(dataset, model, settings, data, args.threads)
            block["cells"][cell_key(model, settings)] = cell
            save(report, args.out, args.datasets, grid)
            print(
                f"{dataset:22s} {cell_key(model, settings):32s} valid {SELECT} {cell['valid'][SELECT]:.4f}  "
                f"test recall@20 {cell['test']['recall@20']:.4f} ndcg@20 {cell['test']['ndcg@20']:.4f}  "
                f"fit {cell['fit_seconds']:.1f}s  total {time.perf_counter() - started:.1f}s",
                flush=True,
            )
    save(report, args.out, args.datasets, grid)
    print(markdown(report, args.datasets, grid), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
