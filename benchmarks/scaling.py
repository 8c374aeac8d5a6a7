#!/usr/bin/env python
"""Scaling of one LightGCN epoch on synthetic power-law bipartite graphs, 1e5 to 4e7 interactions.

    python benchmarks/scaling.py                                  # all sizes, ascending; resumable
    python benchmarks/scaling.py --sizes 1e5 1e6 1e7              # a subset
    nice -n 5 python benchmarks/scaling.py --sizes 4e7            # the 1M x 300k x 40M point, alone
    python benchmarks/scaling.py --report-only                    # table + plot from the saved results
    python benchmarks/scaling.py --sizes 1e7 --time-batches 5     # exploration: 5 batches, extrapolated
    python benchmarks/scaling.py --sizes 1e7 --baseline before    # kept as "before", beside the current

Each size has ``n_interactions / 40`` users and ``n_interactions / 133`` items (so 4e7 is
1,000,000 users x 300,000 items x 40,000,000 training interactions), user and item
degrees following Zipf laws (:func:`graphrec.data.synthetic.power_law_interactions`).
The model and epoch are the speed benchmark's setup scaled with the graph: LightGCN,
embedding 32, 3 layers, 30 batches per epoch (batch = interactions / 30, as 4096 is for
Amazon-book's 120k), trained by the real ``Trainer._train_epoch`` (sampler, loss,
backward, Adam), one thread.  Per size, in its own subprocess (peak RSS is per size):
graph generation, model construction (normalised adjacency), one training epoch (small
sizes: after a warm-up epoch), and a batched full-ranking evaluation of a sample of
users (``--eval-users``; all items scored, training items masked) with the memory it
adds.  Results are appended to ``benchmarks/results/scaling.json`` as each size
finishes, so an interrupted run resumes with the next size (``--force`` re-measures).
Writes ``scaling.{json,md,png}``; the markdown includes a linear memory model
(bytes per interaction) fitted on the measured sizes and its prediction for the sizes
not measured.

The measured epoch is split into phases (:class:`PhaseClock`, ``phase_seconds`` in the JSON):
sampling, zero_grad, the sparse products of the forward propagation and of the backward, the
dense rest of the forward (loss) and of the backward, the optimiser step, and what no phase
accounts for.  ``--time-batches K`` times only the first K batches and extrapolates (marked as
such in the JSON and the table; for exploration, the published figures are whole epochs).
``--baseline NAME`` stores a run under ``baselines`` (e.g. an older checkout of the code run
with this script), shown beside the current figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds scripts named like packages (benchmarks/alignment_benchmark.py): import the repository's
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]
from graphrec.io import atomic_write_json, atomic_write_text  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_SIZES = [1e5, 3e5, 1e6, 3e6, 1e7, 2e7, 4e7]
BUDGET_GIB = 24.0


def shape_for(n_interactions: int) -> tuple[int, int]:
    return n_interactions // 40, n_interactions * 3 // 400


def progress_file(n: int) -> Path:
    return RESULTS / "tmp" / f"scaling_{n}.progress.jsonl"


def read_progress(n: int) -> list[dict]:
    path = progress_file(n)
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def rss_gib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**30


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ------------------------------------------------------------------- phases
#: the phases of an epoch, in the order a batch runs them (``other``: the epoch's remainder)
PHASES = (
    "sampling",
    "zero_grad",
    "forward_products",
    "forward_other",
    "backward_products",
    "backward_other",
    "optimizer_step",
    "other",
)


class PhaseClock:
    """Times the phases of ``Trainer._train_epoch`` by wrapping the real calls it makes.

    Nothing the epoch computes changes: the sampler's batches, the model's propagation,
    its loss and the optimiser's calls are the same objects, each run between two
    ``perf_counter`` readings.  ``sampling`` is the time inside the sampler's generator
    (the epoch's shuffle and negatives come with its first batch); ``forward_products`` /
    ``backward_products`` are the sparse products (``sparse_dense_mm``) in the forward
    propagation and in the backward pass; ``forward_other`` the rest of ``model.loss``
    (concatenation, layer sums, gathers, BPR and L2); ``backward_other`` the rest between the
    loss and the optimiser step (the dense backward, the loss read back, the finite check).
    """

    def __init__(self, limit: int | None = None, sync: Callable[[], None] = lambda: None) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        # on a GPU the calls return before their kernels finish: ``sync`` waits for them, so each
        # phase is charged its own kernels (the epoch's total is right either way)
        self.sync = sync
        self.products = 0.0  # sparse products so far, wherever they ran
        self.limit = limit  # stop the epoch after this many batches (exploration only)
        self.batches = 0
        self.first_sampling = 0.0  # the first batch's: the whole epoch's shuffle and negatives
        self._loss_end = 0.0
        self._products_at_loss_end = 0.0

    def timed(self, fn: Callable, add: Callable[[float], None]) -> Callable:
        """``fn`` with its wall time passed to ``add`` after every call."""

        def wrapper(*args, **kwargs):
            self.sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                add(time.perf_counter() - start)

        return wrapper

    def install(self, trainer: Any, propagation_module: ModuleType) -> None:
        """Wrap the trainer's sampler, model loss and optimiser, and the module's sparse product."""
        product = propagation_module.sparse_dense_mm

        def add_product(seconds: float) -> None:
            self.products += seconds

        # module global: _polynomial and SymmetricPolynomial.backward look it up on every call
        propagation_module.sparse_dense_mm = self.timed(product, add_product)
        self._restore = (propagation_module, product)
        epoch, loss = trainer.sampler.epoch, trainer.model.loss
        trainer.sampler.epoch = lambda *args: self._batches(epoch(*args))
        trainer.model.loss = self._wrap_loss(loss)
        optimizer = trainer.optimizer
        optimizer.zero_grad = self.timed(optimizer.zero_grad, self._adder("zero_grad"))
        optimizer.step = self._wrap_step(optimizer.step)

    def uninstall(self) -> None:
        module, product = self._restore
        module.sparse_dense_mm = product

    def _adder(self, name: str) -> Callable[[float], None]:
        def add(seconds: float) -> None:
            self.seconds[name] += seconds

        return add

    def _batches(self, batches: Iterator) -> Iterator:
        while self.limit is None or self.batches < self.limit:
            start = time.perf_counter()
            item = next(batches, None)
            self.seconds["sampling"] += time.perf_counter() - start
            if self.batches == 0:
                self.first_sampling = time.perf_counter() - start
            if item is None:
                return
            self.batches += 1
            yield item

    def _wrap_loss(self, loss: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            self.sync()
            products, start = self.products, time.perf_counter()
            out = loss(*args, **kwargs)
            self.sync()
            self._loss_end = time.perf_counter()
            forward_products = self.products - products
            self.seconds["forward_products"] += forward_products
            self.seconds["forward_other"] += self._loss_end - start - forward_products
            self._products_at_loss_end = self.products
            return out

        return wrapper

    def _wrap_step(self, step: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            self.sync()
            start = time.perf_counter()
            backward_products = self.products - self._products_at_loss_end
            self.seconds["backward_products"] += backward_products
            self.seconds["backward_other"] += start - self._loss_end - backward_products
            try:
                return step(*args, **kwargs)
            finally:
                self.sync()
                self.seconds["optimizer_step"] += time.perf_counter() - start

        return wrapper

    def report(self, epoch_seconds: float) -> dict:
        """Seconds per phase, ``other`` the epoch time no phase accounts for."""
        phases = dict(self.seconds)
        phases["other"] = max(0.0, epoch_seconds - sum(phases.values()))
        return {name: round(value, 3) for name, value in phases.items()}


def epoch_figures(clock: PhaseClock, epochs: list[float], batches_per_epoch: int) -> dict:
    """The measured epoch's seconds and phases; with ``--time-batches K`` the first K batches,
    extrapolated to the whole epoch (labelled: the epoch-level shuffle and negative draws come
    with the first batch and are counted once)."""
    phases = clock.report(epochs[-1])
    if clock.batches >= batches_per_epoch:
        return {"epoch_seconds": epochs[-1], "phase_seconds": phases}
    scale = batches_per_epoch / max(1, clock.batches)
    once = clock.first_sampling
    extrapolated = {name: value * scale for name, value in phases.items()}
    extrapolated["sampling"] = once + (phases["sampling"] - once) * scale
    return {
        "epoch_seconds": sum(extrapolated.values()),
        "phase_seconds": {k: round(v, 3) for k, v in extrapolated.items()},
        "extrapolated_from_batches": clock.batches,
        "measured_seconds": epochs[-1],
        "measured_phase_seconds": phases,
    }


# ------------------------------------------------------------------- worker
class ProgressLog:
    """Progress records of one size, appended as it runs, so a run killed mid-epoch still documents
    its memory (:func:`read_progress` reads them back)."""

    def __init__(self, n: int) -> None:
        self.path = progress_file(n)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def note(self, **record) -> None:
        record.update(rss_gib=rss_gib(), peak_gib=peak_gib(), at=time.time())
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def phase_record(seconds: float, **extra: float) -> dict:
    """A phase's wall seconds with the memory at its end."""
    return {"seconds": seconds, "rss_gib": rss_gib(), "peak_gib": peak_gib(), **extra}


def track_batches(trainer: Any, batch_size: int, log: ProgressLog) -> int:
    """Wrap ``trainer.sampler.epoch`` so every batch appends a progress record; the batch count."""
    batches_per_epoch = trainer.sampler.num_batches(batch_size)
    epoch_batches = trainer.sampler.epoch

    def tracked_epoch(*args):
        started = time.perf_counter()
        for index, item in enumerate(epoch_batches(*args)):
            yield item
            log.note(
                phase="train",
                batch=index + 1,
                of=batches_per_epoch,
                seconds=time.perf_counter() - started,
            )

    trainer.sampler.epoch = tracked_epoch
    return batches_per_epoch


def measure_epochs(
    trainer: Any, propagation: ModuleType, clock: PhaseClock, runs: int
) -> tuple[list[float], dict]:
    """``runs`` training epochs, the last one through ``clock``: their wall seconds and its record."""
    epochs = []
    record: dict = {}
    for run in range(runs):
        if run == runs - 1:  # the measured epoch only: the warm-up runs unwrapped
            clock.install(trainer, propagation)
        start = time.perf_counter()
        record = trainer._train_epoch(progress=False)
        trainer.epoch += 1
        epochs.append(time.perf_counter() - start)
    clock.uninstall()
    return epochs, record


def sample_users(test: Any, size: int, seed: int) -> tuple[Any, int]:
    """A fixed sample of ``size`` users with test items (sorted), and how many users have any."""
    import numpy as np  # lazy: only the worker process samples; the parent stays light (see worker)

    with_targets = np.flatnonzero(np.diff(test.indptr) > 0)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(with_targets, size=min(size, len(with_targets)), replace=False))
    return sample, len(with_targets)


def eval_figures(result: Any, users: int, seconds: float, users_with_targets: int) -> dict:
    """The sampled full-ranking evaluation's figures for the JSON."""
    return {
        "users": int(users),
        "seconds": seconds,
        "seconds_per_1k_users": seconds / users * 1000,
        "rows_per_block": result.meta["rows_per_block"],
        "recall@20": result.metrics["recall@20"],
        "users_with_test_items": int(users_with_targets),
    }


def worker(args: argparse.Namespace) -> None:
    # torch and the graphrec modules that import it load in the worker only: the parent, which waits on
    # and measures the workers, stays without torch (importing them costs 2.0 s CPU, 8-11 s wall on the
    # shared 2-core machine)
    import torch

    torch.set_num_threads(args.threads)
    from graphrec.config import EvalConfig, TrainConfig
    from graphrec.data.synthetic import power_law_interactions
    from graphrec.evaluation import Evaluator
    from graphrec.models import LightGCN, LightGCNConfig, propagation
    from graphrec.training import Trainer

    n = int(args.worker)
    n_users, n_items = shape_for(n)
    out: dict = {"interactions": n, "users": n_users, "items": n_items}
    phase = {}
    log = ProgressLog(n)

    start = time.perf_counter()
    data = power_law_interactions(n_users, n_items, n, seed=args.seed)
    phase["generate"] = phase_record(time.perf_counter() - start)
    log.note(phase="generate", seconds=phase["generate"]["seconds"])
    out["adjacency_nnz"] = 2 * data.train.nnz

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    model = LightGCN(
        n_users,
        n_items,
        LightGCNConfig(embedding_dim=32, num_layers=3, layer_combination="sum"),
        data.train,
    )
    batch = math.ceil(n / 30)
    train_cfg = TrainConfig(
        epochs=1,
        batch_size=batch,
        learning_rate=1e-3,
        l2_weight=1e-7,
        num_threads=args.threads,
        device=args.device,
        progress=False,
    )
    trainer = Trainer(
        model, data, train_cfg, EvalConfig(ks=[20], metrics=["recall", "ndcg"]), run_dir=None
    )
    phase["build"] = phase_record(time.perf_counter() - start)
    log.note(phase="build", seconds=phase["build"]["seconds"])
    batches_per_epoch = track_batches(trainer, batch, log)

    on_gpu = args.device.startswith("cuda")
    clock = PhaseClock(args.time_batches, torch.cuda.synchronize if on_gpu else lambda: None)
    runs = 2 if n <= args.warmup_below else 1
    epochs, record = measure_epochs(trainer, propagation, clock, runs)
    out["batch_size"] = batch
    out["batches_per_epoch"] = batches_per_epoch
    out.update(epoch_figures(clock, epochs, batches_per_epoch))
    out["epochs_run"] = len(epochs)
    out["loss"] = record["loss"]
    phase["train"] = phase_record(sum(epochs))
    if on_gpu:
        out["device"] = torch.cuda.get_device_name(args.device)
        out["gpu_peak_gib"] = torch.cuda.max_memory_allocated(args.device) / 2**30

    sample, users_with_targets = sample_users(data.test, args.eval_users, args.seed)
    evaluator = Evaluator(
        ks=(20,), metrics=("recall", "ndcg"), beyond_accuracy=False, device=trainer.device
    )
    before = rss_gib()
    start = time.perf_counter()
    result = evaluator.evaluate(model.scorer(), data.test, exclude=[data.train], users=sample)
    eval_seconds = time.perf_counter() - start
    phase["evaluate"] = phase_record(eval_seconds, rss_before_gib=before)
    out["eval"] = eval_figures(result, len(sample), eval_seconds, users_with_targets)
    log.note(phase="evaluate", seconds=eval_seconds)
    out["phases"] = phase
    out["peak_rss_gib"] = peak_gib()
    sys.stdout.write("RESULT " + json.dumps(out) + "\n")


# ------------------------------------------------------------------- driver
def load_results(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"benchmark": "scaling", "sizes": {}}


def memory_model(sizes: dict) -> dict | None:
    """Least-squares ``peak = a + b * interactions`` over the measured sizes (GiB)."""
    points = [(int(k), v["peak_rss_gib"]) for k, v in sizes.items() if "peak_rss_gib" in v]
    if len(points) < 2:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in points) / max(1e-12, sum((x - mx) ** 2 for x in xs))
    return {
        "intercept_gib": my - slope * mx,
        "bytes_per_interaction": slope * 2**30,
        "predict": lambda n: my - slope * mx + slope * n,
    }


def epoch_cell(r: dict) -> str:
    """Seconds per epoch, marked when extrapolated from the first batches."""
    if "extrapolated_from_batches" in r:
        return (
            f"{r['epoch_seconds']:.2f} (extrapolated from {r['extrapolated_from_batches']} of "
            f"{r['batches_per_epoch']} batches)"
        )
    return f"{r['epoch_seconds']:.2f}"


def render_phases(payload: dict) -> list[str]:
    """Where each measured epoch's time goes (:class:`PhaseClock`), seconds and share, for the
    current figures and the baselines that have phases."""
    baselines = payload.get("baselines", {})
    runs = [("now", payload["sizes"])] + [
        (name, baselines[name]["sizes"])
        for name in sorted(baselines, key=lambda name: baselines[name].get("order", 0))
    ]
    measured = [
        (name, key, sizes[key])
        for name, sizes in runs
        for key in sorted(sizes, key=int)
        if "phase_seconds" in sizes[key]
    ]
    if not measured:
        return []
    lines = [
        "",
        "Where the epoch's time goes (seconds, share of the epoch; `benchmarks/scaling.py` "
        "`PhaseClock`: products = the sparse propagation products, other = the dense work "
        "around them):",
        "",
        "| code | interactions | s / epoch | "
        + " | ".join(p.replace("_", " ") for p in PHASES)
        + " | load |",
        "|---|---|---|" + "---|" * len(PHASES) + "---|",
    ]
    for name, key, r in measured:
        total = max(1e-9, r["epoch_seconds"])
        cells = [
            f"{r['phase_seconds'][p]:.2f} ({100 * r['phase_seconds'][p] / total:.0f}%)"
            for p in PHASES
        ]
        lines.append(
            f"| {name} | {int(key):,} | {epoch_cell(r)} | "
            + " | ".join(cells)
            + f" | {r.get('load_average', '')} |"
        )
    return lines


def render_baselines(payload: dict) -> list[str]:
    """Seconds per epoch of earlier code (``--baseline NAME`` runs) beside the current figures."""
    baselines = payload.get("baselines", {})
    if not baselines:
        return []
    names = sorted(baselines, key=lambda name: baselines[name].get("order", 0))
    lines = [
        "",
        "Before / after (seconds per epoch, load average at the measurement):",
        "",
        "| interactions | " + " | ".join(names) + " | now |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    keys = {k for name in names for k in baselines[name]["sizes"]} | set(payload["sizes"])
    for key in sorted(keys, key=int):
        cells = []
        for r in [baselines[name]["sizes"].get(key) for name in names] + [
            payload["sizes"].get(key)
        ]:
            ok = r is not None and "error" not in r
            cells.append(f"{epoch_cell(r)} (load {r.get('load_average', '?')})" if ok else "")
        lines.append(f"| {int(key):,} | " + " | ".join(cells) + " |")
    for name in names:
        lines.append(f"- {name}: {baselines[name].get('note', '')}")
    return lines


def render(payload: dict, requested: list[int]) -> str:
    sizes = payload["sizes"]
    lines = [
        "LightGCN epoch (embedding 32, 3 layers, 30 batches per epoch, Adam, 1 thread) on synthetic power-law graphs "
        "(users = interactions / 40, items = interactions / 133).",
        "",
        "| interactions | users | items | s / epoch | peak RSS | generate s | build s | eval of "
        "sampled users (s / 1k users, rows per score block) | rise of peak RSS during eval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(sizes, key=int):
        r = sizes[key]
        if "error" in r:
            users, items = shape_for(int(key))
            last = (r.get("progress") or [{}])[-1]
            reached = (
                (
                    f"; reached {last.get('phase')} batch {last.get('batch', '-')}/{last.get('of', '-')} after "
                    f"{last.get('seconds', 0):.0f} s, peak RSS so far {last.get('peak_gib', 0):.2f} GiB"
                )
                if last
                else ""
            )
            lines.append(
                f"| {int(key):,} | {users:,} | {items:,} | not finished: {r['error'][:80]}{reached} | | | | | |"
            )
            continue
        ph = r["phases"]
        added = ph["evaluate"]["peak_gib"] - ph["train"]["peak_gib"]
        lines.append(
            f"| {int(key):,} | {r['users']:,} | {r['items']:,} | {epoch_cell(r)} | "
            f"{r['peak_rss_gib']:.2f} GiB | "
            f"{ph['generate']['seconds']:.1f} | {ph['build']['seconds']:.1f} | "
            f"{r['eval']['users']:,} users in {r['eval']['seconds']:.1f} s "
            f"({r['eval']['seconds_per_1k_users']:.2f}, {r['eval']['rows_per_block']}) | "
            f"{max(0.0, added):.2f} GiB |"
        )
    model = memory_model(sizes)
    if model is not None:
        lines += [
            "",
            f"Memory model fitted on the measured sizes: peak RSS ≈ {model['intercept_gib']:.2f} GiB + "
            f"{model['bytes_per_interaction']:.0f} B × interactions.",
        ]
        missing = [n for n in requested if str(n) not in sizes or "error" in sizes[str(n)]]
        for n in missing:
            lines.append(
                f"Predicted peak RSS at {n:,} interactions (not measured here): {model['predict'](n):.1f} GiB "
                f"(budget {BUDGET_GIB:.0f} GiB)."
            )
    lines += render_phases(payload) + render_baselines(payload)
    biggest = max((int(k) for k, v in sizes.items() if "error" not in v), default=None)
    if biggest is not None:
        r = sizes[str(biggest)]
        verdict = "fits" if r["peak_rss_gib"] <= BUDGET_GIB else "does NOT fit"
        lines += [
            "",
            f"Largest measured: {biggest:,} interactions ({r['users']:,} users × {r['items']:,} items): one epoch "
            f"{r['epoch_seconds']:.0f} s, peak RSS {r['peak_rss_gib']:.2f} GiB — {verdict} in {BUDGET_GIB:.0f} GiB.",
        ]
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted((int(k), v) for k, v in payload["sizes"].items() if "error" not in v)
    if not sizes:
        return
    xs = [n for n, _ in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(xs, [v["epoch_seconds"] for _, v in sizes], "o-")
    left.set_xlabel("training interactions")
    left.set_ylabel("seconds per LightGCN epoch")
    left.set_title("time per epoch (1 thread)")
    left.grid(True, which="both", alpha=0.3)
    right.loglog(xs, [v["peak_rss_gib"] for _, v in sizes], "o-", label="measured peak RSS")
    model = memory_model(payload["sizes"])
    if model is not None:
        grid = [10 ** (5 + i * 0.1) for i in range(int((math.log10(4e7) - 5) / 0.1) + 1)]
        right.loglog(
            grid,
            [max(1e-3, model["predict"](n)) for n in grid],
            "--",
            alpha=0.6,
            label="linear memory model",
        )
    right.axhline(BUDGET_GIB, color="red", linestyle=":", label=f"{BUDGET_GIB:.0f} GiB")
    right.set_xlabel("training interactions")
    right.set_ylabel("GiB")
    right.set_title("peak memory (RSS)")
    right.legend()
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=float,
        default=DEFAULT_SIZES,
        help="training interactions per graph",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--time-batches",
        type=int,
        default=None,
        help="exploration: time only the first K batches of the measured epoch and extrapolate "
        "(saved as extrapolated_from_batches; the published figures are full epochs)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-users", type=int, default=4096, help="users in the sampled full-ranking evaluation"
    )
    parser.add_argument(
        "--warmup-below", type=int, default=3_000_000, help="sizes up to this get a warm-up epoch"
    )
    parser.add_argument("--timeout", type=float, default=5400, help="seconds per size")
    parser.add_argument(
        "--force", action="store_true", help="re-measure sizes already in the results"
    )
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--baseline",
        help="store this run's sizes as the named baseline (e.g. the code before a change) "
        "instead of the current figures",
    )
    parser.add_argument("--baseline-note", default="", help="what the baseline measured")
    parser.add_argument("--out", default=str(RESULTS / "scaling"))
    return parser.parse_args(argv)


def run_worker(n: int, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """One size measured in a fresh worker process: its RESULT line, or an error with the output's tail."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(n),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        "--seed",
        str(args.seed),
        "--eval-users",
        str(args.eval_users),
        "--warmup-below",
        str(args.warmup_below),
    ] + ([] if args.time_batches is None else ["--time-batches", str(args.time_batches)])
    print(
        f"{n:,} interactions ({shape_for(n)[0]:,} users x {shape_for(n)[1]:,} items) ...",
        flush=True,
    )
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=args.timeout
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            result = {"error": f"exit code {proc.returncode} (negative = killed by signal): {tail}"}
        else:
            result = json.loads(lines[-1][len("RESULT ") :])
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {args.timeout:.0f} s"}
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    out = Path(args.out)
    json_path = out.with_suffix(".json")
    payload = load_results(json_path)
    requested = [int(s) for s in args.sizes]

    def save() -> str:
        atomic_write_json(json_path, payload)
        text = render(payload, requested)
        atomic_write_text(out.with_suffix(".md"), "# benchmarks/scaling.py\n\n" + text)
        plot(payload, out.with_suffix(".png"))
        return text

    target = payload
    if args.baseline:
        count = len(payload.setdefault("baselines", {}))
        target = payload["baselines"].setdefault(args.baseline, {"sizes": {}, "order": count})
        target["note"] = args.baseline_note or target.get("note", "")
    if not args.report_only:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        for n in sorted(requested):
            if (
                str(n) in target["sizes"]
                and "error" not in target["sizes"][str(n)]
                and not args.force
            ):
                print(f"{n:,}: already measured (use --force to redo)", flush=True)
                continue
            result = run_worker(n, args, env)
            if "error" in result:
                result["progress"] = read_progress(n)[-3:]  # how far it got, with its memory
            result["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
            result["load_average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
            target["sizes"][str(n)] = result
            target["command"] = "python benchmarks/scaling.py " + " ".join(
                sys.argv[1:] if argv is None else argv
            )
            save()
            print(
                "   ",
                result.get("error")
                or f"{result['epoch_seconds']:.2f} s/epoch, peak {result['peak_rss_gib']:.2f} GiB",
                flush=True,
            )
            if "error" in result:
                break  # larger sizes would fail the same way
    print(save())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
