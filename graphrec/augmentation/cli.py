"""Command line of LLM edge augmentation.

::

    # `graphrec augment ...` and `python -m graphrec.augmentation ...` are the same command
    # ask the embedded SmolLM2 about 200 users, candidates from a finished LightGCN run
    python -m graphrec.augmentation generate --run runs/ml-latest-small-tmdb-lightgcn-seed2024 \\
        --backend embedded --users 200 --out datasets/ml-latest-small-tmdb/augmentation/edges.jsonl
    # any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI)
    python -m graphrec.augmentation generate --run RUN --backend openai --base-url http://127.0.0.1:8000/v1 \\
        --model NAME --users 601 --out edges.jsonl
    # what a file holds: provenance, counts, rejection reasons
    python -m graphrec.augmentation inspect edges.jsonl

Killing ``generate`` and running the same command again continues where it stopped
(journal and response cache in ``<out>.work/``).  Train with the file:
``python train.py --config configs/augmentation/lightgcn-augmented.yaml`` or
``--set train.augmentation.path=edges.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence

import torch

from graphrec.augmentation.generate import (
    GenerationSettings,
    base_run_provenance,
    generate_augmentation,
)
from graphrec.console import setup_logging
from graphrec.errors import ConfigError, GraphrecError
from graphrec.training.edges import read_records
from graphrec.training.run import load_run
from kg.errors import KGError
from kg.llm.backends import LLMBackend, OpenAIConfig, TransformersConfig, make_backend

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphrec augment", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser(
        "generate", help="ask an LLM for liked/disliked candidates and write the edge file"
    )
    g.add_argument(
        "--run",
        required=True,
        help="finished training run directory of the base model (candidates)",
    )
    g.add_argument("--out", required=True, help="edge file to write (JSONL)")
    g.add_argument("--users", type=int, default=200, help="users sampled (0 = all)")
    g.add_argument("--candidates", type=int, default=10, help="top-k unseen items shown")
    g.add_argument("--history", type=int, default=8, help="training items shown per user")
    g.add_argument(
        "--description-chars", type=int, default=60, help="overview characters per item (0 = none)"
    )
    g.add_argument("--seed", type=int, default=2024)
    g.add_argument(
        "--no-shuffle", action="store_true", help="show candidates in the base model's order"
    )
    g.add_argument("--max-tokens", type=int, default=32)
    g.add_argument("--work", help="journal/cache folder (default OUT.work)")
    g.add_argument("--cache", help="response cache file (default WORK/cache.sqlite)")
    g.add_argument("--backend", default="embedded", choices=["embedded", "transformers", "openai"])
    g.add_argument("--model", help="openai: model name; transformers: model folder or .gguf file")
    g.add_argument("--base-url", help="openai: endpoint root, e.g. http://127.0.0.1:8000/v1")
    g.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="openai: variable holding the API key"
    )
    g.add_argument("--concurrency", type=int, default=4, help="openai: requests in flight")
    g.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per request")
    g.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (base model and local LLM)"
    )
    g.add_argument("-q", "--quiet", action="store_true")
    i = sub.add_parser("inspect", help="print an edge file's provenance and counts")
    i.add_argument("path")
    return parser


def _backend(args: argparse.Namespace) -> LLMBackend:
    openai_cfg = None
    if args.backend == "openai":
        if not args.base_url or not args.model:
            raise ConfigError("--backend openai needs --base-url and --model")
        openai_cfg = OpenAIConfig(
            base_url=args.base_url,
            model=args.model,
            api_key_env=args.api_key_env,
            timeout_s=args.timeout,
            concurrency=args.concurrency,
        )
    hf_cfg = TransformersConfig(model_path=args.model or "", batch_size=1, threads=args.threads)
    return make_backend(args.backend, openai=openai_cfg, transformers=hf_cfg)


def _generate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    torch.set_num_threads(max(1, args.threads))
    settings = GenerationSettings(
        users=args.users,
        candidates=args.candidates,
        history=args.history,
        description_chars=args.description_chars,
        seed=args.seed,
        shuffle_candidates=not args.no_shuffle,
        max_tokens=args.max_tokens,
    )
    _, data, model = load_run(args.run)
    backend = _backend(args)
    try:
        report = generate_augmentation(
            data,
            model.scorer(),
            backend,
            args.out,
            settings,
            work_dir=args.work,
            cache=args.cache,
            base_run=base_run_provenance(args.run),
            progress=not args.quiet,
            command="python -m graphrec.augmentation " + " ".join(argv),
        )
    finally:
        backend.close()
    print(
        f"{report.users} users -> {report.edges} triplets ({100 * report.acceptance:.1f}% accepted); "
        f"rejected {report.rejected}; failed {report.failed}; {report.llm_calls} LLM calls, "
        f"{report.cache_hits} cache hits; {report.seconds:.0f}s -> {args.out}"
    )
    if report.users and report.failed == report.users:
        print(
            f"error: every one of the {report.users} users failed (see the journal in the work folder); "
            "fix the backend and run the same command again to retry them",
            file=sys.stderr,
        )
        return 2
    return 0


def _inspect(args: argparse.Namespace) -> int:
    header, edges = read_records(args.path)
    print(
        json.dumps({k: v for k, v in header.items() if k != "kind"}, indent=1, ensure_ascii=False)
    )
    liked = Counter(e["pos"] for _, e in edges)
    print(
        f"{len(edges)} triplets; {len(liked)} distinct liked items; most liked: {liked.most_common(5)}"
    )
    if edges:
        positions = Counter(
            e["candidates"].index(e["pos"]) + 1
            for _, e in edges
            if e["pos"] in e.get("candidates", [])
        )
        print(f"liked item's position in the prompt: {sorted(positions.items())}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    setup_logging(getattr(args, "quiet", False))
    try:
        return _generate(args, argv) if args.command == "generate" else _inspect(args)
    except (GraphrecError, KGError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
