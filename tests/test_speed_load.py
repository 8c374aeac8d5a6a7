"""benchmarks/speed.py --load: competing busy processes that run during a row and never outlive the benchmark."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location(
        "speed_benchmark", REPO / "benchmarks" / "speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_competing_load_runs_during_the_block_and_stops_after(speed):
    with speed.CompetingLoad(2, seconds=60) as load:
        pids = [p.pid for p in load.procs]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        assert all(p.poll() is None for p in load.procs)  # busy, not exited
    assert not any(alive(pid) for pid in pids)


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_busy_process_is_bounded_by_time_and_by_its_parent(speed):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", speed.BUSY, str(os.getpid()), "0.5"], timeout=30)
    assert proc.returncode == 0 and time.monotonic() - started < 10
    # a parent that is gone: the loop sees another parent pid and exits at once
    proc = subprocess.run([sys.executable, "-c", speed.BUSY, "1", "600"], timeout=30)
    assert proc.returncode == 0


def test_thread_settings_are_validated(speed):
    assert speed.thread_setting("default") == "default" and speed.thread_setting("0") == "0"
    with pytest.raises(Exception, match="thread count"):
        speed.thread_setting("many")


def test_text_native_rows_time_their_own_dataset_configs(speed):
    rows = {r["key"]: r for r in speed.rows(["lightgcn", "text-ease", "alpharec"])}
    for model in ("text-ease", "alpharec"):
        row = rows[f"graphrec-{model}"]
        assert row["backbone"] and speed.TEXT_DATASET in row["label"]
        assert (REPO / "configs" / speed.TEXT_DATASET / f"{model}.yaml").exists()
