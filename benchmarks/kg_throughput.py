"""Throughput of kg extraction: embedded model on CPU, OpenAI-compatible backend, cache rebuilds.

Measures, on a fixed sample of ml-latest-small-tmdb items with overviews (seed 0):

* embedded SmolLM2-135M, batched structured decoding (``kg.llm.backends.fastllama``): items/s
  (wall) and items per CPU-second (process CPU time, all threads: on a shared machine
  the wall clock measures the neighbours too), optionally the previous one-at-a-time
  ``generate`` path on a few items for the speed-up, and ``--processes 2``: two shard
  processes (``kg build --shard k/2``, one thread each) side by side, i.e. 2 cores;
* openai backend against a local chat-completions server with a fixed per-request
  latency, for several ``concurrency`` settings;
* a rebuild of each from its response cache (must make 0 calls).

    nice -n 5 python benchmarks/kg_throughput.py --n 96 --baseline 4 --processes 2

Writes ``benchmarks/results/kg_throughput.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "kg"))  # the local chat-completions test server

from kg.build import SelectConfig, select_items  # noqa: E402
from kg.data import dataset_file, read_items  # noqa: E402
from kg.io import atomic_write_json, atomic_write_text  # noqa: E402
from kg.llm.backends import (  # noqa: E402
    OpenAIConfig,
    TransformersBackend,
    TransformersConfig,
    make_backend,
)
from kg.llm.cache import ResponseCache  # noqa: E402
from kg.pipeline import ExtractConfig, extract_items  # noqa: E402
from kg.schema import load_schema  # noqa: E402

TEXT_RELATIONS = ("keyword", "features_character", "set_in", "set_in_period", "genre")


def _timed_extract(items, schema, backend, out: Path, cfg: ExtractConfig, cache_path: Path) -> dict:
    cache = ResponseCache(cache_path)
    wall, cpu = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()[0]
    try:
        stats = extract_items(items, schema, backend, out, cfg, cache, quiet=True)
    finally:
        cache.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = stats.items_done + stats.items_failed
    return {
        "items": done,
        "calls": stats.calls,
        "cache_hits": stats.cache_hits,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "items_per_s": round(done / wall, 3) if wall else None,
        "items_per_cpu_s": round(done / cpu, 3) if cpu else None,
        "completion_tokens_per_item": round(stats.completion_tokens / max(1, stats.calls), 1),
        "prompt_tokens_per_item": round(stats.prompt_tokens / max(1, stats.calls), 1),
        "kept_triples": stats.kept,
        "load_average_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }


def embedded(items, schema, args, work: Path) -> dict:
    cfg = ExtractConfig(max_new_tokens=args.max_new_tokens, relations=TEXT_RELATIONS)
    res: dict = {"threads": args.threads, "batch_size": args.batch_size}
    backend = make_backend(
        "embedded",
        transformers=TransformersConfig(
            batch_size=args.batch_size, threads=args.threads, matmul_dtype=args.matmul_dtype
        ),
    )
    assert isinstance(backend, TransformersBackend)  # `embedded` is the transformers backend
    t0 = time.perf_counter()
    backend._load()  # noqa: SLF001 - load time reported apart from extraction
    res["load_seconds"] = round(time.perf_counter() - t0, 1)
    runner = backend._decoder.runner if backend._decoder is not None else None  # noqa: SLF001
    res["matmul_dtype"] = str(runner.matmul_dtype) if runner is not None else None
    res["batched"] = _timed_extract(items, schema, backend, work / "emb", cfg, work / "emb.sqlite")
    if runner is not None:  # the runner's forward time, split by what it was fed
        total = sum(runner.seconds.values()) or 1.0
        res["forward_seconds"] = {k: round(v, 2) for k, v in runner.seconds.items()}
        res["prefill_share_of_forward"] = round(runner.seconds["prefill"] / total, 3)
    res["rebuild_from_cache"] = _timed_extract(
        items, schema, backend, work / "emb-again", cfg, work / "emb.sqlite"
    )
    if args.baseline:
        old = make_backend(
            "embedded",
            transformers=TransformersConfig(batch_size=1, threads=args.threads, fast=False),
        )
        res["one_at_a_time_generate"] = _timed_extract(
            items[: args.baseline], schema, old, work / "old", cfg, work / "old.sqlite"
        )
        old.close()
    backend.close()
    return res


def sharded_processes(args, work: Path) -> dict:
    """``n`` shard processes (one torch thread each) on the same sample, side by side."""
    procs = []
    wall = time.perf_counter()
    for k in range(args.processes):
        cmd = [
            sys.executable,
            "-m",
            "kg",
            "build",
            "--dataset",
            args.dataset,
            "--backend",
            "embedded",
            "--sample",
            str(args.n),
            "--seed",
            "0",
            "--relations",
            ",".join(TEXT_RELATIONS),
            "--max-new-tokens",
            str(args.max_new_tokens),
            "--threads",
            "1",
            "--batch-size",
            str(args.batch_size),
            "--matmul-dtype",
            args.matmul_dtype,
            "--shard",
            f"{k}/{args.processes}",
            "--out",
            str(work / f"shard{k}"),
            "--formats",
            "nq.gz",
            "--no-embeddings",
            "-q",
        ]
        procs.append(
            subprocess.Popen(
                cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - wall
    per = []
    for p, (stdout, stderr) in zip(procs, outs):
        if p.returncode != 0:
            return {"error": stderr[-2000:]}
        stats = json.loads(stdout[stdout.index("{") :])
        per.append({k: stats[k] for k in ("items_done", "calls", "seconds", "items_per_s")})
    items = sum(s["items_done"] for s in per)
    extract_wall = max(s["seconds"] for s in per)
    return {
        "processes": args.processes,
        "items": items,
        "wall_incl_load_s": round(wall, 1),
        "extraction_wall_s": round(extract_wall, 1),
        "items_per_s": round(items / extract_wall, 3),
        "per_shard": per,
    }


def openai(items, schema, args, work: Path) -> dict:
    from chat_server import ChatServer
    from fakes import fake_reply

    cfg = ExtractConfig(max_new_tokens=args.max_new_tokens)
    res: dict = {"latency_s": args.latency, "runs": {}}
    with ChatServer(responder=fake_reply, delay=args.latency) as server:
        for conc in args.concurrency:
            backend = make_backend(
                "openai",
                openai=OpenAIConfig(
                    base_url=server.base_url, model="bench", concurrency=conc, api_key_env=""
                ),
            )
            server.peak_in_flight = 0
            run = _timed_extract(
                items, schema, backend, work / f"oa{conc}", cfg, work / f"oa{conc}.sqlite"
            )
            run["peak_in_flight"] = server.peak_in_flight
            before = len(server.requests)
            again = _timed_extract(
                items, schema, backend, work / f"oa{conc}-again", cfg, work / f"oa{conc}.sqlite"
            )
            again["requests_seen_by_server"] = len(server.requests) - before
            res["runs"][str(conc)] = {"build": run, "rebuild_from_cache": again}
            backend.close()
    return res


def markdown(results: dict) -> str:
    lines = [
        f"# kg throughput ({results['n']} ml-latest-small-tmdb items with overviews, seed 0)",
        "",
        f"Command: `{results['command']}`",
        "",
        "| backend | setting | items | calls | wall s | items/s | items per CPU-s | rebuild calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    emb = results.get("embedded")
    if emb:
        b, r = emb["batched"], emb["rebuild_from_cache"]
        lines.append(
            f"| embedded SmolLM2-135M | batched structured, batch {emb['batch_size']}, "
            f"{emb['threads'] or 'default'} thread(s) | {b['items']} | {b['calls']} | {b['seconds']} | "
            f"{b['items_per_s']} | {b['items_per_cpu_s']} | {r['calls']} |"
        )
        old = emb.get("one_at_a_time_generate")
        if old:
            lines.append(
                f"| embedded SmolLM2-135M | previous path: generate(), one item at a time | {old['items']} | "
                f"{old['calls']} | {old['seconds']} | {old['items_per_s']} | {old['items_per_cpu_s']} | - |"
            )
    sh = results.get("sharded")
    if sh and "error" not in sh:
        lines.append(
            f"| embedded SmolLM2-135M | {sh['processes']} shard processes x 1 thread (2 cores) | "
            f"{sh['items']} | {sum(s['calls'] for s in sh['per_shard'])} | {sh['extraction_wall_s']} | "
            f"{sh['items_per_s']} | - | - |"
        )
    oa = results.get("openai")
    if oa:
        for conc, run in oa["runs"].items():
            b, r = run["build"], run["rebuild_from_cache"]
            lines.append(
                f"| openai (local server, {oa['latency_s']} s/request) | concurrency {conc} "
                f"(peak in flight {b['peak_in_flight']}) | {b['items']} | {b['calls']} | {b['seconds']} | "
                f"{b['items_per_s']} | - | {r['calls']} (server saw {r['requests_seen_by_server']}) |"
            )
    if emb:
        b = emb["batched"]
        lines += [
            "",
            f"Load average (1 min) on the shared 2-core machine during the embedded run: "
            f"{b['load_average_1min'][0]} -> {b['load_average_1min'][1]}; per item "
            f"{b['prompt_tokens_per_item']} prompt and {b['completion_tokens_per_item']} completion tokens.",
        ]
        if emb.get("forward_seconds"):
            split = emb["forward_seconds"]
            lines.append(
                f"Weight products in {emb['matmul_dtype']}; the model's forward took {split['prefill']} s "
                f"of prefill (prompt and item text) and {split['decode']} s of decoding "
                f"(prefill {emb['prefill_share_of_forward']:.0%})."
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", default="ml-latest-small-tmdb")
    ap.add_argument("--n", type=int, default=96, help="items (fixed sample, seed 0)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--matmul-dtype",
        choices=["auto", "float32", "bfloat16"],
        default="float32",
        help="the fast runner's weight products (kg build --matmul-dtype)",
    )
    ap.add_argument("--max-new-tokens", type=int, default=120)
    ap.add_argument(
        "--baseline",
        type=int,
        default=0,
        help="also time the old generate() path on this many items",
    )
    ap.add_argument(
        "--processes", type=int, default=0, help="also run this many shard processes side by side"
    )
    ap.add_argument(
        "--latency", type=float, default=0.25, help="openai test server: seconds per request"
    )
    ap.add_argument("--concurrency", default="1,4,16", help="openai: requests in flight to try")
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument(
        "--results", default=str(REPO / "benchmarks" / "results" / "kg_throughput.json")
    )
    args = ap.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    schema = load_schema("films")
    items = select_items(
        read_items(dataset_file(args.dataset, "items.tsv")), SelectConfig(sample=args.n, seed=0)
    )
    results: dict = {
        "command": "nice -n 5 python benchmarks/kg_throughput.py " + " ".join(sys.argv[1:]),
        "n": len(items),
        "cpu_count": os.cpu_count(),
    }
    work = Path(tempfile.mkdtemp(prefix="kg_throughput_"))
    try:
        results["openai"] = openai(items, schema, args, work)
        print(json.dumps(results["openai"], indent=1), flush=True)
        if not args.skip_embedded:
            results["embedded"] = embedded(items, schema, args, work)
            print(json.dumps(results["embedded"], indent=1), flush=True)
            if args.processes:
                results["sharded"] = sharded_processes(args, work)
                print(json.dumps(results["sharded"], indent=1), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    atomic_write_json(args.results, results)
    atomic_write_text(Path(args.results).with_suffix(".md"), markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
