"""Checkpoints are atomic and loaded with weights_only=True."""

import os

import pytest
import torch

from graphrec.errors import CheckpointError
from graphrec.io import atomic_open
from graphrec.training import load_checkpoint, save_checkpoint


class Payload:
    def __reduce__(self):  # would run code on unpickling
        return (os.system, ("echo pwned",))


def test_round_trip(tmp_path):
    save_checkpoint(
        tmp_path / "c.pt", {"w": torch.arange(3.0), "history": [{"epoch": 1, "loss": 0.5}]}
    )
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["w"], torch.arange(3.0)) and loaded["history"][0]["loss"] == 0.5


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match=f"{path}: cannot load checkpoint"):
        load_checkpoint(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.randn(1000)})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=f"{path}: cannot load checkpoint"):
        load_checkpoint(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a graphrec checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_crash_during_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.zeros(2)})
    with pytest.raises(RuntimeError):
        with atomic_open(path, "wb") as handle:
            handle.write(b"half a checkpoint")
            raise RuntimeError("crash while writing")
    assert torch.equal(load_checkpoint(path)["w"], torch.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp file left behind
