"""One augmentation run per work folder: a second one is refused, naming the first one's pid, with no LLM call."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from augmentation_helpers import comedy_fan
from fakes import FakeBackend

from graphrec.augmentation.generate import GenerationSettings, generate_augmentation
from kg.lock import FolderLocked

REPO = Path(__file__).resolve().parents[2]


def test_second_run_on_one_work_folder_is_refused(text_data, scorer, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys, time
            from kg.lock import folder_lock
            with folder_lock(sys.argv[1], "augmentation work folder"):
                print("held", flush=True); time.sleep(60)
        """),
            str(tmp_path / "edges.jsonl.work"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    backend = FakeBackend(replies=comedy_fan)
    settings = GenerationSettings(users=4, candidates=6, history=4, description_chars=40, seed=1)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLocked, match=f"in use by pid {holder.pid} "):
            generate_augmentation(
                text_data, scorer, backend, tmp_path / "edges.jsonl", settings, progress=False
            )
        assert backend.calls == []
    finally:
        holder.kill()
        holder.wait()
    report = generate_augmentation(
        text_data, scorer, backend, tmp_path / "edges.jsonl", settings, progress=False
    )
    assert report.edges == 4
