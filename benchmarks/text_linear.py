#!/usr/bin/env python
"""Text-regularised linear autoencoder (``text_ease``, L3AE-style) against EASE and a text item-kNN.

    python benchmarks/text_linear.py                       # amazon18-scientific, ml-latest-small-tmdb; 1 torch thread
    python benchmarks/text_linear.py --report-only         # tables from the finished cells only

Every arm gets the same budget of 24 settings, each chosen on validation Recall@20; the test metrics
are those of the chosen setting only (the other cells' test metrics are kept in the JSON but play no
part in the choice):

* **EASE** — ``l2`` over 24 values, log-spaced from 5 to 10,000 (the baselines' 8 values lie inside);
* **text-EASE** — ``similarity: lae`` (L3AE's text matrix), ``similarity_l2`` μ ∈ {3, 10, 30} ×
  ``l2`` ρ ∈ {50, 100, 200, 500} × ``text_weight`` c ∈ {1, 2};
* **text-kNN** — ``text_only`` (B = S): cosine or ``lae`` (μ = 1, 10) text matrix × ``neighbours`` ∈
  {5, 10, 20, 50, 100, 200, 500, all}.

Item texts: catalogue text with brand and categories (``item_text: catalogue+attributes``), encoded once
by the embedded all-MiniLM-L6-v2 (on-disk cache).  The grid values of text-EASE were fixed after a few
exploratory *validation-only* fits (no test metric was computed before the grid was fixed).  Each cell is a
:class:`graphrec.training.Trainer` run without a run directory, with the split and evaluation of the
dataset's ``configs/<dataset>/lightgcn.yaml``.  Closed-form fits are deterministic, so there are no seeds;
the chosen cells of each arm are refitted at the end for their per-user test vectors, and text-EASE and
text-kNN are compared with EASE by paired Wilcoxon signed-rank tests (and paired t-tests) over users.

Resumable: finished cells are kept in ``benchmarks/results/text_linear.json`` (written atomically after
every cell) and skipped on the next run; the per-user vectors of the chosen cells go to
``text_linear_per_user.npz`` and the table to ``text_linear.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alignment.linear import TextEASE, item_text_embeddings  # noqa: E402
from graphrec.config import TrainConfig, load_config, model_config_from_dict  # noqa: E402
from graphrec.evaluation import paired_tests  # noqa: E402
from graphrec.io import atomic_open, atomic_write_json, atomic_write_text  # noqa: E402
from graphrec.models import build_model  # noqa: E402
from graphrec.models.base import Recommender  # noqa: E402
from graphrec.training import Trainer  # noqa: E402
from graphrec.training.run import load_data  # noqa: E402

DATASETS = ["amazon18-scientific", "ml-latest-small-tmdb"]
SELECT = "recall@20"
REPORTED = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
EASE_L2 = [float(f"{v:.3g}") for v in np.geomspace(5.0, 10000.0, 24)]
TE_MU, TE_L2, TE_C = [3.0, 10.0, 30.0], [50.0, 100.0, 200.0, 500.0], [1.0, 2.0]
KNN_SIMS = [("cosine", 10.0), ("lae", 1.0), ("lae", 10.0)]
KNN_NEIGHBOURS = [5, 10, 20, 50, 100, 200, 500, 0]
ARMS = {"ease": "EASE", "text_ease": "text-EASE", "text_knn": "text-kNN"}
#: published test figures of the strongest non-text baselines (README "Strong baselines"; LightGCN 1 seed)
REFERENCE = {
    "amazon18-scientific": {"LightGCN": {"recall@20": 0.0972, "ndcg@20": 0.0469}},
    "ml-latest-small-tmdb": {"LightGCN": {"recall@20": 0.2887, "ndcg@20": 0.1866}},
}
TARGET = {"amazon18-scientific": (0.15, 0.01), "ml-latest-small-tmdb": (0.05, 0.05)}


def cells() -> list[tuple[str, dict]]:
    """``(arm, model settings)`` of every cell, in running order (24 per arm)."""
    out: list[tuple[str, dict]] = [("ease", {"name": "ease", "l2": lam}) for lam in EASE_L2]
    out += [
        (
            "text_ease",
            {
                "name": "text_ease",
                "similarity": "lae",
                "similarity_l2": mu,
                "l2": rho,
                "text_weight": c,
            },
        )
        for mu in TE_MU
        for rho in TE_L2
        for c in TE_C
    ]
    out += [
        (
            "text_knn",
            {
                "name": "text_ease",
                "text_only": True,
                "similarity": sim,
                "similarity_l2": mu,
                "neighbours": k,
            },
        )
        for sim, mu in KNN_SIMS
        for k in KNN_NEIGHBOURS
    ]
    return out


def cell_key(arm: str, settings: dict) -> str:
    return arm + "".join(
        f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}"
        for k, v in sorted(settings.items())
        if k != "name"
    )


def run_cell(dataset: str, settings: dict, data, embeddings, threads: int):
    """Fit, validate and test one setting through the trainer (no run directory); returns (summary, result)."""
    protocol = load_config(REPO / "configs" / dataset / "lightgcn.yaml")
    config = model_config_from_dict(dict(settings))
    model: Recommender
    if config.name == "text_ease":
        model = TextEASE(data.n_users, data.n_items, config, data.train, item_embeddings=embeddings)
    else:
        model = build_model(config, data.n_users, data.n_items, data.train, data=data)
    train = TrainConfig(
        epochs=1, select_metric=SELECT, num_threads=threads, progress=False, resume=False
    )
    result = Trainer(model, data, train, protocol.eval, run_dir=None).fit()
    assert result.valid is not None, "every dataset here has a validation split"
    summary = {
        "settings": {k: v for k, v in settings.items() if k != "name"},
        "fit_seconds": result.seconds_per_epoch,
        "valid": {k: result.valid.metrics[k] for k in (SELECT, *REPORTED)},
        "test": {k: result.test.metrics[k] for k in REPORTED},
    }
    return summary, result


def chosen(block: dict, arm: str) -> tuple[str, dict] | None:
    """The finished cell of ``arm`` with the best validation metric (first in grid order on ties)."""
    grid = [cell_key(a, s) for a, s in cells() if a == arm]
    finished = [(key, block["cells"][key]) for key in grid if key in block["cells"]]
    return max(finished, key=lambda kc: kc[1]["valid"][SELECT], default=None)


def fmt_p(p: float | None) -> str:
    return "n/a" if p is None or p != p else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def target_rows(report: dict, datasets: list[str]) -> list[str]:
    """The issue's target: text-EASE against the better of LightGCN (README) and EASE, on test."""
    lines = [
        "",
        "Target of the issue (text model vs the better of LightGCN and EASE, on test):",
        "",
        "| dataset | metric | best of LightGCN / EASE | text-EASE | rel. change | target "
        "| p vs EASE (Wilcoxon) | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset in datasets:
        block = report["datasets"].get(dataset, {})
        te, ease = (
            chosen(block, "text_ease") if block else None,
            chosen(block, "ease") if block else None,
        )
        if not te or not ease:
            continue
        gain, alpha = TARGET[dataset]
        for metric in ("recall@20", "ndcg@20"):
            best = max(ease[1]["test"][metric], *(r[metric] for r in REFERENCE[dataset].values()))
            value = te[1]["test"][metric]
            rel = value / best - 1
            p = next(
                (
                    r["p_wilcoxon"]
                    for r in block.get("paired", [])
                    if r["b"] == "text_ease" and r["metric"] == metric
                ),
                None,
            )
            met = rel >= gain and p is not None and p < alpha
            lines.append(
                f"| {dataset} | {metric} | {best:.4f} | {value:.4f} | {100 * rel:+.1f}% | "
                f"≥ +{100 * gain:.0f}%, p < {alpha} | {fmt_p(p)} | {'yes' if met else 'no'} |"
            )
    return lines


def markdown(report: dict, datasets: list[str]) -> str:
    lines = [
        "| dataset | arm | cells | chosen on validation | valid R@20 | R@10 | N@10 | R@20 | N@20 | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in datasets:
        block = report["datasets"].get(dataset)
        if not block:
            continue
        for arm, label in ARMS.items():
            pick = chosen(block, arm)
            if pick is None:
                continue
            key, cell = pick
            n = sum(1 for a, s in cells() if a == arm and cell_key(a, s) in block["cells"])
            setting = ", ".join(
                f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in sorted(cell["settings"].items())
            )
            lines.append(
                f"| {dataset} | {label} | {n} | {setting} | {cell['valid'][SELECT]:.4f} | "
                + " | ".join(f"{cell['test'][m]:.4f}" for m in REPORTED)
                + f" | {cell['fit_seconds']:.1f} |"
            )
        for name, ref in REFERENCE.get(dataset, {}).items():
            lines.append(
                f"| {dataset} | {name} (README, 1 seed) | | | | | | {ref['recall@20']:.4f} | {ref['ndcg@20']:.4f} | |"
            )
    lines += [
        "",
        "Paired tests over users on test (B vs A; Wilcoxon signed-rank, users with equal values dropped; "
        "paired t-test), at the settings chosen on validation:",
        "",
        "| dataset | A | B | metric | mean A | mean B | rel. change | p Wilcoxon | p t-test | users |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in datasets:
        for row in report["datasets"].get(dataset, {}).get("paired", []):
            lines.append(
                f"| {dataset} | {ARMS[row['a']]} | {ARMS[row['b']]} | {row['metric']} | {row['mean_a']:.4f} | "
                f"{row['mean_b']:.4f} | {100 * row['rel_improvement']:+.1f}% | {fmt_p(row['p_wilcoxon'])} | "
                f"{fmt_p(row['p_ttest'])} | {row['n']} |"
            )
    lines += target_rows(report, datasets)
    lines += [
        "",
        f"24 settings per arm, each chosen on validation Recall@20; {report['threads']} torch thread(s) on "
        f"{report['machine']}, shared with other jobs (`fit s` are upper bounds). "
        f"Encoder: {report.get('encoder', '')}.",
    ]
    return "\n".join(lines) + "\n"


def save(report: dict, out: Path, datasets: list[str]) -> None:
    atomic_write_json(out.with_suffix(".json"), report)
    atomic_write_text(out.with_suffix(".md"), markdown(report, datasets))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results" / "text_linear",
        help="JSON and Markdown path without suffix",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="write the tables from finished cells only"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    path = args.out.with_suffix(".json")
    report = json.loads(path.read_text()) if path.exists() else {"datasets": {}}
    report.update(
        threads=args.threads,
        machine=f"{platform.machine()} {platform.system()}, torch {torch.__version__}",
        encoder="all-MiniLM-L6-v2, item_text catalogue+attributes",
        grid={
            "ease_l2": EASE_L2,
            "text_ease": {"similarity_l2": TE_MU, "l2": TE_L2, "text_weight": TE_C},
            "text_knn": {"similarity": [list(s) for s in KNN_SIMS], "neighbours": KNN_NEIGHBOURS},
        },
    )
    per_user_path = args.out.parent / (args.out.name + "_per_user.npz")
    per_user: dict[str, np.ndarray] = dict(np.load(per_user_path)) if per_user_path.exists() else {}
    for dataset in args.datasets:
        block = report["datasets"].setdefault(dataset, {"cells": {}})
        todo = [(a, s) for a, s in cells() if cell_key(a, s) not in block["cells"]]
        if args.report_only:
            continue
        data = embeddings = None
        if todo or "paired" not in block:
            data = load_data(load_config(REPO / "configs" / dataset / "lightgcn.yaml").data)
            embeddings = item_text_embeddings(data, "catalogue+attributes")
            block["statistics"] = {
                "users": data.n_users,
                "items": data.n_items,
                "train": int(data.train.nnz),
            }
        for arm, settings in todo:
            started = time.perf_counter()
            summary, _ = run_cell(dataset, settings, data, embeddings, args.threads)
            block["cells"][cell_key(arm, settings)] = {"arm": arm, **summary}
            block.pop("paired", None)
            save(report, args.out, args.datasets)
            print(
                f"{dataset:22s} {cell_key(arm, settings):70s} valid R@20 {summary['valid'][SELECT]:.4f}  "
                f"fit {summary['fit_seconds']:.1f}s  total {time.perf_counter() - started:.1f}s",
                flush=True,
            )
        if "paired" not in block:
            results = {}
            for arm in ARMS:
                best = chosen(block, arm)
                assert best is not None, f"{dataset} {arm}: every cell of the grid has run"
                key, cell = best
                settings = {"name": "ease" if arm == "ease" else "text_ease", **cell["settings"]}
                summary, result = run_cell(dataset, settings, data, embeddings, args.threads)
                if summary["test"] != cell["test"]:
                    raise RuntimeError(
                        f"{dataset} {key}: refit differs from the saved cell (not deterministic?)"
                    )
                results[arm] = result.test
                for metric in ("recall@20", "ndcg@20"):
                    per_user[f"{dataset}/{arm}/{metric}"] = np.asarray(result.test.per_user[metric])
                per_user[f"{dataset}/{arm}/users"] = np.asarray(result.test.users)
            rows = []
            for b in ("text_ease", "text_knn"):
                assert np.array_equal(results["ease"].users, results[b].users)
                for metric in ("recall@20", "ndcg@20"):
                    rows.append(
                        {
                            "a": "ease",
                            "b": b,
                            "metric": metric,
                            **paired_tests(
                                results["ease"].per_user[metric], results[b].per_user[metric]
                            ),
                        }
                    )
            block["paired"] = rows
            with atomic_open(per_user_path, "wb", encoding=None) as handle:
                np.savez(handle, **per_user)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
            save(report, args.out, args.datasets)
    save(report, args.out, args.datasets)
    print(markdown(report, args.datasets), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
