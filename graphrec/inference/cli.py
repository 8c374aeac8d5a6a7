"""``python -m graphrec recommend`` and ``python -m graphrec serve``: use a trained run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import torch

from graphrec.cli.common import add_quiet
from graphrec.console import setup_logging, user_errors_exit
from graphrec.inference import server
from graphrec.inference.export import export_topk, read_user_file
from graphrec.inference.load import load_recommender
from graphrec.inference.recommender import DEFAULT_MEMORY_MB


def recommend_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec recommend",
        description="Top-K recommendations of a trained run for many users, streamed in blocks to a file "
        "(resumable: rerun the same command after an interruption; the output appears atomically).",
        epilog="Example: python -m graphrec recommend runs/ml-latest-small-tmdb-ease --users all --k 20 --out topk.csv",
    )
    parser.add_argument("run", help="run directory (config.yaml, checkpoints/best.pt, serving/)")
    parser.add_argument(
        "--users",
        required=True,
        metavar="FILE|all",
        help="`all` (every training user) or a file of raw user ids, one per line",
    )
    parser.add_argument("--k", type=int, default=20, help="list length (default 20)")
    parser.add_argument(
        "--out", required=True, help="output file: .csv, .jsonl or .parquet (needs pyarrow)"
    )
    parser.add_argument(
        "--include-seen", action="store_true", help="keep the users' training items in the lists"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add each item's reasons (contributing items, KG paths)",
    )
    parser.add_argument(
        "--unknown",
        choices=("error", "popularity"),
        default="error",
        help="users the run does not know: stop with an error naming the line (default) or recommend popular items",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument(
        "--memory-mb",
        type=float,
        default=DEFAULT_MEMORY_MB,
        help="bound of one block's score matrix (MB)",
    )
    add_quiet(parser, "no progress bar")
    return parser


@user_errors_exit
def recommend_main(argv: Sequence[str] | None = None) -> int:
    args = recommend_parser().parse_args(argv)
    if args.k < 1:
        print(f"error: --k must be at least 1, got {args.k}", file=sys.stderr)
        return 2
    setup_logging(args.quiet)
    rec = load_recommender(args.run, device=args.device, memory_mb=args.memory_mb)
    users = None if args.users == "all" else read_user_file(args.users)
    figures = export_topk(
        rec,
        args.out,
        users,
        k=args.k,
        exclude_seen=not args.include_seen,
        explain=args.explain,
        unknown=args.unknown,
        users_path=None if args.users == "all" else args.users,
        progress=not args.quiet,
    )
    print(json.dumps(figures))
    return 0


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec serve",
        description="Serve a trained run over HTTP (JSON API, OpenAPI page at /docs).",
        epilog="Example: python -m graphrec serve runs/ml-latest-small-tmdb-ease --port 8000",
    )
    parser.add_argument("run", help="run directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask for")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per request (default 1: requests are small and run concurrently; "
        "more threads per request only contend for the cores)",
    )
    add_quiet(parser, "warnings only")
    return parser


@user_errors_exit
def serve_main(argv: Sequence[str] | None = None) -> int:
    args = serve_parser().parse_args(argv)
    setup_logging(args.quiet)
    server.require_server()
    torch.set_num_threads(max(1, args.threads))
    rec = load_recommender(args.run, device=args.device)
    server.run(rec, host=args.host, port=args.port, max_k=args.max_k, quiet=args.quiet)
    return 0


__all__ = ["recommend_main", "recommend_parser", "serve_main", "serve_parser"]
