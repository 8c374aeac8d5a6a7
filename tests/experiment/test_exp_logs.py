"""Structured JSONL event logs and the optional TensorBoard callback."""

from __future__ import annotations

import pytest

from graphrec.experiment.logs import EventLog, tensorboard_available, tensorboard_callback


class FakeWriter:
    def __init__(self):
        self.scalars, self.flushed = [], 0

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        self.flushed += 1


def test_tensorboard_callback_writes_loss_parts_timings_and_validation_metrics():
    writer = FakeWriter()
    callback = tensorboard_callback("unused", writer=writer)
    callback(
        {"epoch": 3, "loss": 0.5, "bpr": 0.4, "train_seconds": 1.2, "valid": {"recall@20": 0.3}}
    )
    callback({"epoch": 4, "loss": 0.45, "bpr": 0.35, "train_seconds": 1.1})
    assert ("train/loss", 0.5, 3) in writer.scalars and ("train/bpr", 0.35, 4) in writer.scalars
    assert ("time/train_seconds", 1.2, 3) in writer.scalars
    assert ("valid/recall@20", 0.3, 3) in writer.scalars
    assert writer.flushed == 2


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard is not installed")
def test_tensorboard_event_files_are_written(tmp_path):
    callback = tensorboard_callback(tmp_path / "tb")
    callback({"epoch": 1, "loss": 0.7, "valid": {"ndcg@20": 0.1}})
    callback.writer.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_event_log_appends_json_lines(tmp_path):
    log = EventLog(tmp_path / "x" / "events.jsonl")
    log.write("run_started", variant="mf", seed=1)
    log.write("run_finished", variant="mf", seed=1, metrics={"recall@20": 0.2})
    events = log.read()
    assert [e["event"] for e in events] == ["run_started", "run_finished"]
    assert events[1]["metrics"] == {"recall@20": 0.2} and "time" in events[0]
