#!/usr/bin/env python
"""What else could close text-EASE's last gaps? Ablations on validation (issue 14 §5).

    python benchmarks/text_ease_ablations.py                      # both datasets, every section
    python benchmarks/text_ease_ablations.py --datasets amazon18-scientific --sections fusion

Issue 14 asks the best text arm to beat the better of LightGCN and EASE by 15% on amazon18-scientific
(text-EASE: +21.6% Recall@20, +14.97% NDCG@20) and cold-start items to reach 1.5x text item-kNN
(text-EASE: 1.10x / 1.45x).  Each section varies one thing around the settings
``benchmarks/text_models.py`` chose on validation (read from its results file) and scores the
*validation* split only, so nothing here is chosen on test; the fusion section also reports test at
its validation-chosen weight.

* ``popularity_ridge``: DLAE/EDLAE's dropout penalty (Steck 2020), a ridge d·n_i on each input item's
  row of B on top of ρ (``text_ease_weights(extra_ridge=)``), for EASE and text-EASE.
* ``normalisation``: users weighted by n_u^-β in the Gram matrix (ridge rescaled to the same mean
  diagonal) and B's columns scaled by (n_j + 1)^-γ (γ > 0 demotes popular items), in the spirit of
  DAN (Park et al., SIGIR 2025), for EASE and text-EASE.
* ``fusion``: text-EASE ⊕ LightGCN + RLMRec-Con (the best text-aware graph arm), per-user z-scored
  scores, z(text-EASE) + w·z(graph).
* ``cold``: on two validation cold splits (``cold_start_analysis.validation_cold_split``): the
  kernel-ridge μ of ``cold_items: neighbours``, a softmax kNN over text neighbours' columns instead,
  and mixtures of the neighbour columns with text item-kNN or text-EASE's prior column.

Writes ``benchmarks/results/text_ease_ablations.{json,md}``; finished sections are kept and skipped
on the next run (1 thread).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from cold_start_analysis import matrix_scorer, standardised, warm_text_ease  # noqa: E402
from text_models import ARMS, Texts, chosen_setting, fit, load_data  # noqa: E402

from alignment.coldstart import (  # noqa: E402
    cold_items_of,
    cold_start_split,
    evaluate_cold_start,
    text_item_knn_scorer,
    validation_cold_split,
)
from alignment.linear import (  # noqa: E402
    neighbour_columns,
    text_ease_weights,
    text_gram_factor,
)
from graphrec.config import load_config  # noqa: E402
from graphrec.evaluation import evaluate_scorer  # noqa: E402
from graphrec.io import atomic_write_json, atomic_write_text  # noqa: E402
from graphrec.models import load_plugins  # noqa: E402

DATASETS = ["amazon18-scientific", "ml-latest-small-tmdb"]
SECTIONS = ["popularity_ridge", "normalisation", "fusion", "cold"]
TEXT_MODELS = REPO / "benchmarks" / "results" / "text_models.json"
Scorer = Callable[[torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------ shared inputs
class Inputs:
    """One dataset's protocol, data, the chosen EASE / text-EASE settings and text-EASE's S."""

    def __init__(self, dataset: str, text_models: Path, sections: list[str]) -> None:
        self.dataset = dataset
        self.protocol = load_config(REPO / "configs" / dataset / "lightgcn.yaml")
        self.data = load_data(self.protocol.data)
        self.texts = Texts(self.data)
        block = json.loads(text_models.read_text())["datasets"][dataset]
        needed = ("ease", "text_ease") + (("aligned",) if "fusion" in sections else ())
        self.chosen = {arm: chosen_setting(block, arm) for arm in needed}
        missing = [arm for arm, setting in self.chosen.items() if setting is None]
        if missing:
            raise SystemExit(
                f"{dataset}: {text_models} has no validation-chosen setting of {', '.join(missing)}; "
                f"run benchmarks/text_models.py --datasets {dataset} --arms {' '.join(missing)} first"
            )
        self.ease_l2 = ARMS["ease"][1][self.chosen["ease"]][0]["l2"]
        self.text_section = ARMS["text_ease"][1][self.chosen["text_ease"]][0]
        _, self.text_model, _ = fit("text_ease", self.chosen["text_ease"], 0, *self.fit_args())
        self.s = self.text_model.text_similarity()
        x = sp.csr_matrix(self.data.train, dtype=np.float64)
        x.data[:] = 1.0
        self.x = x

    def fit_args(self):
        return self.data, self.texts, self.protocol, 1, self.dataset

    def arms(self) -> list[tuple[str, float, float]]:
        """``(arm, ρ, c)`` of EASE and text-EASE at their chosen settings."""
        section = self.text_section
        return [("EASE", self.ease_l2, 0.0), ("text-EASE", section["l2"], section["text_weight"])]

    def valid(self, weights: torch.Tensor, arm: str) -> dict[str, float]:
        """Validation Recall/NDCG@20 of scoring ``X_u B`` with ``weights`` as B (text-EASE's items
        without training interactions get their text neighbours' columns, as in the model; EASE's
        stay as fitted)."""
        model = self.text_model
        fitted = model.weights.clone()
        try:
            model.weights.copy_(weights)
            if arm == "text-EASE":
                model.fill_cold_columns()
            return metrics_of(evaluate_scorer(model.scorer(), self.data, "valid", ks=(20,)))
        finally:
            model.weights.copy_(fitted)  # the fitted text-EASE for the next variant and section


def metrics_of(result) -> dict[str, float]:
    return {m: float(result.metrics[m]) for m in ("recall@20", "ndcg@20")}


# ------------------------------------------------------------------ sections
def popularity_ridge(inp: Inputs) -> dict:
    gram = torch.from_numpy((inp.x.T @ inp.x).toarray())
    counts = gram.diagonal().clone()
    rows = {}
    for arm, rho, c in inp.arms():
        for d in (0.0, 0.3, 1.0, 3.0, 10.0):
            b = text_ease_weights(gram, inp.s, rho, c, extra_ridge=d * counts)
            rows[f"{arm}, d {d:g}"] = inp.valid(b, arm)
            print(inp.dataset, "popularity_ridge", arm, d, rows[f"{arm}, d {d:g}"], flush=True)
    return rows


def normalisation(inp: Inputs) -> dict:
    x = inp.x
    user_degree = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)
    item_degree = torch.from_numpy(np.asarray(x.sum(axis=0)).ravel())
    plain_diag = float(np.asarray(x.sum(axis=0)).mean())
    rows = {}
    for beta in (0.0, 0.25, 0.5):
        gram = torch.from_numpy((x.T @ (sp.diags(user_degree**-beta) @ x)).toarray())
        scale = (
            float(gram.diagonal().mean()) / plain_diag
        )  # the same ridge relative to the data term
        for arm, rho, c in inp.arms():
            b = text_ease_weights(gram, inp.s, rho * scale, c)
            for gamma in (-0.1, 0.0, 0.1, 0.2):
                key = f"{arm}, β {beta:g}, γ {gamma:g}"
                rows[key] = inp.valid(b * torch.pow(item_degree + 1.0, -gamma)[None, :], arm)
                print(inp.dataset, "normalisation", key, rows[key], flush=True)
    return rows


def zscored(scorer: Scorer) -> Scorer:
    def score(users: torch.Tensor) -> torch.Tensor:
        return standardised(scorer(users))

    return score


def fusion(inp: Inputs) -> dict:
    _, graph, seconds = fit("aligned", inp.chosen["aligned"], 0, *inp.fit_args())
    text = zscored(inp.text_model.scorer())
    other = zscored(graph.scorer())
    mask_valid = inp.protocol.eval.mask_valid_at_test
    rows: dict = {}
    for w in (0.0, 0.1, 0.2, 0.35, 0.5, 1.0):

        def blend(users: torch.Tensor, w: float = w) -> torch.Tensor:
            return text(users) + w * other(users)

        rows[f"w {w:g}"] = metrics_of(evaluate_scorer(blend, inp.data, "valid", ks=(20,)))
        rows[f"w {w:g}"]["test"] = metrics_of(
            evaluate_scorer(blend, inp.data, "test", ks=(20,), mask_valid=mask_valid)
        )
        print(inp.dataset, "fusion", w, rows[f"w {w:g}"], flush=True)
    best = max(rows, key=lambda k: rows[k]["recall@20"])
    return {"rows": rows, "chosen": best, "graph_train_seconds": seconds}


def cold(inp: Inputs) -> dict:
    knn_vectors = inp.texts.items  # the text-kNN baseline's, as in text_models.py
    vectors = torch.nn.functional.normalize(
        torch.as_tensor(inp.text_model.item_text, dtype=torch.float64), dim=1
    )
    rho, mu = inp.text_section["l2"], inp.text_section["similarity_l2"]
    rows: dict[str, list[float]] = {}
    for split_seed in (0, 1):
        split = validation_cold_split(cold_start_split(inp.data, fraction=0.1, seed=split_seed))
        items = cold_items_of(split)
        knn = text_item_knn_scorer(split.train, knn_vectors, k=50)
        base = evaluate_cold_start(knn, split, ks=(20,)).metrics["recall@20"]
        for name, scorer in cold_scorers(split, vectors, rho, mu, items, knn):
            ratio = evaluate_cold_start(scorer, split, ks=(20,)).metrics["recall@20"] / base
            rows.setdefault(name, []).append(float(ratio))
            print(inp.dataset, "cold", split_seed, name, f"{ratio:.3f}", flush=True)
    return {
        name: {"x_knn": ratios, "mean": float(np.mean(ratios))} for name, ratios in rows.items()
    }


def cold_scorers(split, e, rho, mu, items, knn) -> Iterable[tuple[str, Scorer]]:
    """The cold-item scorers compared on one validation cold split (``e``: unit text rows)."""
    b, warm = warm_text_ease(split, e, rho, mu)
    held = torch.as_tensor(items)
    columns = {}
    for ridge in (1.0, 3.0, 10.0, 30.0, 100.0):
        factor = text_gram_factor(e[warm], ridge)
        columns[ridge] = neighbour_columns(b, warm, e[warm], e[held], factor).numpy()
        yield (
            f"neighbours, kernel ridge μ {ridge:g}",
            matrix_scorer(split.train, columns[ridge], items),
        )
    cross = e[warm] @ e[held].T
    for k, tau in ((50, 0.05), (200, 0.1)):
        top = torch.topk(cross, k, dim=0)
        weights = torch.zeros_like(cross).scatter_(
            0, top.indices, torch.softmax(top.values / tau, 0)
        )
        yield (
            f"softmax kNN k {k}, τ {tau:g}",
            matrix_scorer(split.train, (b[:, warm] @ weights).numpy(), items),
        )
    neighbours = matrix_scorer(split.train, columns[mu], items)
    prior = matrix_scorer(split.train, b[:, held].numpy(), items)
    for name, other in (("text item-kNN", knn), ("text-EASE prior", prior)):
        for w in (0.25, 0.5):
            yield f"neighbours (μ {mu:g}) + {w:g}·{name}", mixed(neighbours, other, w, held)


def mixed(a: Scorer, b: Scorer, w: float, held: torch.Tensor) -> Scorer:
    """Per-user z-scores over the held-out items: z(a) + w·z(b)."""

    def score(users: torch.Tensor) -> torch.Tensor:
        ra = a(users)
        out = torch.full_like(ra, float("-inf"))
        out[:, held] = standardised(ra[:, held]) + w * standardised(b(users)[:, held])
        return out

    return score


RUN = {
    "popularity_ridge": popularity_ridge,
    "normalisation": normalisation,
    "fusion": fusion,
    "cold": cold,
}


# ------------------------------------------------------------------ report
def markdown(report: dict) -> str:
    out = ["# text-EASE ablations (validation; benchmarks/text_ease_ablations.py)", ""]
    for dataset, block in report["datasets"].items():
        for section in ("popularity_ridge", "normalisation"):
            if section in block:
                out += [
                    f"## {dataset}: {section}",
                    "",
                    "| variant | valid R@20 | valid N@20 |",
                    "|---|---|---|",
                ]
                out += [
                    f"| {k} | {v['recall@20']:.4f} | {v['ndcg@20']:.4f} |"
                    for k, v in block[section].items()
                ]
                out.append("")
        if "fusion" in block:
            rows, chosen = block["fusion"]["rows"], block["fusion"]["chosen"]
            out += [f"## {dataset}: fusion (text-EASE ⊕ LightGCN + RLMRec-Con, seed 0)", ""]
            out += [
                "| weight w | valid R@20 | valid N@20 | test R@20 | test N@20 |",
                "|---|---|---|---|---|",
            ]
            for k, v in rows.items():
                mark = " (chosen)" if k == chosen else ""
                out.append(
                    f"| {k}{mark} | {v['recall@20']:.4f} | {v['ndcg@20']:.4f} | "
                    f"{v['test']['recall@20']:.4f} | {v['test']['ndcg@20']:.4f} |"
                )
            out.append("")
        if "cold" in block:
            out += [f"## {dataset}: cold items (two validation cold splits, × text item-kNN)", ""]
            out += ["| scorer | split 0 | split 1 | mean |", "|---|---|---|---|"]
            for k, v in block["cold"].items():
                out.append(f"| {k} | {v['x_knn'][0]:.3f} | {v['x_knn'][1]:.3f} | {v['mean']:.3f} |")
            out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--sections", nargs="+", default=SECTIONS, choices=SECTIONS)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "text_ease_ablations"
    )
    parser.add_argument(
        "--rerun", action="store_true", help="recompute sections already in the results"
    )
    parser.add_argument(
        "--text-models",
        type=Path,
        default=TEXT_MODELS,
        help="results of benchmarks/text_models.py holding the validation-chosen settings",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_plugins()
    path = args.out.with_suffix(".json")
    report = json.loads(path.read_text()) if path.is_file() else {"datasets": {}}
    report["machine"] = f"{platform.machine()} {platform.system()}, torch {torch.__version__}"
    for dataset in args.datasets:
        block = report["datasets"].setdefault(dataset, {})
        todo = [s for s in args.sections if args.rerun or s not in block]
        if not todo:
            continue
        inputs = Inputs(dataset, args.text_models, todo)
        for section in todo:
            block[section] = RUN[section](inputs)
            atomic_write_json(path, report)  # each finished section is kept
    atomic_write_text(args.out.with_suffix(".md"), markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
