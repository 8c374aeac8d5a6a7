"""Structured JSONL event logs, progress bars and optional TensorBoard logging for long jobs.

Every long job of this package (experiment, search) appends one JSON object per
event to a ``*.jsonl`` file (``{"time": ..., "event": "run_finished", ...}``),
shows a tqdm progress bar only when stderr is a terminal (``tqdm(disable=None)``)
and not in quiet mode, and can mirror each training epoch to TensorBoard.
Training itself already writes ``RUN/metrics.jsonl`` and shows its own bars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphrec.io import append_jsonl, read_jsonl

__all__ = ["EventLog", "progress_bar", "tensorboard_callback", "tensorboard_available"]

log = logging.getLogger(__name__)


class EventLog:
    """Append-only JSONL log of job events (each line fsynced; a torn last line is skipped on read)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, event: str, **fields: Any) -> dict:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": event, **fields}
        append_jsonl(self.path, record)
        log.debug("%s %s", event, fields)
        return record

    def read(self) -> list[dict]:
        return read_jsonl(self.path) if self.path.exists() else []


def progress_bar(total: int, desc: str, quiet: bool = False, initial: int = 0, unit: str = "it"):
    """A tqdm bar shown on a terminal only (``disable=None``), never with ``quiet``."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=True if quiet else None,
        leave=True,
    )


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_callback(log_dir: str | Path, writer: Any = None) -> Callable[[dict], None] | None:
    """A trainer callback writing each epoch's loss parts and validation metrics as scalars.

    Returns ``None`` (with a warning) when tensorboard is not installed, so callers
    can write ``callbacks=[cb for cb in [tensorboard_callback(d)] if cb]``.
    ``writer`` may be any object with ``add_scalar(tag, value, step)`` and ``flush()``
    (tests pass a fake).
    """
    if writer is None:
        if not tensorboard_available():
            log.warning(
                "tensorboard is not installed (pip install tensorboard): TensorBoard logging is off"
            )
            return None
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(log_dir))

    def callback(record: dict) -> None:
        step = int(record["epoch"])
        for key, value in record.items():
            if key in ("epoch", "valid"):
                continue
            if isinstance(value, (int, float)):
                group = "time" if key.endswith("_seconds") else "train"
                writer.add_scalar(f"{group}/{key}", float(value), step)
        for key, value in (record.get("valid") or {}).items():
            writer.add_scalar(f"valid/{key}", float(value), step)
        writer.flush()

    callback.writer = writer  # type: ignore[attr-defined]
    return callback
