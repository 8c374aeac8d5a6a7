"""Robustness of the parsers of LLM output: fuzzed replies, undeclared exceptions, time per reply.

Every parser of model output is fed the same seeded stream of adversarial replies
(:func:`fuzz_inputs`): the inputs of the bug reports (a 5,000-digit number, deep
nesting, a long run of spaces inside a value, runs of ``{``), JSON fragments glued at
random, huge numbers, deep nesting (also behind a stray quote), long runs of spaces,
braces, quotes and backslashes, unicode (surrogates, other scripts' digits), valid
replies truncated and mutated.  A parser may only answer with its declared contract
(:data:`PARSERS`): ``kg.parse.parse_output`` returns a ``ParseResult`` whose error is
one of ``kg.parse.ERRORS``; ``graphrec.augmentation.parse.parse_choice`` returns a
valid ``Choice`` or a ``Rejection`` whose reason is in ``REASONS``.  Anything raised is
an undeclared exception.  Each call is timed with ``time.perf_counter``.

    python benchmarks/robustness.py            # 100,000 inputs per parser
    python benchmarks/robustness.py --n 2000 --seed 1
    python benchmarks/robustness.py --kill-only --kill-runs 5   # kill -9 suite only

``--kill-runs R`` adds the crash suite: a LightGCN training (``train.py``), a ``kg build`` and an augmentation
run (``python -m graphrec.augmentation generate``) against the tests' fake chat server are each run once
uninterrupted, then R times with ``kill -9`` at uniformly random moments (up to 4 kills per run, the same
command rerun after each); the final outputs (metrics, best weights, per-user results; triples) must be
identical to the uninterrupted run's, ``metrics.jsonl`` and the KG journal must hold every epoch / item
exactly once, and a killed build may repeat at most one LLM call per kill.
``tests/test_robustness_kills.py`` runs a one-run sample.

Prints and writes ``benchmarks/results/robustness.json`` (inputs fuzzed, undeclared
exceptions with examples, slowest input in ms with its kind, p50/p99 per parser).
The tests (``tests/kg/test_parse_fuzz.py``, ``tests/augmentation/test_aug_parse_fuzz.py``)
run a 2,000-input sample of the same stream.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from graphrec.augmentation import read_records  # noqa: E402
from graphrec.augmentation.parse import REASONS, Choice, Rejection, parse_choice  # noqa: E402
from graphrec.data.synthetic import random_interactions  # noqa: E402
from graphrec.io import atomic_write_json  # noqa: E402
from kg.io import read_jsonl  # noqa: E402
from kg.parse import ERRORS, Candidate, ParseResult, parse_output  # noqa: E402

#: candidate titles given to the augmentation parser
TITLES = [
    "Toy Story (1995)",
    "Heat",
    "The Matrix",
    "Alien",
    "Up",
    "Star Wars",
    "Star Trek",
    "Casino",
    "Se7en",
    "12",
]

#: the inputs of the bug reports and their neighbours: always fuzzed first
ADVERSARIAL: list[tuple[str, str]] = [
    ("report:5000-digit number", '{"keyword": [' + "7" * 5000 + "]}"),
    ("report:5000-digit like", '{"like": ' + "9" * 5000 + ', "dislike": 2}'),
    ("report:4301-digit number", "[" + "1" * 4301 + "]"),
    ("report:deep nesting", '{"like": ' + "[" * 5000 + "]" * 5000 + ', "dislike": 2}'),
    ("report:deep nesting unclosed", "[" * 100_000),
    ("report:deep objects", '{"a":' * 3000 + "1" + "}" * 3000),
    ("report:spaces in a value", '{"like": "' + " " * 3000 + 'x", "dislike": 2}'),
    (
        "report:spaces in a value (long)",
        '{"like": "' + " " * 15_000 + 'x", "dislike": "' + " " * 900 + '"}',
    ),
    ("report:run of braces", "{" * 3000),
    ("report:run of braces (long)", "{" * 15_000),
    ("report:run of spaces", " " * 3000 + "x"),
    ("report:number then spaces", '{"like": "3' + " " * 5000 + '", "dislike": 2}'),
    ("report:bracket then spaces", "[" + " " * 10_000 + "1" + " " * 4000),
    ("stray quote then deep", '"' + '["]",' * 5000),
    ("stray quote then deep objects", 'He said "hi. ' + '{"a": ' * 5000),
    ("braces and quotes", '{"' * 8000),
    ("backslashes", '{"like": "' + "\\" * 10_001 + '"}'),
    ("fence without end", "```json\n" + "[" * 40 + '"x"'),
    ("many fences", "```" * 10_000),
    ("prefer run", "prefer" + "r" * 15_000 + " 3"),
    ("like repeated", "like " * 3000 + "3"),
    ("over the size limit", '{"keyword": ["' + "a" * 100_000 + '"]}'),
    ("surrogates", '{"like": "\ud800\udfff\ud800", "dislike": 1}'),
    ("float overflow", '{"like": 1e999, "dislike": -1e999, "keyword": [1e309]}'),
    ("nan", '{"like": NaN, "dislike": Infinity}'),
]

_JSON_FRAGMENTS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "'",
    "\\",
    "\n",
    " ",
    "```json\n",
    "```",
    "null",
    "true",
    "false",
    "NaN",
    "-Infinity",
    "1e3",
    "-0",
    "0.5",
    "3",
    "12",
    "#2",
    "[4]",
    "(5)",
    '{"like": ',
    '"dislike": ',
    "'liked': ",
    '"favorite": ',
    '"least": ',
    '"keyword": [',
    '"genre": ["Drama"]',
    '"set_in": "Rome, Paris"',
    '{"facts": [',
    '{"relation": "starring", "tail": "Tom Hanks", "type": "Person"}',
    '["genre", "Comedy"]',
    '["Heat", "directed_by", "Michael Mann"]',
    '"Heat"',
    '"The Matrix"',
    '"candidate 3"',
    "like ",
    "dislike ",
    "would not like ",
    "least ",
    "most ",
    "prefer ",
    "I think the user would like 3 and dislike 5.",
    "[2] [5]",
    "Sure! Here you go: ",
    "\u00e9",
    "\u20ac",
    "\u0663",
    "\uff13",
    "\u200b",
    "\ud83c",
    "\U0001f600",
]
_RUN_CHARS = [
    " ",
    "{",
    "[",
    "}",
    "]",
    '"',
    "'",
    "\\",
    "\n",
    "\t",
    ",",
    ":",
    "0",
    "9",
    "`",
    "a",
    "#",
    "(",
    "-",
    "\u00a0",
]
_RUN_LENGTHS = [50, 300, 1000, 3000, 8000, 15_000, 31_000, 40_000, 70_000]
_VALID = [
    '{"like": 2, "dislike": 4}',
    'Sure! Here you go: {"like": "3", "dislike": "#1"}',
    "{'liked': [5], 'disliked': [2]}",
    '{"favorite": "The Matrix", "least": "alien"}',
    "I think the user would like 3 and dislike 5.",
    "[2] [5]",
    '{"genre": ["Drama"], "keyword": ["grief", "sea"], "set_in": ["Maine"]}',
    '[{"relation": "starring", "tail": "Tom Hanks"}]',
    '```json\n{"facts": [["genre", "Comedy"], ["set_in", "Rome"]]}\n```',
    '{"keyword": {"values": ["heist", "revenge"]}, "starring": [{"name": "Al Pacino", "type": "Person"}]}',
]
_TEMPLATES = [
    '{"like": "<>", "dislike": 2}',
    '{"like": <>, "dislike": 2}',
    '{"keyword": ["<>"]}',
    '{"keyword": [<>]}',
    "I would like <> and dislike 2",
    "[<>] [2]",
    "<>",
    '```json\n{"genre": ["<>"]}\n```',
    "{'like': '<>'}",
    '{"facts": [{"relation": "keyword", "tail": "<>"}]}',
]


def _mutate(rng: random.Random, text: str, steps: int) -> str:
    chars = list(text)
    for _ in range(steps):
        op = rng.random()
        pos = rng.randint(0, len(chars)) if chars else 0
        if op < 0.25 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.55:
            chars.insert(pos, rng.choice('{}[]",:\\ \n\'#' + "0123456789"))
        elif op < 0.7:
            chars = chars[: rng.randint(0, len(chars))]
        elif op < 0.85:
            chars.insert(pos, chr(rng.randint(0, 0x2FFF)))
        else:
            chars[pos:pos] = list(rng.choice(_JSON_FRAGMENTS))
    return "".join(chars)


def _fill(rng: random.Random, inner: str) -> str:
    return rng.choice(_TEMPLATES).replace("<>", inner)


def _random_input(rng: random.Random) -> tuple[str, str]:
    kind = rng.choices(
        [
            "fragments",
            "mutated",
            "truncated",
            "huge_number",
            "deep",
            "run",
            "repeat",
            "unicode",
            "ascii",
        ],
        weights=[20, 20, 8, 8, 8, 10, 6, 10, 10],
    )[0]
    if kind == "fragments":
        return kind, "".join(rng.choice(_JSON_FRAGMENTS) for _ in range(rng.randint(1, 40)))
    if kind == "mutated":
        return kind, _mutate(rng, rng.choice(_VALID), rng.randint(1, 12))
    if kind == "truncated":
        text = rng.choice(_VALID)
        return kind, text[: rng.randint(0, len(text))]
    if kind == "huge_number":
        digits = rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(9))
        number = (digits * 5000)[: rng.choice([101, 500, 4301, 5000, 20_000, 40_000])]
        number = rng.choice([number, "-" + number, number + ".5", "1e" + number, "0." + number])
        return kind, _fill(rng, number)
    if kind == "deep":
        depth = rng.choice([33, 100, 1000, 3000, 10_000, 30_000])
        opener = rng.choice(["[", "{", '{"a":', "[{\"x\":", '{"like": [', "[\"a\","])
        closer = {
            "[": "]",
            "{": "}",
            '{"a":': "}",
            "[{\"x\":": "}]",
            '{"like": [': "]}",
            "[\"a\",": "]",
        }[opener]
        body = (
            opener * depth
            + ("1" if rng.random() < 0.5 else "")
            + (closer * depth if rng.random() < 0.5 else "")
        )
        prefix = rng.choice(["", '"', "Here: ", '"a" "'])
        return kind, prefix + body
    if kind == "run":
        run = rng.choice(_RUN_CHARS) * rng.choice(_RUN_LENGTHS)
        return kind, _fill(rng, run) if rng.random() < 0.7 else run
    if kind == "repeat":
        piece = rng.choice(
            _JSON_FRAGMENTS + ['{"a":1}', "[1,", '"x",', '{"like": 1},', "like 3 ", "[1] "]
        )
        return kind, piece * rng.choice([10, 100, 1000, 5000, 12_000])
    if kind == "unicode":
        parts = []
        for _ in range(rng.randint(1, 60)):
            if rng.random() < 0.5:
                parts.append(rng.choice(_JSON_FRAGMENTS))
            else:
                parts.append(
                    chr(
                        rng.choice(
                            [
                                rng.randint(0x80, 0x2FFF),
                                rng.randint(0xD800, 0xDFFF),
                                rng.randint(0x10000, 0x10FFFF),
                                rng.randint(0xFF10, 0xFF19),
                            ]
                        )
                    )
                )
        return kind, "".join(parts)
    return kind, "".join(chr(rng.randint(0, 0x7F)) for _ in range(rng.randint(0, 400)))


def fuzz_inputs(n: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """``n`` fuzzed replies as ``(kind, text)``: :data:`ADVERSARIAL` first, then a seeded random stream."""
    rng = random.Random(seed)
    for i in range(n):
        yield ADVERSARIAL[i] if i < len(ADVERSARIAL) else _random_input(rng)


# -- the parsers and their declared contracts -------------------------------------------
def _kg_parse(text: str) -> None:
    result = parse_output(text)
    if not isinstance(result, ParseResult):
        raise AssertionError(f"parse_output returned {type(result).__name__}")
    if not result.ok and result.error not in ERRORS:
        raise AssertionError(f"undeclared error label {result.error!r}")
    if result.ok and result.error is not None:
        raise AssertionError("ok result with an error label")
    for c in result.candidates:
        if not (
            isinstance(c, Candidate)
            and isinstance(c.relation, str)
            and isinstance(c.tail, str)
            and c.tail
        ):
            raise AssertionError(f"bad candidate {c!r}"[:200])


def _aug_parse(text: str) -> None:
    outcome = parse_choice(text, TITLES)
    if isinstance(outcome, Choice):
        if not (
            0 <= outcome.like < len(TITLES)
            and 0 <= outcome.dislike < len(TITLES)
            and outcome.like != outcome.dislike
        ):
            raise AssertionError(f"invalid choice {outcome!r}")
    elif isinstance(outcome, Rejection):
        if outcome.reason not in REASONS or not isinstance(outcome.detail, str):
            raise AssertionError(f"undeclared rejection {outcome.reason!r}")
    else:
        raise AssertionError(f"parse_choice returned {type(outcome).__name__}")


#: parser name -> call that raises only when the parser breaks its contract
PARSERS: dict[str, Callable[[str], None]] = {
    "kg.parse.parse_output": _kg_parse,
    "graphrec.augmentation.parse.parse_choice": _aug_parse,
}


def _describe(kind: str, text: str) -> str:
    return f"{kind} ({len(text)} chars): {text[:60]!r}"


def fuzz_parser(name: str, n: int, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """Fuzz one parser with ``n`` inputs; counts, undeclared exceptions and timings (ms)."""
    call = PARSERS[name]
    call("")  # imports happen here, not in the first timed call
    times: list[float] = []
    undeclared = 0
    examples: list[dict[str, str]] = []
    slowest = (-1.0, "")
    for i, (kind, text) in enumerate(fuzz_inputs(n, seed)):
        start = time.perf_counter()
        try:
            call(text)
        except Exception as exc:  # noqa: BLE001 - counting them is the point
            undeclared += 1
            if len(examples) < 10:
                examples.append(
                    {
                        "input": _describe(kind, text),
                        "exception": f"{type(exc).__name__}: {exc}"[:300],
                        "where": traceback.format_exc(limit=-1).strip().splitlines()[-2][:200],
                    }
                )
        ms = (time.perf_counter() - start) * 1000
        times.append(ms)
        if ms > slowest[0]:
            slowest = (ms, _describe(kind, text))
        if progress and (i + 1) % 10_000 == 0:
            print(f"  {name}: {i + 1}/{n}", file=sys.stderr, flush=True)
    ordered = sorted(times)
    return {
        "inputs": n,
        "undeclared_exceptions": undeclared,
        "examples": examples,
        "slowest_ms": round(slowest[0], 3),
        "slowest_input": slowest[1],
        "p50_ms": round(statistics.median(ordered), 4) if ordered else 0.0,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 4)
        if ordered
        else 0.0,
        "over_50ms": sum(t > 50 for t in times),
        "over_1s": sum(t > 1000 for t in times),
        "total_s": round(sum(times) / 1000, 2),
    }


# -- kill -9 at random points -----------------------------------------------------------
def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run_killed(
    command: list[str],
    rng: random.Random,
    horizon: float,
    max_kills: int,
    check: Callable[[], None] = lambda: None,
) -> tuple[int, float]:
    """Run ``command`` again and again, SIGKILLing it at a uniform random moment in [0, horizon) s, until it
    exits by itself (after ``max_kills`` kills it is left to finish); ``check`` runs after every kill.
    Returns (kills that hit a running process, seconds in all)."""
    import signal
    import subprocess

    kills, start = 0, time.perf_counter()
    while True:
        proc = subprocess.Popen(
            command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if kills < max_kills:
            try:
                proc.wait(timeout=rng.uniform(0.0, horizon))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                assert proc.stderr is not None  # started with stderr=PIPE
                proc.stderr.close()
                kills += 1
                check()
                continue
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"{command[1:4]} exited {proc.returncode}: {err.decode()[-800:]}")
        return kills, time.perf_counter() - start


def _training_outputs(run: Path) -> dict[str, Any]:
    import json

    import numpy as np
    import torch

    results = json.loads((run / "results.json").read_text())
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model_state"]
    with np.load(run / "per_user" / "test.npz") as per_user:
        arrays = {k: per_user[k].tobytes() for k in per_user.files}
    return {
        "valid": results["valid"],
        "test": results["test"],
        "best_epoch": results["best_epoch"],
        "epochs_run": results["epochs_run"],
        "weights": {k: v.numpy().tobytes() for k, v in state.items()},
        "per_user": arrays,
    }


def kill_training(
    runs: int, seed: int, work: Path, epochs: int = 8, max_kills: int = 4
) -> dict[str, Any]:
    """Train a LightGCN on a synthetic split uninterrupted, then ``runs`` times with kill -9 at random moments
    (rerunning the same command after each kill); every final output must be identical to the reference, and
    ``metrics.jsonl`` must hold epochs 1..N once each (nothing lost, nothing doubled)."""
    import json

    data = random_interactions(n_users=400, n_items=600, per_user=25, seed=seed)
    dataset = work / "synthetic"
    dataset.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        coo = getattr(data, split).tocoo()
        rows = "".join(
            f"{data.user_ids[u]}\t{data.item_ids[i]}\n" for u, i in zip(coo.row, coo.col)
        )
        (dataset / f"synthetic.{split}.inter").write_text("user_id:token\titem_id:token\n" + rows)

    def command(name: str) -> list[str]:
        sets = [
            f"data.dataset={dataset}",
            "model.name=lightgcn",
            "model.embedding_dim=32",
            "model.num_layers=2",
            f"train.epochs={epochs}",
            "train.batch_size=512",
            "train.num_threads=1",
            "train.patience=0",
            "train.progress=false",
            "eval.batch_size=128",
        ]
        return [
            sys.executable,
            str(REPO / "train.py"),
            "--out-dir",
            str(work / "runs"),
            "--name",
            name,
            "--quiet",
            *[x for item in sets for x in ("--set", item)],
        ]

    rng = random.Random(seed)
    _, reference_s = _run_killed(command("reference"), rng, 0.0, 0)
    reference = _training_outputs(work / "runs" / "reference")
    kills, identical, problems = 0, 0, []
    for r in range(runs):
        run = work / "runs" / f"killed{r}"
        hit, _ = _run_killed(command(run.name), rng, reference_s, max_kills)
        kills += hit
        epochs_logged = [
            json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()
        ]
        if epochs_logged != list(range(1, epochs + 1)):
            problems.append(f"{run.name}: metrics.jsonl epochs {epochs_logged}")
        got = _training_outputs(run)
        differing = [k for k in reference if got[k] != reference[k]]
        if differing:
            problems.append(f"{run.name}: differs from the uninterrupted run in {differing}")
        else:
            identical += 1
    return {
        "runs": runs,
        "kills": kills,
        "identical_runs": identical,
        "problems": problems,
        "reference_seconds": round(reference_s, 2),
        "epochs": epochs,
    }


def _kill_llm_job(
    responder: Callable,
    command: Callable[[str, Path], list[str]],
    outputs: Callable[[Path], Any],
    journal_path: Callable[[Path], Path],
    paths: tuple[Path, list[Path]],
    expected: int,
    rng: random.Random,
    max_kills: int,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The kill -9 loop shared by the LLM jobs, against the tests' fake chat server answering with ``responder``:
    run ``command(base_url, reference)`` once, then each killed path's command with kills; every key journaled
    exactly once (after every kill and at the end), at most one repeated LLM call per kill, and ``outputs`` equal
    to the reference's.  Adds the counts to ``result`` and returns it."""
    sys.path.insert(0, str(REPO / "tests" / "kg"))
    from chat_server import ChatServer

    def journal(out: Path) -> list[dict]:
        path = journal_path(out)
        return [r for r in read_jsonl(path) if r.get("kind") == "item"] if path.exists() else []

    result.update(kills=0, identical_runs=0, problems=[], llm_calls=0, repeated_calls=0)
    with ChatServer(responder=responder, delay=0.03) as server:
        server.httpd.handle_error = lambda request, address: (
            None
        )  # a killed client's broken pipe is expected
        return _kill_loop(
            server,
            lambda out: command(server.base_url, out),
            outputs,
            journal,
            paths,
            expected,
            rng,
            max_kills,
            result,
        )


def _kill_loop(
    server,
    command: Callable[[Path], list[str]],
    outputs: Callable[[Path], Any],
    journal: Callable[[Path], list[dict]],
    paths: tuple[Path, list[Path]],
    expected: int,
    rng: random.Random,
    max_kills: int,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The loop of :func:`_kill_llm_job` with the server running."""
    from collections import Counter

    reference_path, killed_paths = paths
    _, reference_s = _run_killed(command(reference_path), rng, 0.0, 0)
    reference, calls_per_run = outputs(reference_path), len(server.requests)
    for out in killed_paths:
        before = len(server.requests)

        def check(out: Path = out) -> None:
            counts = Counter(rec["item_id"] for rec in journal(out))
            if any(c != 1 for c in counts.values()):
                result["problems"].append(f"{out.name}: journaled twice {counts.most_common(2)}")

        hit, _ = _run_killed(command(out), rng, reference_s, max_kills, check)
        calls = len(server.requests) - before
        result["kills"] += hit
        result["llm_calls"] += calls
        result["repeated_calls"] += calls - calls_per_run
        if calls - calls_per_run > hit:
            result["problems"].append(
                f"{out.name}: {calls - calls_per_run} repeated calls for {hit} kills"
            )
        counts = Counter(rec["item_id"] for rec in journal(out))
        if len(counts) != expected or set(counts.values()) != {1}:
            result["problems"].append(
                f"{out.name}: journal holds {len(counts)} keys, counts {set(counts.values())}"
            )
        if outputs(out) == reference:
            result["identical_runs"] += 1
        else:
            result["problems"].append(f"{out.name}: outputs differ from the uninterrupted run")
    result["reference_seconds"] = round(reference_s, 2)
    result["calls_per_run"] = calls_per_run
    return result


def kill_kg_build(
    runs: int, seed: int, work: Path, n_items: int = 40, max_kills: int = 4
) -> dict[str, Any]:
    """``kg build`` against the local fake chat server (tests/kg), uninterrupted, then ``runs`` times with kill -9
    at random moments: same triples, every item journaled once, at most one repeated LLM call per kill."""
    import csv

    sys.path.insert(0, str(REPO / "tests" / "kg"))
    from fakes import fake_reply

    items = work / "items.tsv"
    work.mkdir(parents=True, exist_ok=True)
    lines = ["item_id\ttitle\tyear\tgenres\toverview\ttagline"]
    lines += [
        f"{i}\tFilm {i}\t2000\tDrama\tAgent Nora Quill{i} fights for love and revenge in city {i}.\t"
        for i in range(1, n_items + 1)
    ]
    items.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def triples(out: Path) -> list[tuple[str, ...]]:
        with open(out / "triples.tsv", encoding="utf-8") as handle:
            return sorted(tuple(row.values()) for row in csv.DictReader(handle, delimiter="\t"))

    def command(base_url: str, out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "kg",
            "build",
            "--items",
            str(items),
            "--backend",
            "openai",
            "--base-url",
            base_url,
            "--model",
            "fake",
            "--out",
            str(out),
            "--concurrency",
            "1",
            "--no-embeddings",
            "--quiet",
            "--formats",
            "nq.gz",
        ]

    return _kill_llm_job(
        fake_reply,
        command,
        triples,
        lambda out: out / "journal.text.jsonl",
        (work / "reference", [work / f"killed{r}" for r in range(runs)]),
        n_items,
        random.Random(seed),
        max_kills,
        {"runs": runs, "items": n_items},
    )


def kill_augmentation(
    runs: int, seed: int, work: Path, n_users: int = 24, max_kills: int = 4
) -> dict[str, Any]:
    """``graphrec.augmentation generate`` against the local fake chat server, uninterrupted, then ``runs`` times
    with kill -9 at random moments: the same edge file, every user journaled once, at most one repeated LLM
    call per kill (the base run is a 1-epoch MF on ml-latest-small-tmdb, trained once, never killed)."""
    import json

    sys.path.insert(0, str(REPO / "tests" / "kg"))
    sys.path.insert(0, str(REPO / "tests" / "augmentation"))
    from augmentation_helpers import comedy_fan

    sets = [
        "model.name=mf",
        "model.embedding_dim=8",
        "train.epochs=1",
        "train.progress=false",
        "train.num_threads=1",
        "eval.ks=[10]",
        "train.select_metric=recall@10",
    ]
    _run_killed(
        [
            sys.executable,
            str(REPO / "train.py"),
            "--out-dir",
            str(work / "runs"),
            "--name",
            "base",
            "--quiet",
            *[x for item in sets for x in ("--set", item)],
        ],
        random.Random(seed),
        0.0,
        0,
    )

    def edges(out: Path) -> list[str]:
        """The edge records without their wall-clock ``time``, in a fixed order."""
        records = [
            {k: v for k, v in record.items() if k != "time"} for _, record in read_records(out)[1]
        ]
        return sorted(json.dumps(record, sort_keys=True) for record in records)

    def command(base_url: str, out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "graphrec.augmentation",
            "generate",
            "--run",
            str(work / "runs" / "base"),
            "--backend",
            "openai",
            "--base-url",
            base_url,
            "--model",
            "fake",
            "--users",
            str(n_users),
            "--candidates",
            "8",
            "--concurrency",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]

    return _kill_llm_job(
        comedy_fan,
        command,
        edges,
        lambda out: Path(str(out) + ".work") / "journal.jsonl",
        (work / "reference.jsonl", [work / f"killed{r}.jsonl" for r in range(runs)]),
        n_users,
        random.Random(seed),
        max_kills,
        {"runs": runs, "users": n_users},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=100_000, help="inputs per parser (default 100,000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parsers", nargs="*", default=list(PARSERS), choices=list(PARSERS))
    parser.add_argument(
        "--kill-runs",
        type=int,
        default=0,
        help="also kill -9 this many training runs and KG builds at random moments (0 = skip)",
    )
    parser.add_argument("--kill-only", action="store_true", help="skip the parser fuzzing")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "robustness.json"))
    args = parser.parse_args(argv)
    import platform

    report: dict[str, Any] = {
        "n": args.n,
        "seed": args.seed,
        "python": platform.python_version(),
        "command": " ".join(
            ["python benchmarks/robustness.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "parsers": {},
    }
    for name in [] if args.kill_only else args.parsers:
        result = fuzz_parser(name, args.n, args.seed, progress=True)
        report["parsers"][name] = result
        print(
            f"{name}: {result['inputs']} inputs, {result['undeclared_exceptions']} undeclared exceptions, "
            f"p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms, slowest {result['slowest_ms']:.1f} ms "
            f"[{result['slowest_input']}], >50 ms: {result['over_50ms']}, >1 s: {result['over_1s']}"
        )
        for example in result["examples"][:3]:
            print(f"  undeclared: {example['exception']} on {example['input']}")
    failed = any(r["undeclared_exceptions"] for r in report["parsers"].values())
    if args.kill_runs:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="robustness-kills-") as tmp:
            for name, suite in (
                ("training", kill_training),
                ("kg_build", kill_kg_build),
                ("augmentation", kill_augmentation),
            ):
                result = suite(args.kill_runs, args.seed, Path(tmp) / name)
                report.setdefault("kills", {})[name] = result
                print(
                    f"kill -9 {name}: {result['runs']} runs, {result['kills']} kills, "
                    f"{result['identical_runs']}/{result['runs']} identical to the uninterrupted run"
                    + (
                        f", {result['repeated_calls']} repeated LLM calls"
                        if "repeated_calls" in result
                        else ""
                    )
                    + "".join(f"\n  problem: {p}" for p in result["problems"])
                )
                failed = failed or bool(result["problems"])
    if (
        args.kill_only and Path(args.out).exists()
    ):  # keep the fuzzing figures of an earlier full run
        import json

        report = {**json.loads(Path(args.out).read_text()), "kills": report.get("kills", {})}
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
