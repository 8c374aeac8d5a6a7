"""Two processes under torchrun (gloo) reach the metrics of one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from graphrec.training.distributed import DistributedContext

REPO = Path(__file__).resolve().parents[2]
ARGS = [
    "--config",
    str(REPO / "configs" / "ml-latest-small-tmdb" / "lightgcn.yaml"),
    "--quiet",
    "--set",
    "model.embedding_dim=16",
    "--set",
    "train.epochs=3",
    "--set",
    "train.eval_every=1",
    "--set",
    "train.batch_size=1024",
    "--set",
    "train.learning_rate=0.005",
    "--set",
    "train.num_threads=1",
]


@pytest.mark.parametrize("size, world", [(10, 2), (11, 2), (1, 2), (7, 3)])
def test_shards_cover_the_batch_exactly_once(size, world):
    covered = []
    for rank in range(world):
        start, stop = DistributedContext(rank, world).shard(size)
        covered += list(range(start, stop))
    assert covered == list(range(size))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            *ARGS,
            "--out-dir",
            str(tmp_path),
            "--name",
            "one",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert single.returncode == 0, single.stderr
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
    ]
    double = subprocess.run(
        [*launcher, str(REPO / "train.py"), *ARGS, "--out-dir", str(tmp_path), "--name", "two"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    for split in ("valid", "test"):
        for metric in ("recall@20", "ndcg@20", "recall@10"):
            assert two[split][metric] == pytest.approx(one[split][metric], abs=2e-3), (
                split,
                metric,
            )
    logged = [
        json.loads(line)["epoch"]
        for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    ]
    assert logged == [1, 2, 3]  # written once, by rank 0
