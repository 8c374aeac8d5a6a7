#!/usr/bin/env python
"""Training and evaluation speed of graphrec against the anchors, side by side in one run.

    python benchmarks/speed.py --setup-anchors          # once: RecBole 1.2.1 in benchmarks/anchors/.venv
    python benchmarks/speed.py                          # all rows, 1 round; writes benchmarks/results/speed.{json,md}
    python benchmarks/speed.py --rounds 2 --epochs 3    # interleaved rounds: medians over both
    python benchmarks/speed.py --device cuda            # the same on a GPU (RecBole and PyG included)
    python benchmarks/speed.py --convergence 10         # also: test Recall@20 by epoch, fast path vs the old path
    python benchmarks/speed.py --only graphrec --threads default 0 1 --load 1 3 --rounds 3
        # quiet vs beside 1 and 3 busy processes, graphrec's default threads vs torch's (0) vs 1

Setup (the issue's): LightGCN on ``rlmrec-amazon-book`` (11,000 users, 9,332 items,
120,464 training interactions), embedding 32, 3 layers, batch 4096 = 30 batches per
epoch, Adam 1e-3, one thread (``--threads``).  Rows:

* **graphrec** LightGCN: the real training path — ``Trainer._train_epoch`` (sampler,
  model loss, backward, Adam) with ``configs/rlmrec-amazon-book/lightgcn.yaml``; the
  evaluation is the real harness (:class:`graphrec.evaluation.Evaluator`, Recall/NDCG@20,
  training items masked, deterministic ties) including the propagation of ``scorer()``;
* anchors, each as its authors run it: RecBole 1.2.1 (installed in its own venv,
  ``benchmarks/anchors/recbole_lightgcn.py``), PyG's ``LightGCN`` with ``edge_index`` and
  with a sparse adjacency (``anchors/pyg_lightgcn.py``, as PyG's example), RLMRec's
  official LightGCN (``anchors/rlmrec_lightgcn.py``, re-implemented line by line);
* the floor: only the 6 CSR sparse x dense products per batch (``anchors/floor.py``), with
  the backward reusing the symmetric adjacency, and the same through stock autograd;
* the other backbones on the same setup with their RLMRec configs: SGL, SimGCL, XSimGCL
  (and the knowledge-aware ones with ``--models``).

With ``--load N ...`` every row is also timed beside N competing CPU-bound processes (pure
Python busy loops started just before the row and stopped after it; each also exits on its
own when the benchmark's process is gone or after ``--load-seconds``), interleaved with the
quiet measurement in every round, and a table puts quiet and loaded figures side by side with
the load average at each.  ``--threads`` takes several settings to compare them in the same
moment: a count, ``default`` (``train.num_threads`` left unset: graphrec's default policy,
:mod:`graphrec.training.threads`) or ``0`` (torch's default, one thread per core).

Every row runs in its own subprocess, so peak RSS is per implementation.  With several
``--rounds`` the rows are interleaved (round 1: all rows, round 2: all rows, ...) and the
medians are reported, which is what makes ratios meaningful on a shared machine.  Times
are seconds of wall clock; one warm-up epoch and one warm-up evaluation are not timed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds scripts named like packages (benchmarks/alignment_benchmark.py): import the repository's
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]
# the parent already imports torch with graphrec.training (default_num_threads), so the workers' graphrec
# imports cost nothing more here than inside the worker functions
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from graphrec.config import load_config, model_config_from_dict  # noqa: E402
from graphrec.evaluation import Evaluator  # noqa: E402
from graphrec.io import atomic_write_json, atomic_write_text  # noqa: E402
from graphrec.models import LightGCN, build_model, load_plugins  # noqa: E402
from graphrec.models.base import ClosedFormRecommender, LossOutput  # noqa: E402
from graphrec.models.mf import EmbeddingRecommender  # noqa: E402
from graphrec.models.propagation import (  # noqa: E402
    bipartite_adjacency,
    symmetric_normalize,
    to_torch_csr,
)
from graphrec.training import Trainer, load_data, seed_everything  # noqa: E402
from graphrec.training.threads import configure_threads, default_num_threads  # noqa: E402

ANCHORS = REPO / "benchmarks" / "anchors"
ANCHOR_VENV = ANCHORS / ".venv"
RESULTS = REPO / "benchmarks" / "results"

#: benchmarks/baselines.py's EASE λ grid
EASE_GRID = [10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]

#: text-native models (alignment/, through graphrec's model contract), timed on a dataset with item texts:
#: the config name under configs/<TEXT_DATASET>/ -> what a row's "epoch" is
TEXT_DATASET = "amazon18-scientific"
TEXT_MODELS = {
    "text-ease": "one closed-form fit, texts encoded once before (cached)",
    "alpharec": "one training epoch",
}

#: the issue's reference figures (2-core machine, uncontended), for the markdown table
ISSUE = {
    "recbole": ("3.76", "1.23 s", "1.30 GiB"),
    "pyg-edge_index": ("5.85", "0.96 s", "0.87 GiB"),
    "pyg-sparse": ("3.23", "1.34 s", "0.83 GiB"),
    "rlmrec": ("3.28", "2.5–2.9 s", "0.86 GiB"),
    "floor": ("0.34–0.53", "0.41–0.49 s", "—"),
    "floor-stock": ("1.8–2.2", "—", "—"),
}

TARGETS = {"epoch_seconds": 1.0, "floor_ratio": 2.5, "eval_seconds": 0.3}


def rows(models: list[str]) -> list[dict]:
    """The implementations measured, in table order: the LightGCN anchors, then each model's rows."""
    return anchor_rows() + [row for model in models for row in model_rows(model)]


def anchor_rows() -> list[dict]:
    """graphrec's LightGCN and the other implementations and floors it is measured against."""
    py = sys.executable
    me = str(Path(__file__).resolve())
    return [
        {
            "key": "graphrec",
            "label": "**graphrec** LightGCN",
            "cmd": [py, me, "--worker", "lightgcn"],
        },
        {
            "key": "recbole",
            "label": "RecBole 1.2.1 LightGCN",
            "cmd": [str(ANCHOR_VENV / "bin" / "python"), str(ANCHORS / "recbole_lightgcn.py")],
        },
        {
            "key": "pyg-edge_index",
            "label": "PyG `LightGCN` with `edge_index` (PyG's example)",
            "cmd": [py, str(ANCHORS / "pyg_lightgcn.py"), "--variant", "edge_index"],
        },
        {
            "key": "pyg-sparse",
            "label": "PyG `LightGCN` with a sparse adjacency",
            "cmd": [py, str(ANCHORS / "pyg_lightgcn.py"), "--variant", "sparse"],
        },
        {
            "key": "rlmrec",
            "label": "RLMRec's official LightGCN (re-implemented)",
            "cmd": [py, str(ANCHORS / "rlmrec_lightgcn.py")],
        },
        {
            "key": "floor",
            "label": "floor: 6 CSR products per batch, backward reusing Â",
            "cmd": [py, str(ANCHORS / "floor.py"), "--variant", "custom"],
        },
        {
            "key": "floor-stock",
            "label": "same products through stock autograd",
            "cmd": [py, str(ANCHORS / "floor.py"), "--variant", "stock"],
        },
    ]


def model_rows(model: str) -> list[dict]:
    """The rows that measure one of graphrec's models (none for LightGCN, an anchor row)."""
    py = sys.executable
    me = str(Path(__file__).resolve())
    if (
        model == "ease"
    ):  # the whole validation search over EASE's λ grid, float32 (auto) and float64
        return [
            {
                "key": f"graphrec-ease-search-{precision}",
                "backbone": True,
                "label": f"graphrec EASE: whole validation search over {len(EASE_GRID)} λ ({precision})",
                "cmd": [py, me, "--worker", "ease-search", "--variant", precision],
            }
            for precision in ("auto", "float64")
        ]
    if model == "lightgcn":
        return []
    if model not in TEXT_MODELS:
        return [
            {
                "key": f"graphrec-{model}",
                "label": f"graphrec {model}",
                "cmd": [py, me, "--worker", model],
                "backbone": True,
            }
        ]
    out = [
        {
            "key": f"graphrec-{model}",
            "label": f"graphrec {model} ({TEXT_DATASET}: {TEXT_MODELS[model]})",
            "cmd": [py, me, "--worker", model],
            "backbone": True,
        }
    ]
    if model == "alpharec":
        out.append(
            {
                "key": "graphrec-alpharec-two-b",
                "label": f"graphrec alpharec, the B×2B InfoNCE before `candidate_logits` ({TEXT_DATASET})",
                "cmd": [py, me, "--worker", model, "--variant", "two-b"],
                "backbone": True,
            }
        )
    return out


# ------------------------------------------------------------------- worker
def reference_lightgcn(model_config, data):
    """graphrec's LightGCN as it was before the speed work, for the convergence check.

    Same initialisation, sampler and maths; the old computation: an int64 CSR adjacency,
    one ``torch.sparse.mm`` autograd node per layer (backward reusing the symmetric
    matrix), layers summed with out-of-place adds, and the generic
    :meth:`EmbeddingRecommender.loss` (per-table lookups).
    """

    class _SpMM(torch.autograd.Function):
        @staticmethod
        def forward(ctx, adjacency, x):
            ctx.adjacency = adjacency
            return torch.sparse.mm(adjacency, x)

        @staticmethod
        def backward(ctx, grad):
            return None, torch.sparse.mm(ctx.adjacency, grad.contiguous())

    class ReferenceLightGCN(LightGCN):
        def __init__(self, *a):
            super().__init__(*a)
            self.adjacency = to_torch_csr(
                symmetric_normalize(bipartite_adjacency(data.train)), index_dtype=torch.int64
            )

        def propagate_layers(self, ego):
            adjacency = self._adjacency_on(ego.device)
            total = layer = ego
            for _ in range(self.num_layers):
                layer = (
                    _SpMM.apply(adjacency, layer)
                    if torch.is_grad_enabled()
                    else torch.sparse.mm(adjacency, layer)
                )
                total = total + layer
            return total / (self.num_layers + 1) if self.layer_combination == "mean" else total

        def loss(self, users, pos_items, neg_items):
            return EmbeddingRecommender.loss(self, users, pos_items, neg_items)

    return ReferenceLightGCN(data.n_users, data.n_items, model_config, data.train)


def reference_alpharec_loss(model, users, pos_items, neg_items) -> LossOutput:
    """AlphaRec's InfoNCE as it was before ``candidate_logits``: one logit per candidate of the
    ``B × 2B`` matrix (copies included), copies of the row's positive masked. Same loss and gradients."""
    user_emb, item_emb = model.embeddings()
    candidates = torch.cat([pos_items, neg_items])
    logits = user_emb[users] @ item_emb[candidates].T / model.config.temperature
    rows = torch.arange(len(users), device=logits.device)
    duplicate = candidates[None, :] == pos_items[:, None]
    duplicate[rows, rows] = False
    loss = F.cross_entropy(logits.masked_fill(duplicate, float("-inf")), rows)
    return LossOutput(loss, {"infonce": loss.detach()})


def ease_search_worker(args: argparse.Namespace) -> None:
    """Time EASE's whole validation search (fit + validation Recall@20 per λ of :data:`EASE_GRID`)."""
    sys.path.insert(0, str(ANCHORS))
    from common import emit, sync  # noqa: E402

    if args.threads != "default":
        torch.set_num_threads(int(args.threads) or os.cpu_count() or 1)

    config = load_config(
        str(REPO / "configs" / "rlmrec-amazon-book" / "ease.yaml"),
        [] if args.threads == "default" else [f"train.num_threads={args.threads}"],
    )
    threads_used = configure_threads(config.train.num_threads)
    data = load_data(config.data)
    evaluator = Evaluator(
        ks=(20,),
        metrics=("recall", "ndcg"),
        beyond_accuracy=False,
        batch_size=config.eval.batch_size,
        device=args.device,
    )
    started, cells = time.perf_counter(), []
    for l2 in EASE_GRID:
        model = build_model(
            model_config_from_dict({"name": "ease", "l2": l2, "precision": args.variant}),
            data.n_users,
            data.n_items,
            data.train,
        ).to(args.device)
        assert isinstance(model, ClosedFormRecommender)
        t0 = time.perf_counter()
        figures = model.fit()
        sync(args.device)
        t1 = time.perf_counter()
        valid = evaluator.evaluate(model.scorer(), data.valid, exclude=[data.train]).metrics
        cells.append(
            {
                "l2": l2,
                "fit_seconds": t1 - t0,
                "eval_seconds": time.perf_counter() - t1,
                "float32": bool(figures.get("float32")),
                "valid_recall@20": valid["recall@20"],
            }
        )
    total = time.perf_counter() - started
    best = max(cells, key=lambda c: c["valid_recall@20"])
    emit(
        {
            "epoch_seconds": [total],
            "eval_seconds": [c["eval_seconds"] for c in cells],
            "cells": cells,
            "best_l2": best["l2"],
            "recall@20": best["valid_recall@20"],
            "threads_used": threads_used,
            "items": data.n_items,
            "config": "configs/rlmrec-amazon-book/ease.yaml",
        }
    )


def graphrec_worker(args: argparse.Namespace) -> None:
    """Time graphrec's own training epoch and evaluation of one model (runs in a subprocess)."""
    sys.path.insert(0, str(ANCHORS))
    from common import emit, sync  # noqa: E402

    if args.threads != "default":
        torch.set_num_threads(int(args.threads) or os.cpu_count() or 1)

    model_name = args.worker
    dataset = TEXT_DATASET if model_name in TEXT_MODELS else "rlmrec-amazon-book"
    config_path = REPO / "configs" / dataset / f"{model_name}.yaml"
    overrides = [f"train.device={args.device}", f"train.seed={args.seed}"]
    if (
        args.threads != "default"
    ):  # else the config's train.num_threads: graphrec's default when unset
        overrides.append(f"train.num_threads={args.threads}")
    if (
        not config_path.exists()
    ):  # knowledge-aware models: LightGCN's setup, interactions only (kg: null)
        config_path = REPO / "configs" / "rlmrec-amazon-book" / "lightgcn.yaml"
        overrides = [f"model.name={model_name}", *overrides]
    config = load_config(str(config_path), overrides)
    threads_used = configure_threads(config.train.num_threads)  # what Trainer.fit does
    data = load_data(config.data)
    seed_everything(args.seed)
    result: dict = {}
    if args.variant == "reference":
        model = reference_lightgcn(config.model, data)
    else:
        if model_name in TEXT_MODELS:  # they register through the graphrec.models entry point
            load_plugins()
        started = time.perf_counter()
        model = build_model(config.model, data.n_users, data.n_items, data.train, data=data)
        result["inputs_seconds"] = time.perf_counter() - started  # e.g. encoding the item texts
        if model_name == "alpharec" and args.variant == "two-b":
            model.loss = functools.partial(reference_alpharec_loss, model)
    trainer = Trainer(model, data, config.train, config.eval, run_dir=None)
    evaluator = Evaluator(
        ks=(20,),
        metrics=("recall", "ndcg"),
        beyond_accuracy=False,
        batch_size=config.eval.batch_size,
        device=trainer.device,
    )

    def epoch() -> None:
        trainer._train_epoch(progress=False)
        trainer.epoch += 1
        sync(args.device)

    def evaluate() -> None:
        res = evaluator.evaluate(model.scorer(), data.test, exclude=[data.train])
        sync(args.device)
        result.update(res.metrics)

    if args.curve_epochs:
        curve = []
        for e in range(1, args.curve_epochs + 1):
            epoch()
            if e % args.curve_every == 0 or e == args.curve_epochs:
                evaluate()
                curve.append({"epoch": e, "recall@20": result["recall@20"]})
        emit({"curve": curve, "seed": args.seed})
        return

    from common import timed  # noqa: E402

    epoch_seconds = timed(epoch, args.epochs)
    eval_seconds = timed(evaluate, args.evals)
    emit(
        {
            "epoch_seconds": epoch_seconds,
            "eval_seconds": eval_seconds,
            "recall@20": result.get("recall@20"),
            "batches_per_epoch": trainer.sampler.num_batches(config.train.batch_size),
            "threads_used": threads_used,
            "inputs_seconds": result.get("inputs_seconds"),
            "config": str(config_path.relative_to(REPO)),
        }
    )


# ------------------------------------------------------------------ driver
def run_row(
    row: dict, args: argparse.Namespace, extra: list[str] | None = None, timeout: float = 1800
) -> dict:
    """Run one row's worker in a subprocess; returns its RESULT dict (or an error)."""
    threads = str(args.threads)
    if not row["key"].startswith("graphrec"):  # the anchors take a count
        threads = str(anchor_threads(threads))
    cmd = [*row["cmd"], "--threads", threads, "--device", args.device]
    epochs = args.backbone_epochs if row.get("backbone") and args.backbone_epochs else args.epochs
    cmd += extra if extra is not None else ["--epochs", str(epochs), "--evals", str(args.evals)]
    if not Path(cmd[0]).exists():
        return {"error": f"{cmd[0]} not found (run: python benchmarks/speed.py --setup-anchors)"}
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if threads.isdigit() and int(threads) > 0:
            env[name] = threads
        else:  # `default` / 0: what a user with a clean environment gets
            env.pop(name, None)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}
    out = json.loads(lines[-1][len("RESULT ") :])
    out["wall_seconds"] = time.perf_counter() - started
    return out


def anchor_threads(setting: str) -> int:
    """The count an anchor gets for a ``--threads`` setting (``default``: graphrec's policy)."""
    if setting == "default":
        return default_num_threads()
    return int(setting) or (os.cpu_count() or 1)


#: a competing CPU-bound process: busy until its parent (the benchmark) is gone or time is up
BUSY = """import os, sys, time
parent, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(200000):
        pass
"""


class CompetingLoad:
    """``n`` busy-looping processes for the duration of a ``with`` block (bounded: each also
    stops after ``seconds`` or as soon as this process is gone)."""

    def __init__(self, n: int, seconds: float) -> None:
        self.n, self.seconds = n, seconds
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> CompetingLoad:
        for _ in range(self.n):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", BUSY, str(os.getpid()), str(self.seconds)],
                    stdin=subprocess.DEVNULL,
                )
            )
        if self.n:
            time.sleep(1.0)  # let them reach the CPUs before the row starts
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(row: dict, results: list[dict]) -> dict:
    ok = [r for r in results if "error" not in r]
    if not ok:
        return {
            "key": row["key"],
            "label": row["label"],
            "error": results[-1]["error"] if results else "not run",
        }
    epochs = [s for r in ok for s in r.get("epoch_seconds") or []]
    evals = [s for r in ok for s in (r.get("eval_seconds") or [])]
    return {
        "key": row["key"],
        "label": row["label"],
        "epoch_seconds": median(epochs),
        "epoch_seconds_all": epochs,
        "eval_seconds": median(evals),
        "eval_seconds_all": evals,
        "peak_rss_gib": max(r["peak_rss_gib"] for r in ok),
        "recall@20": ok[-1].get("recall@20"),
        "notes": {
            k: v
            for k, v in ok[-1].items()
            if k
            in (
                "eval_masks",
                "versions",
                "config",
                "batches_per_epoch",
                "threads_used",
                "cells",
                "best_l2",
                "items",
            )
        },
        "backbone": bool(row.get("backbone")),
    }


def ratios(table: list[dict]) -> dict:
    """graphrec LightGCN against every other LightGCN row (anchor / graphrec, > 1 = graphrec faster)."""
    ours = next((r for r in table if r["key"] == "graphrec" and "error" not in r), None)
    if ours is None:
        return {}
    out = {}
    for r in table:
        if r["key"] == "graphrec" or r.get("backbone") or "error" in r:
            continue
        entry = {"epoch": r["epoch_seconds"] / ours["epoch_seconds"]}
        if r.get("eval_seconds") and ours.get("eval_seconds"):
            entry["eval"] = r["eval_seconds"] / ours["eval_seconds"]
        out[r["key"]] = entry
    return out


def fmt(value, unit: str = "", digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def thread_setting(text: str) -> str:
    if text != "default" and not text.isdigit():
        raise argparse.ArgumentTypeError(f"a thread count, 0 or `default`, got {text!r}")
    return text


def load_table(
    selected: list[dict], settings: list[str], loads: list[int], results: dict
) -> list[dict]:
    """Per row and thread setting: median s/epoch quiet and beside each load, with the ratios."""
    out = []
    for row in selected:
        for setting in settings:
            entry = {"key": row["key"], "threads": setting, "by_load": {}}
            for n in loads:
                ok = [r for r in results[(row["key"], setting, n)] if "error" not in r]
                if not ok:
                    continue
                entry["threads_used"] = ok[-1].get("threads_used")
                entry["by_load"][str(n)] = {
                    "epoch_seconds": median([x for r in ok for x in r["epoch_seconds"]]),
                    "eval_seconds": median([x for r in ok for x in r.get("eval_seconds") or []]),
                    "epoch_seconds_all": [x for r in ok for x in r["epoch_seconds"]],
                    "load_averages": [r["load_average"] for r in ok],
                }
            quiet = entry["by_load"].get("0")
            for n, figures in entry["by_load"].items():
                if quiet and n != "0":
                    figures["x_quiet"] = figures["epoch_seconds"] / quiet["epoch_seconds"]
            out.append(entry)
    return out


#: the issue's targets for an epoch beside N competing processes, as a multiple of its quiet time
LOAD_TARGETS = {1: 2.0, 3: 4.0}


def render_load(entries: list[dict], loads: list[int]) -> list[str]:
    head = (
        "| implementation | threads (in use) | quiet s/epoch | "
        + " | ".join(f"beside {n} busy: s/epoch (× quiet)" for n in loads[1:])
        + " | load averages (quiet; "
        + "; ".join(f"beside {n}" for n in loads[1:])
        + ") |"
    )
    lines = [
        "",
        "Quiet and beside competing CPU-bound processes (medians over the rounds; load averages "
        "1/5/15 min from the end of each measurement, first round):",
        "",
        head,
        "|---" * (3 + len(loads)) + "|",
    ]
    for e in entries:
        figures = e["by_load"]
        cells = []
        for n in loads[1:]:
            f = figures.get(str(n))
            target = LOAD_TARGETS.get(n)
            mark = (
                ""
                if f is None or target is None or "x_quiet" not in f
                else (" ✓" if f["x_quiet"] <= target else " ✗")
            )
            cells.append(
                "—"
                if f is None
                else f"{f['epoch_seconds']:.2f} ({fmt(f.get('x_quiet'), '×')}{mark})"
            )
        quiet = figures.get("0")
        avgs = "; ".join(
            figures[str(n)]["load_averages"][0] if str(n) in figures else "—" for n in loads
        )
        lines.append(
            f"| {e['key']} | {e['threads']} ({e.get('threads_used', '?')}) | "
            f"{fmt(quiet['epoch_seconds'] if quiet else None)} | "
            + " | ".join(cells)
            + f" | {avgs} |"
        )
    lines += [
        "",
        "Targets (issue 18 §1, default settings): beside 1 busy process ≤ 2× quiet, beside 3 ≤ 4× (✓ met, ✗ missed).",
    ]
    return lines


def render_backbones(table: list[dict]) -> list[str]:
    """Every backbone's row beside graphrec's LightGCN epoch (none when only LightGCN ran)."""
    backbones = [r for r in table if r.get("backbone") or r["key"] == "graphrec"]
    if len(backbones) <= 1:
        return []
    lines = [
        "",
        "Every backbone on the same setup (its RLMRec config; the same propagation and evaluation path; "
        f"the text-native models on {TEXT_DATASET}, so no ratio):",
        "",
        "| model | s / epoch | full-ranking eval | peak RSS | × graphrec LightGCN epoch |",
        "|---|---|---|---|---|",
    ]
    base = next((r for r in backbones if r["key"] == "graphrec" and "error" not in r), None)
    for r in backbones:
        if "error" in r:
            lines.append(f"| {r['label']} | error: {r['error'][:120]} | | | |")
            continue
        same_setup = base and r["key"].removeprefix("graphrec-") not in TEXT_MODELS
        rel = fmt(r["epoch_seconds"] / base["epoch_seconds"], "×") if same_setup else "—"
        lines.append(
            f"| {r['label']} | {fmt(r['epoch_seconds'])} | {fmt(r['eval_seconds'], ' s')} | "
            f"{fmt(r['peak_rss_gib'], ' GiB')} | {rel} |"
        )
    return lines


def render_convergence(conv: dict) -> list[str]:
    """Test Recall@20 by epoch of the fast and the pre-optimisation path."""
    lines = [
        "",
        f"Convergence: test Recall@20 by epoch (mean over seeds {conv['seeds']}):",
        "",
        "| epoch | " + " | ".join(conv["implementations"]) + " |",
        "|---|" + "---|" * len(conv["implementations"]),
    ]
    for row in conv["table"]:
        lines.append(
            f"| {row['epoch']} | "
            + " | ".join(fmt(row.get(name), digits=4) for name in conv["implementations"])
            + " |"
        )
    lines += [
        "",
        f"Largest |difference| between the fast and the pre-optimisation path at the same seed and epoch: "
        f"{conv['max_abs_difference_same_seed']:.5f}; largest spread of the fast path between seeds: "
        f"{conv['max_spread_between_seeds']:.5f}.",
    ]
    return lines


def render(payload: dict) -> str:
    table, rat = payload["rows"], payload["ratios"]
    lines = [
        f"LightGCN on `rlmrec-amazon-book`, embedding 32, 3 layers, batch 4096 (30 batches per epoch), "
        f"{payload['threads']} thread(s), device `{payload['device']}`; medians over {payload['rounds']} interleaved "
        f"round(s) of {payload['epochs']} timed epochs and {payload['evals']} timed evaluations each "
        f"(backbones: {payload.get('backbone_rounds', payload['rounds'])} round(s) of "
        f"{payload.get('backbone_epochs', payload['epochs'])} epoch(s)) "
        f"(load average {payload['load_average_start']} at start, {payload['load_average_end']} at end).",
        "",
        "| implementation | s / epoch | full-ranking eval of test users | peak RSS | graphrec "
        "faster by (epoch / eval) | issue's figures (s/epoch, eval, RSS) |",
        "|---|---|---|---|---|---|",
    ]
    for r in table:
        if r.get("backbone"):
            continue
        if "error" in r:
            lines.append(f"| {r['label']} | error: {r['error'][:120]} | | | | |")
            continue
        ratio = rat.get(r["key"])
        ratio_text = (
            "—"
            if ratio is None
            else f"{ratio['epoch']:.2f}× / " + (f"{ratio['eval']:.2f}×" if "eval" in ratio else "—")
        )
        issue = ISSUE.get(r["key"], ("", "", ""))
        lines.append(
            f"| {r['label']} | {fmt(r['epoch_seconds'])} | {fmt(r['eval_seconds'], ' s')} | "
            f"{fmt(r['peak_rss_gib'], ' GiB')} | "
            f"{ratio_text} | {' / '.join(issue) if any(issue) else ''} |"
        )
    lines += render_backbones(table)
    if payload.get("under_load"):
        lines += render_load(payload["under_load"], [0, *payload["loads"]])
    checks = payload.get("targets")
    if checks:
        lines += [
            "",
            "Targets (issue 6): "
            + "; ".join(
                f"{c['name']} {c['measured']} (target {c['target']}): {'met' if c['met'] else 'missed'}"
                for c in checks
            ),
        ]
    conv = payload.get("convergence")
    if conv:
        lines += render_convergence(conv)
    return "\n".join(lines) + "\n"


def target_checks(table: list[dict]) -> list[dict]:
    by_key = {r["key"]: r for r in table if "error" not in r}
    ours, floor = by_key.get("graphrec"), by_key.get("floor")
    if ours is None:
        return []
    checks = [
        {
            "name": "graphrec s/epoch",
            "measured": round(ours["epoch_seconds"], 3),
            "target": f"<= {TARGETS['epoch_seconds']}",
            "met": ours["epoch_seconds"] <= TARGETS["epoch_seconds"],
        },
        {
            "name": "graphrec eval s",
            "measured": round(ours["eval_seconds"], 3),
            "target": f"<= {TARGETS['eval_seconds']}",
            "met": ours["eval_seconds"] <= TARGETS["eval_seconds"],
        },
    ]
    if floor is not None:
        ratio = ours["epoch_seconds"] / floor["epoch_seconds"]
        checks.append(
            {
                "name": "graphrec / floor",
                "measured": round(ratio, 2),
                "target": f"<= {TARGETS['floor_ratio']}",
                "met": ratio <= TARGETS["floor_ratio"],
            }
        )
    anchors = [
        by_key[k]["epoch_seconds"]
        for k in ("recbole", "pyg-edge_index", "pyg-sparse", "rlmrec")
        if k in by_key
    ]
    if anchors:
        ratio = min(anchors) / ours["epoch_seconds"]
        checks.append(
            {
                "name": "best anchor / graphrec",
                "measured": round(ratio, 2),
                "target": ">= 3",
                "met": ratio >= 3,
            }
        )
    return checks


def convergence(args: argparse.Namespace, table_rows: list[dict]) -> dict:
    """Test Recall@20 every few epochs: graphrec's fast path vs its pre-optimisation path (and RLMRec's
    LightGCN with ``--convergence-rlmrec``), per seed; same seed = same initialisation and batches."""
    graphrec_row = next(r for r in table_rows if r["key"] == "graphrec")
    picks = {
        "graphrec": graphrec_row,
        "graphrec (pre-optimisation path)": {
            **graphrec_row,
            "cmd": [*graphrec_row["cmd"], "--variant", "reference"],
        },
    }
    if args.convergence_rlmrec:
        picks["RLMRec LightGCN"] = next(r for r in table_rows if r["key"] == "rlmrec")
    curves: dict[str, dict[int, list[float]]] = {}
    for seed in args.seeds:
        for name, row in picks.items():
            extra = [
                "--curve-epochs",
                str(args.convergence),
                "--curve-every",
                str(args.curve_every),
                "--seed",
                str(seed),
            ]
            res = run_row(row, args, extra, timeout=7200)
            if "error" in res:
                raise SystemExit(f"convergence run {name} seed {seed} failed: {res['error']}")
            for point in res["curve"]:
                curves.setdefault(name, {}).setdefault(point["epoch"], []).append(
                    point["recall@20"]
                )
            print(f"  convergence {name} seed {seed}: {res['curve'][-1]}", flush=True)
    epochs = sorted(curves["graphrec"])
    table = [
        {"epoch": e, **{name: statistics.mean(curves[name][e]) for name in picks}} for e in epochs
    ]
    reference = "graphrec (pre-optimisation path)"
    same_seed = max(
        abs(a - b) for e in epochs for a, b in zip(curves["graphrec"][e], curves[reference][e])
    )
    between_seeds = max(max(v) - min(v) for e in epochs for v in [curves["graphrec"][e]])
    return {
        "seeds": args.seeds,
        "implementations": list(picks),
        "table": table,
        "max_abs_difference_same_seed": same_seed,
        "max_spread_between_seeds": between_seeds,
        "per_seed": {name: {str(e): v for e, v in c.items()} for name, c in curves.items()},
    }


def setup_anchors() -> None:
    """Create benchmarks/anchors/.venv with RecBole 1.2.1 (never touches the project venv)."""
    if not (ANCHOR_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(ANCHOR_VENV)], check=True)
    subprocess.run(
        [str(ANCHOR_VENV / "bin" / "pip"), "install", "-r", str(ANCHORS / "requirements.txt")],
        check=True,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _worker_args(parser)
    _row_args(parser)
    _timing_args(parser)
    _load_args(parser)
    _convergence_args(parser)
    return parser.parse_args(argv)


def _worker_args(parser: argparse.ArgumentParser) -> None:
    """Options the parent passes to each row's worker process (hidden from --help)."""
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--curve-epochs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=2023, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)


def _row_args(parser: argparse.ArgumentParser) -> None:
    """Which rows run, where, and where the results go."""
    group = parser.add_argument_group("rows")
    group.add_argument(
        "--models",
        nargs="+",
        default=["lightgcn", "sgl", "sgl-rlmrec", "simgcl", "xsimgcl", "ease", *TEXT_MODELS],
        help="graphrec backbones to time (lightgcn is always included); kglightgcn and kgat run with kg: null",
    )
    group.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="KEY",
        help="run only these rows (keys as in the JSON)",
    )
    group.add_argument("--device", default="cpu", help="cpu or cuda[:i] (every row runs there)")
    group.add_argument(
        "--setup-anchors", action="store_true", help="create the RecBole venv and exit"
    )
    group.add_argument(
        "--out", default=str(RESULTS / "speed"), help="output path without extension"
    )


def _timing_args(parser: argparse.ArgumentParser) -> None:
    """How much of each row is timed, in how many interleaved rounds, on how many threads."""
    group = parser.add_argument_group("timing")
    group.add_argument(
        "--epochs", type=int, default=3, help="timed epochs per row and round (after 1 warm-up)"
    )
    group.add_argument(
        "--backbone-epochs",
        type=int,
        default=1,
        help="timed epochs of the SGL/SimGCL/... rows (their epochs are long; 0 = --epochs)",
    )
    group.add_argument(
        "--backbone-rounds", type=int, default=1, help="rounds that include the SGL/SimGCL/... rows"
    )
    group.add_argument(
        "--evals", type=int, default=2, help="timed evaluations per row and round (after 1 warm-up)"
    )
    group.add_argument("--rounds", type=int, default=1, help="interleaved rounds over all rows")
    group.add_argument(
        "--threads",
        nargs="+",
        default=["1"],
        type=thread_setting,
        help="thread settings to compare: counts, `default` (graphrec's policy) or 0 (torch's default)",
    )


def _load_args(parser: argparse.ArgumentParser) -> None:
    """Competing busy processes beside every row."""
    group = parser.add_argument_group("load")
    group.add_argument(
        "--load",
        nargs="+",
        type=int,
        default=[],
        metavar="N",
        help="also time every row beside N competing busy processes (several N: one column each)",
    )
    group.add_argument(
        "--load-seconds",
        type=float,
        default=3600,
        help="upper bound on each competing process's life (they also stop with the benchmark)",
    )


def _convergence_args(parser: argparse.ArgumentParser) -> None:
    """Test Recall@20 by epoch, fast path against the pre-optimisation one."""
    group = parser.add_argument_group("convergence")
    group.add_argument(
        "--convergence",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="also train graphrec's fast and pre-optimisation LightGCN for EPOCHS epochs per seed "
        "and compare test Recall@20",
    )
    group.add_argument("--seeds", type=int, nargs="+", default=[2023, 2024])
    group.add_argument(
        "--convergence-rlmrec",
        action="store_true",
        help="convergence: also train RLMRec's LightGCN (its own sampler; slow)",
    )
    group.add_argument(
        "--curve-every", type=int, default=5, help="convergence: evaluate every N epochs"
    )


def measure_rounds(
    selected: list[dict], settings: list, loads: list[int], args: argparse.Namespace
) -> dict[tuple, list[dict]]:
    """Every selected row, thread setting and competing load, interleaved round after round (a slow
    spell of the shared machine hits every implementation alike); results per (key, threads, load)."""
    results: dict[tuple, list[dict]] = {
        (r["key"], t, n): [] for r in selected for t in settings for n in loads
    }
    for round_index in range(args.rounds):
        for row in selected:
            if row.get("backbone") and round_index >= args.backbone_rounds:
                continue
            for setting in settings:
                for n in loads:
                    with CompetingLoad(n, args.load_seconds):
                        res = run_row(row, argparse.Namespace(**{**vars(args), "threads": setting}))
                        res["load_average"] = load_average()
                    results[(row["key"], setting, n)].append(res)
                    summary = (
                        res.get("error")
                        or f"{median(res['epoch_seconds']):.2f} s/epoch, eval "
                        f"{fmt(median(res.get('eval_seconds') or []), ' s')}, RSS {res['peak_rss_gib']:.2f} GiB"
                    )
                    print(
                        f"[round {round_index + 1}] {row['key']} threads={setting} load={n}: {summary} "
                        f"(load average {res['load_average']})",
                        flush=True,
                    )
    return results


def main(argv=None) -> int:
    args = parse_args(argv)

    if args.worker:
        args.threads = args.threads[0]
        (ease_search_worker if args.worker == "ease-search" else graphrec_worker)(args)
        return 0
    if args.setup_anchors:
        setup_anchors()
        return 0

    models = list(dict.fromkeys(["lightgcn", *args.models]))
    table_rows = rows(models)
    selected = [r for r in table_rows if args.only is None or r["key"] in args.only]
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    settings, loads = args.threads, [0, *args.load]
    results = measure_rounds(selected, settings, loads, args)
    table = [aggregate(r, results[(r["key"], settings[0], 0)]) for r in selected]
    payload = {
        "benchmark": "speed",
        "dataset": "rlmrec-amazon-book",
        "setup": {
            "model": "LightGCN",
            "embedding_dim": 32,
            "num_layers": 3,
            "batch_size": 4096,
            "batches_per_epoch": 30,
        },
        "device": args.device,
        "threads": settings[0] if len(settings) == 1 else settings,
        "loads": args.load,
        "rounds": args.rounds,
        "epochs": args.epochs,
        "backbone_epochs": args.backbone_epochs or args.epochs,
        "backbone_rounds": min(args.rounds, args.backbone_rounds),
        "evals": args.evals,
        "load_average_start": load_start,
        "load_average_end": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "rows": table,
        "ratios": ratios(table),
    }
    payload["targets"] = target_checks(table)
    if args.load or len(settings) > 1:
        payload["under_load"] = load_table(selected, settings, loads, results)
    if args.convergence:
        payload["convergence"] = convergence(args, table_rows)
    text = render(payload)
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), payload)
    atomic_write_text(
        out.with_suffix(".md"),
        "# benchmarks/speed.py\n\n`python benchmarks/" + payload["command"] + "`\n\n" + text,
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
