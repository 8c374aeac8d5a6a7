#!/usr/bin/env python
"""Knowledge-aware models against LightGCN, with gold, LLM-extracted and Freebase KGs.

    python benchmarks/kg_models.py                                   # 3 seeds; ml-latest-small-tmdb (gold KG)
                                                                     # + ml-100k (Freebase) when ../shared is there
    python benchmarks/kg_models.py --llm-kg runs/kg/NAME/graphrec    # adds the kg package's LLM-extracted KG
    python benchmarks/kg_models.py --datasets ml-latest-small-tmdb --arms lightgcn kglightgcn-gold --seeds 1 2 3
    python benchmarks/kg_models.py --report-only                     # tables from the finished runs only
    python benchmarks/kg_models.py --report-only --time-epochs 5     # + s/epoch of every arm timed back to back

Arms (``--arms``, default all that apply):

* ``lightgcn``: the baseline, ``configs/ml-latest-small-tmdb/lightgcn.yaml``;
* ``kglightgcn-<kg>`` / ``kgat-<kg>``: ``configs/ml-latest-small-tmdb/{kglightgcn,kgat}.yaml`` with
  ``model.kg`` pointing at the KG ``<kg>``: ``gold`` (the dataset's gold facts), ``llm`` (``--llm-kg``),
  ``freebase`` (ml-100k's RecBole ``.kg``/``.link``);
* ``kglightgcn-<kg>-pruned``: the same with the 20% of triples that agree least with the interactions
  dropped (``kg_score: collaborative``, ``kg_drop_fraction: 0.2``): the KG-noise handling at work.

Every arm uses LightGCN's training protocol of that file (embedding 64, 3 layers, lr 5e-3, batch 2048,
L2 1e-4, at most 300 epochs, selection on validation Recall@20 every 5 epochs, patience 5).  (An earlier
protocol with lr 1e-3 let early stopping end LightGCN near epoch 70, far from converged, which inflated
the KG arms' gains; its runs are kept under ``runs/kg_models/<dataset>-lr1e-3``.  KG-LightGCN runs made
before its joint normalisation followed the relation weights, whose weights grew to ~3 and cost 10-14%
Recall@20, are kept under ``runs/kg_models/<dataset>-unnormalised-weights``.)  Each (dataset, arm, seed) is a
resumable run under ``runs/kg_models/<dataset>/<arm>-seed<seed>``.  Writes
``benchmarks/results/kg_models.{json,md}``: test Recall/NDCG@{10,20} and item coverage@{10,20}
(mean ± std over seeds), seconds per epoch, epochs, the CKG's size, and per-user paired Wilcoxon /
t-tests against LightGCN (per-user metrics averaged over the seeds, users paired).

Seconds per epoch: the training runs' own figure depends on what else ran beside them, so
``--time-epochs N`` also trains every arm for N epochs back to back in this process (1 thread, the
first epoch discarded as warm-up) and reports that median as ``s/epoch``; the timings are kept in
``runs/kg_models/<dataset>/epoch_timing.json`` for later ``--report-only`` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from graphrec.cli.common import setup_logging
from graphrec.config import dump_config, load_config
from graphrec.data.dataset import InteractionData
from graphrec.datasets import dataset_info
from graphrec.evaluation import EvaluationResult, paired_tests, significance_mark
from graphrec.io import atomic_write_json, atomic_write_text
from graphrec.models import build_model
from graphrec.training import Trainer, load_data
from graphrec.training.run import seed_everything

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "ml-latest-small-tmdb"
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "coverage@10", "coverage@20")
PAIRED = ("recall@20", "ndcg@20", "recall@10", "ndcg@10")
PRUNE = ["model.kg_score=collaborative", "model.kg_drop_fraction=0.2"]
#: per-dataset protocol changes, applied to every arm of that dataset (none at present: both datasets
#: use lr 5e-3 from the configs, which converges within the 300-epoch cap)
DATASET_OVERRIDES: dict[str, list[str]] = {}


def arms_for(dataset: str, llm_kg: str | None) -> dict[str, tuple[str, list[str]]]:
    """``{arm: (config file, overrides)}`` available for ``dataset``."""
    arms: dict[str, tuple[str, list[str]]] = {"lightgcn": ("lightgcn.yaml", [])}
    kgs: dict[str, str] = {}
    if dataset == "ml-latest-small-tmdb":
        kgs["gold"] = "dataset"
        if llm_kg:
            kgs["llm"] = str(Path(llm_kg).resolve())
    else:
        kgs["freebase"] = "dataset"
    for kg, source in kgs.items():
        arms[f"kglightgcn-{kg}"] = ("kglightgcn.yaml", [f"model.kg={source}"])
        arms[f"kglightgcn-{kg}-pruned"] = ("kglightgcn.yaml", [f"model.kg={source}", *PRUNE])
        arms[f"kgat-{kg}"] = ("kgat.yaml", [f"model.kg={source}"])
    return arms


def arm_config(
    dataset: str,
    source: str,
    arm: tuple[str, list[str]],
    overrides: list[str],
    seed: int,
    extra: list[str],
):
    """The run config of one arm (``(config file, overrides)`` from :func:`arms_for`) and seed."""
    config_file, arm_overrides = arm
    return load_config(
        CONFIGS / config_file,
        [
            f"data.dataset={source}",
            *DATASET_OVERRIDES.get(dataset, []),
            *arm_overrides,
            *overrides,
            f"train.seed={seed}",
            *extra,
        ],
    )


def train_arm(config, data, quiet: bool):
    """seed -> model built with the dataset -> resumable Trainer (what run_training does, plus data=).

    Returns ``None`` without training when another live process holds the run's lock."""
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / ".training.lock"
    try:  # two benchmark processes must never train the same run directory at once
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        pid = lock.read_text().strip()
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            print(f"{run_dir}: being trained by process {pid}, skipped", flush=True)
            return None
        lock.unlink()  # stale lock of a dead process
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        return _train_locked(config, data, run_dir)
    finally:
        lock.unlink(missing_ok=True)


def _train_locked(config, data, run_dir: Path):
    atomic_write_text(run_dir / "config.yaml", dump_config(config))
    seed_everything(config.train.seed)
    model = build_model(config.model, data.n_users, data.n_items, data.train, data=data)
    statistics = getattr(model, "kg_statistics", None)  # knowledge-aware models only
    kg_stats = statistics() if statistics is not None else None
    trainer = Trainer(model, data, config.train, config.eval, run_dir=run_dir)
    result = trainer.fit()
    summary = {"kg": kg_stats}
    if getattr(model, "relation_weights", None) is not None and callable(model.relation_weights):
        weights = model.relation_weights()
        if weights is not None:
            summary["relation_weights"] = dict(
                zip(model.ckg.relation_names, weights.detach().mean(0).tolist())
            )
    atomic_write_text(run_dir / "kg_summary.json", json.dumps(summary, indent=1))
    return result


def time_epochs(config, data, epochs: int) -> dict:
    """Median training seconds per epoch of ``epochs`` epochs (the first discarded), 1 thread, no
    evaluation until the end, in a throw-away run directory."""
    import tempfile

    config.train.epochs = epochs
    config.train.eval_every = epochs
    config.train.num_threads = 1
    torch.set_num_threads(1)
    seed_everything(config.train.seed)
    model = build_model(config.model, data.n_users, data.n_items, data.train, data=data)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, data, config.train, config.eval, run_dir=Path(tmp))
        trainer.fit()
        seconds = [r["train_seconds"] for r in trainer.history]
    timed = seconds[1:] or seconds
    return {
        "seconds_per_epoch": statistics.median(timed),
        "epochs": len(timed),
        "threads": 1,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def finished(run_dir: Path) -> dict | None:
    path = run_dir / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


class LazyData:
    """The dataset of one benchmark block, loaded on first use (a report-only run loads nothing)."""

    def __init__(self) -> None:
        self.data: InteractionData | None = None

    def get(self, config) -> InteractionData:
        if self.data is None:
            self.data = load_data(config.data)
        return self.data


def arm_rows(
    dataset: str,
    arm: str,
    setup: tuple[str, list[str]],
    args: argparse.Namespace,
    data: LazyData,
    kg_stats: dict,
) -> list[dict]:
    """Train the arm's missing seeds (unless --report-only) and read every finished one's results."""
    rows = []
    for seed in args.seeds:
        config = arm_config(
            dataset,
            dataset,
            setup,
            args.overrides,
            seed,
            [
                f"out_dir={Path(args.runs_dir) / dataset}",
                f"name={arm}-seed{seed}",
                f"train.progress={'false' if args.quiet else 'true'}",
            ],
        )
        if not args.report_only and finished(config.run_dir) is None:
            start = time.perf_counter()
            train_arm(config, data.get(config), args.quiet)
            print(
                f"{dataset} {arm} seed {seed}: done in {time.perf_counter() - start:.0f}s",
                flush=True,
            )
        saved = finished(config.run_dir)
        if saved is None:
            print(f"{dataset} {arm} seed {seed}: not finished, skipped", flush=True)
            continue
        extra_path = config.run_dir / "kg_summary.json"
        extra = json.loads(extra_path.read_text()) if extra_path.exists() else {}
        if extra.get("kg"):
            kg_stats[arm] = extra["kg"]
        rows.append(
            {
                "seed": seed,
                **{m: saved["test"][m] for m in METRICS},
                "valid_recall@20": (saved.get("valid") or {}).get("recall@20"),
                "best_epoch": saved["best_epoch"],
                "epochs_run": saved["epochs_run"],
                "seconds_per_epoch": saved["seconds_per_epoch"],
                "relation_weights": extra.get("relation_weights"),
                "run_dir": str(config.run_dir),
            }
        )
    return rows


def epoch_timing(
    dataset: str,
    wanted: list[str],
    arms: dict[str, tuple[str, list[str]]],
    args: argparse.Namespace,
    data: LazyData,
    reported: dict,
) -> dict:
    """Seconds per epoch of the reported arms: measured now with --time-epochs, else from an earlier run."""
    timing_path = Path(args.runs_dir) / dataset / "epoch_timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    if args.time_epochs:
        for arm in wanted:
            config = arm_config(
                dataset,
                dataset,
                arms[arm],
                args.overrides,
                args.seeds[0],
                ["train.progress=false"],
            )
            timing[arm] = time_epochs(config, data.get(config), args.time_epochs)
            print(f"{dataset} {arm}: {timing[arm]['seconds_per_epoch']:.3f} s/epoch", flush=True)
        timing_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(timing_path, timing)
    return {arm: t for arm, t in timing.items() if arm in reported}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        help="ml-latest-small-tmdb and/or ml-100k (default: both; ml-100k only when ../shared has it)",
    )
    parser.add_argument(
        "--arms", nargs="+", default=None, help="arms to run (default: all that apply)"
    )
    parser.add_argument(
        "--llm-kg",
        default=None,
        help="the kg package's export folder (kg_arrays.npz + id maps) for ml-latest-small-tmdb",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[2023, 2024, 2025])
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "kg_models"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "kg_models"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--report-only", action="store_true", help="train nothing; tabulate finished runs"
    )
    parser.add_argument(
        "--time-epochs",
        type=int,
        default=0,
        metavar="N",
        help="also time N training epochs of every arm back to back (1 thread; first epoch = warm-up)",
    )
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    setup_logging(args.quiet)
    datasets = args.datasets or ["ml-latest-small-tmdb", "ml-100k"]
    report: dict = {"benchmark": "kg_models", "datasets": {}, "skipped": []}
    for dataset in datasets:
        if dataset_info(dataset)["path"] is None:
            report["skipped"].append(
                f"{dataset}: not found (python -m graphrec.datasets fetch {dataset})"
            )
            print(f"skipping {dataset}: not found", flush=True)
            continue
        arms = arms_for(dataset, args.llm_kg)
        if dataset == "ml-latest-small-tmdb" and not args.llm_kg:
            report["skipped"].append(
                "ml-latest-small-tmdb LLM-extracted KG: no --llm-kg export given"
            )
        wanted = [a for a in arms if args.arms is None or a in args.arms]
        data = LazyData()
        block: dict[str, dict] = {"arms": {}, "kg": {}}
        for arm in wanted:
            rows = arm_rows(dataset, arm, arms[arm], args, data, block["kg"])
            if rows:
                block["arms"][arm] = {"seeds": rows, "summary": summarise(rows)}
        block["epoch_timing"] = epoch_timing(dataset, wanted, arms, args, data, block["arms"])
        if "lightgcn" in block["arms"]:
            for arm, entry in block["arms"].items():
                if arm != "lightgcn":
                    entry["vs_lightgcn"] = paired_against(
                        block["arms"]["lightgcn"]["seeds"], entry["seeds"]
                    )
        report["datasets"][dataset] = block

    report.update(
        {
            "command": "python benchmarks/kg_models.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "seeds": args.seeds,
            "protocol": "configs/ml-latest-small-tmdb/{lightgcn,kglightgcn,kgat}.yaml; test "
            "metrics at the best validation "
            "Recall@20; paired tests over users on per-user metrics averaged across seeds",
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "processor": platform.processor() or platform.machine(),
            },
            "date": time.strftime("%Y-%m-%d"),
        }
    )
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), report)
    markdown = render_markdown(report)
    atomic_write_text(out.with_suffix(".md"), markdown)
    print(markdown)
    return 0


def summarise(rows: list[dict]) -> dict:
    out = {}
    for key in (*METRICS, "seconds_per_epoch", "epochs_run", "best_epoch"):
        values = [float(r[key]) for r in rows]
        out[key] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        }
    return out


def _per_user_mean(rows: list[dict]):
    """Per-user test metrics averaged over the seeds (users are the same in every seed)."""
    results = [EvaluationResult.load(Path(r["run_dir"]) / "per_user" / "test") for r in rows]
    users = results[0].users
    for res in results[1:]:
        if not np.array_equal(res.users, users):
            raise ValueError("seeds evaluated different users")
    return users, {
        m: np.mean([res.per_user[m] for res in results], axis=0)
        for m in PAIRED
        if m in results[0].per_user
    }


def paired_against(baseline_rows: list[dict], rows: list[dict]) -> dict:
    """Paired Wilcoxon / t-tests of the arm against LightGCN over users (seed-averaged), and per seed."""
    common = sorted({r["seed"] for r in baseline_rows} & {r["seed"] for r in rows})
    base = [r for r in baseline_rows if r["seed"] in common]
    mine = [r for r in rows if r["seed"] in common]
    if not common:
        return {}
    users_a, a = _per_user_mean(base)
    users_b, b = _per_user_mean(mine)
    if not np.array_equal(users_a, users_b):
        raise ValueError("the arm and LightGCN evaluated different users")
    out = {"seeds": common, "pooled": {m: paired_tests(a[m], b[m]) for m in a}}
    per_seed = {}
    for rb, rm in zip(base, mine):
        ra = EvaluationResult.load(Path(rb["run_dir"]) / "per_user" / "test")
        rr = EvaluationResult.load(Path(rm["run_dir"]) / "per_user" / "test")
        per_seed[str(rb["seed"])] = {
            m: paired_tests(ra.per_user[m], rr.per_user[m])["p_wilcoxon"]
            for m in ("recall@20", "ndcg@20")
        }
    out["per_seed_p_wilcoxon"] = per_seed
    return out


def render_markdown(report: dict) -> str:
    lines = []
    for dataset, block in report["datasets"].items():
        if not block["arms"]:
            continue
        n_seeds = max(len(e["seeds"]) for e in block["arms"].values())
        lines += [
            f"**{dataset}** (test, mean ± std over {n_seeds} seeds; Δ and p: paired over users vs LightGCN, "
            "per-user metrics averaged over seeds; Wilcoxon signed-rank p, * p<0.05, ** p<0.01)",
            "",
            "| arm | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | Cov@10 | Cov@20 | ΔR@20 (p) | "
            "ΔN@20 (p) | s/epoch | epochs | KG triples |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for arm, entry in block["arms"].items():
            s = entry["summary"]
            cells = [f"{arm} ({len(entry['seeds'])})"]
            cells += [
                f"{s[m]['mean']:.4f} ± {s[m]['std']:.4f}"
                for m in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
            ]
            cells += [f"{s[m]['mean']:.3f}" for m in ("coverage@10", "coverage@20")]
            vs = entry.get("vs_lightgcn", {}).get("pooled")
            for m in ("recall@20", "ndcg@20"):
                if vs and m in vs:
                    t = vs[m]
                    cells.append(
                        f"{100 * t['rel_improvement']:+.1f}% "
                        f"({t['p_wilcoxon']:.2g}){significance_mark(t['p_wilcoxon'])}"
                    )
                else:
                    cells.append("—")
            timed = block.get("epoch_timing", {}).get(arm)
            cells.append(
                f"{timed['seconds_per_epoch']:.2f}"
                if timed
                else f"{s['seconds_per_epoch']['mean']:.2f}†"
            )
            cells.append(f"{s['epochs_run']['mean']:.0f}")
            kg = block["kg"].get(arm)
            cells.append(f"{kg['triples']:,}" if kg else "—")
            lines.append("| " + " | ".join(cells) + " |")
        for arm, entry in block["arms"].items():
            weights = [r["relation_weights"] for r in entry["seeds"] if r.get("relation_weights")]
            if weights:
                mean = {k: statistics.fmean(w[k] for w in weights) for k in weights[0]}
                top = ", ".join(
                    f"{k} {v:.2f}" for k, v in sorted(mean.items(), key=lambda kv: -kv[1])
                )
                lines.append(f"\n{arm}: learned relation weights (mean over seeds): {top}")
        lines.append("")
    lines.append(
        "s/epoch: median of back-to-back timed epochs, 1 thread (`--time-epochs`); † = the training runs' "
        "own mean, which depends on what else ran beside them."
    )
    for skipped in report.get("skipped", []):
        lines.append(f"- skipped: {skipped}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
