"""A refused resume writes nothing, weights are only evaluated under their own settings, checkpoints are
verified by their sha256, wrong shapes and corrupt per-user files are clear errors, one writer per run."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from training_helpers import write_atomic_dataset

from graphrec.cli import evaluate as evaluate_cli
from graphrec.cli import train as train_cli
from graphrec.errors import CheckpointError
from graphrec.training import load_checkpoint
from graphrec.training.checkpoint import DIGEST_KEY, save_checkpoint
from kg.lock import folder_lock

REPO = Path(__file__).resolve().parents[2]


def args_for(dataset, out, name="run", model="mf", extra=()):
    args = [
        "--out-dir",
        str(out),
        "--name",
        name,
        "--quiet",
        "--set",
        f"data.dataset={dataset}",
        "--set",
        f"model.name={model}",
        "--set",
        "model.embedding_dim=8",
        "--set",
        "train.epochs=2",
        "--set",
        "train.num_threads=1",
        "--set",
        "train.batch_size=64",
        "--set",
        "eval.batch_size=16",
    ]
    for item in extra:
        args += ["--set", item]
    return args


@pytest.fixture
def run(small_data, tmp_path, capsys):
    dataset = write_atomic_dataset(small_data, tmp_path / "tiny")
    assert train_cli.main(args_for(dataset, tmp_path / "runs")) == 0
    capsys.readouterr()
    return dataset, tmp_path / "runs" / "run"


def test_refused_resume_leaves_the_run_untouched(run, capsys):
    dataset, run_dir = run
    before = {
        p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"
    }
    assert train_cli.main(args_for(dataset, run_dir.parent, extra=["model.embedding_dim=16"])) == 2
    err = capsys.readouterr().err
    assert "different settings" in err and "Traceback" not in err
    after = {
        p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"
    }
    assert after.pop("train.log").startswith(
        before.pop("train.log")
    )  # the refusal is logged, appended
    assert after == before  # config.yaml still describes the weights beside it
    assert evaluate_cli.main([str(run_dir), "--quiet"]) == 0


@pytest.mark.parametrize(
    "edit", [("embedding_dim: 8", "embedding_dim: 16"), ("name: mf", "name: lightgcn")]
)
def test_evaluate_refuses_weights_under_another_config(run, capsys, edit):
    _, run_dir = run
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace(*edit))
    assert evaluate_cli.main([str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "differ from those" in err and "Traceback" not in err


def test_lightgcn_layers_changed_is_refused(small_data, tmp_path, capsys):
    # same shapes, different model: before the check, evaluate reported other metrics silently
    dataset = write_atomic_dataset(small_data, tmp_path / "tiny")
    assert (
        train_cli.main(
            args_for(dataset, tmp_path / "runs", model="lightgcn", extra=["model.num_layers=2"])
        )
        == 0
    )
    config = tmp_path / "runs" / "run" / "config.yaml"
    config.write_text(config.read_text().replace("num_layers: 2", "num_layers: 3"))
    assert evaluate_cli.main([str(tmp_path / "runs" / "run"), "--quiet"]) == 2
    assert "differ from those" in capsys.readouterr().err


def _flip_a_weight_bit(path: Path) -> None:
    state = load_checkpoint(path)["model_state"]
    tensor = next(t for t in state.values() if t.numel() >= 16)
    raw = tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    blob = bytearray(path.read_bytes())
    at = blob.find(raw)
    assert at >= 0  # torch stores tensor data uncompressed
    blob[at + len(raw) // 2] ^= 0x10
    path.write_bytes(bytes(blob))


def test_flipped_bit_in_best_pt_is_refused(run, capsys):
    _, run_dir = run
    best = run_dir / "checkpoints" / "best.pt"
    _flip_a_weight_bit(best)
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(best)
    assert evaluate_cli.main([str(run_dir), "--quiet"]) == 2
    assert "does not match its sha256" in capsys.readouterr().err


def test_checkpoint_without_digest_still_loads(tmp_path, caplog):
    path = tmp_path / "old.pt"
    save_checkpoint(path, {"model_state": {"w": torch.ones(3)}})
    payload = torch.load(path, weights_only=True)
    del payload[DIGEST_KEY]
    torch.save(payload, path)
    with caplog.at_level("INFO"):
        assert torch.equal(load_checkpoint(path)["model_state"]["w"], torch.ones(3))
    assert "loaded unverified" in caplog.text


def test_wrong_shapes_or_keys_are_a_checkpoint_error(run, capsys):
    _, run_dir = run
    best = run_dir / "checkpoints" / "best.pt"
    payload = load_checkpoint(best)
    for state in (
        {k: v[:, :4] for k, v in payload["model_state"].items()},
        {"bogus": torch.zeros(2)},
    ):
        save_checkpoint(
            best,
            {
                **{k: v for k, v in payload.items() if k not in (DIGEST_KEY, "signature")},
                "model_state": state,
            },
        )
        assert evaluate_cli.main([str(run_dir), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "do not fit this model" in err and "Traceback" not in err


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_per_user_npz_to_compare(run, capsys, damage):
    _, run_dir = run
    npz = run_dir / "per_user" / "test.npz"
    data = npz.read_bytes()
    npz.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}[damage]
    )
    assert evaluate_cli.main(["compare", str(run_dir), str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {npz}: ") and "Traceback" not in err


def test_two_trainings_on_one_run_dir(small_data, tmp_path, capsys):
    dataset = write_atomic_dataset(small_data, tmp_path / "tiny")
    command = [
        sys.executable,
        str(REPO / "train.py"),
        *args_for(dataset, tmp_path / "runs", extra=["train.epochs=100000", "train.patience=0"]),
    ]
    first = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        metrics = tmp_path / "runs" / "run" / "metrics.jsonl"
        deadline = time.time() + 120
        while not metrics.exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None
        before = metrics.read_text()
        assert train_cli.main(args_for(dataset, tmp_path / "runs", extra=["train.epochs=3"])) == 2
        err = capsys.readouterr().err
        assert f"in use by pid {first.pid} " in err and "Traceback" not in err
        assert (tmp_path / "runs" / "run" / "config.yaml").read_text().count("epochs: 100000") == 1
        assert metrics.read_text().startswith(before)
    finally:
        first.kill()
        first.wait()
    # the dead holder's lock is gone: the same command resumes
    assert train_cli.main(args_for(dataset, tmp_path / "runs", extra=["train.patience=0"])) == 0
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert epochs == sorted(set(epochs))


def test_runs_from_before_best_pt_carried_settings_are_checked_through_last_pt(run, capsys):
    _, run_dir = run
    best = run_dir / "checkpoints" / "best.pt"
    payload = load_checkpoint(best)
    save_checkpoint(best, {k: v for k, v in payload.items() if k not in (DIGEST_KEY, "signature")})
    config = run_dir / "config.yaml"
    config.write_text(
        config.read_text().replace("init: xavier_uniform", "init: normal")
    )  # same shapes
    assert evaluate_cli.main([str(run_dir), "--quiet"]) == 2
    assert "differ from those" in capsys.readouterr().err


def test_a_training_refused_by_the_lock_writes_nothing_into_the_holders_log(run, capsys):
    """The log file is opened under the run directory's lock: a second training of a held run
    exits 2 and leaves the holder's train.log (and every other file) as it was."""
    dataset, run_dir = run
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with folder_lock(run_dir, "training run"):
        assert train_cli.main(args_for(dataset, run_dir.parent)) == 2
    err = capsys.readouterr().err
    assert "training run" in err and "Traceback" not in err
    after = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    after.pop(".lock", None), before.pop(".lock", None)
    assert after == before
