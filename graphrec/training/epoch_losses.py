"""The batches' losses of one epoch, read back from the device once, at the epoch's end."""

from __future__ import annotations

import math

import torch

from graphrec.errors import TrainingError

Value = float | torch.Tensor


class EpochLosses:
    """Collects each batch's loss and named parts; :meth:`read` averages them and checks them.

    Reading a GPU scalar (``float(loss)``) waits for every kernel queued before it, so a
    per-batch read would stall the device once per batch.  Tensors are kept as detached
    0-d tensors and read together; floats (a distributed run's reduced loss) are kept as
    they are.  A non-finite loss is reported with the first batch that had it and its parts.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.losses: list[Value] = []
        self.parts: list[dict[str, Value]] = []

    def add(self, loss: Value, parts: dict[str, Value]) -> None:
        """Record one batch (tensors detached here: a part that still carries its graph would
        otherwise keep every batch's graph alive until the epoch ends)."""
        self.losses.append(_detached(loss))
        self.parts.append({name: _detached(value) for name, value in parts.items()})

    def read(self) -> dict[str, float]:
        """``{"loss": mean, part: mean, ...}`` over the batches.

        Raises:
            TrainingError: a batch's loss is not finite (named by epoch and batch index).
        """
        keys = [k for parts in self.parts for k in parts]
        names = list(dict.fromkeys(keys))
        rows = [
            [loss, *(parts.get(n, 0.0) for n in names)]
            for loss, parts in zip(self.losses, self.parts)
        ]
        table = _as_floats(rows)
        for index, row in enumerate(table):
            if not math.isfinite(row[0]):
                parts = {n: v for n, v in zip(names, row[1:]) if n in self.parts[index]}
                raise TrainingError(
                    f"epoch {self.epoch}, batch {index}: loss is {row[0]} (parts: {parts}); "
                    "lower train.learning_rate or check the data"
                )
        count = max(1, len(table))
        record = {"loss": sum(row[0] for row in table) / count}
        for column, name in enumerate(names, start=1):
            record[name] = sum(row[column] for row in table) / count
        return record


def _detached(value: Value) -> Value:
    return value.detach() if isinstance(value, torch.Tensor) else float(value)


def _as_floats(rows: list[list[Value]]) -> list[list[float]]:
    """The rows' values as floats, the tensors among them copied back in one transfer."""
    tensors = [v for row in rows for v in row if isinstance(v, torch.Tensor)]
    if not tensors:
        return [[float(v) for v in row] for row in rows]
    device = tensors[0].device
    read = iter(
        torch.stack(
            [t.reshape(()).to(device=device, dtype=torch.float64) for t in tensors]
        ).tolist()
    )
    return [[next(read) if isinstance(v, torch.Tensor) else float(v) for v in row] for row in rows]
