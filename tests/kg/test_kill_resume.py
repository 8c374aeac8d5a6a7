"""Kill a real build (SIGKILL, several times, at different moments) and resume it.

The build runs as a separate ``python -m kg build`` process against the local
chat-completions server.  After every kill the journal must hold each finished item
exactly once; the resumed build must finish every item, with the same triples as an
uninterrupted build.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import write_items

from kg.io import read_jsonl

REPO = Path(__file__).resolve().parents[2]


def _command(items: Path, out: Path, base_url: str) -> list[str]:
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
        "2",
        "--no-embeddings",
        "--quiet",
        "--formats",
        "nq.gz",
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _journal_items(out: Path) -> list[dict]:
    path = out / "journal.text.jsonl"
    return [r for r in read_jsonl(path) if r.get("kind") == "item"] if path.exists() else []


def _triples(out: Path) -> list[tuple[str, ...]]:
    with open(out / "triples.tsv", encoding="utf-8") as handle:
        return sorted(tuple(row.values()) for row in csv.DictReader(handle, delimiter="\t"))


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_killed_build_resumes_without_loss_or_duplicates(tmp_path, chat_server):
    texts = {
        str(i): (
            f"Film {i}",
            "2000",
            f"Agent Nora Quill{i} fights for love and revenge in city {i}.",
        )
        for i in range(1, 41)
    }
    items = write_items(tmp_path / "items.tsv", texts)
    chat_server.delay = 0.06  # ~40 items take a few seconds: room to kill mid-build
    out = tmp_path / "killed"
    kills = 0
    for target in (3, 12, 25):
        proc = subprocess.Popen(
            _command(items, out, chat_server.base_url),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and proc.poll() is None
            and len(_journal_items(out)) < target
        ):
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        proc.stderr.close()
        counts = Counter(r["item_id"] for r in _journal_items(out))
        assert all(c == 1 for c in counts.values()), (
            f"an item was journaled twice: {counts.most_common(3)}"
        )
    assert kills >= 2
    assert len(_journal_items(out)) < 40  # it really was interrupted
    done = subprocess.run(
        _command(items, out, chat_server.base_url),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    counts = Counter(r["item_id"] for r in _journal_items(out))
    assert sorted(counts) == sorted(texts) and set(counts.values()) == {1}
    summary = json.loads(done.stdout)
    assert summary["items_already_done"] + summary["items_done"] == 40

    reference = tmp_path / "reference"
    ref = subprocess.run(
        _command(items, reference, chat_server.base_url),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ref.returncode == 0, ref.stderr
    assert _triples(out) == _triples(reference)


def test_server_down_exit_code_and_message(tmp_path, chat_server):
    items = write_items(tmp_path / "items.tsv")
    chat_server.down = True
    cmd = _command(items, tmp_path / "run", chat_server.base_url) + ["--max-retries", "1"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert (
        "backend unavailable" in proc.stderr and "rerun the same command to resume" in proc.stderr
    )
