"""Exceptions raised by graphrec.

Every error a user can cause (bad files, bad configs, diverging training) is a
subclass of :class:`GraphrecError` and names where the problem is: the file and
line, the config key, or the epoch.
"""

from __future__ import annotations

from os import PathLike

from kg.errors import capped_message


class GraphrecError(Exception):
    """Base class of all errors graphrec raises on purpose."""

    def __init__(self, *args: object) -> None:
        super().__init__(*capped_message(args))


class DataFormatError(GraphrecError, ValueError):
    """Malformed or missing input data.

    The message always starts with ``path:line:`` (or ``path:`` when the problem is
    not tied to a line) and names the offending field when there is one.
    """

    def __init__(
        self,
        message: str,
        path: str | PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        what = f"field '{field}': " if field is not None else ""
        super().__init__(f"{where}{what}{message}")


class ConfigError(GraphrecError, ValueError):
    """Invalid configuration: unknown key, wrong type or bad value."""


class TrainingError(GraphrecError, RuntimeError):
    """Training cannot continue (e.g. the loss became NaN)."""


class CheckpointError(GraphrecError, RuntimeError):
    """A checkpoint is missing, corrupt or does not match the model."""


class LockError(GraphrecError, RuntimeError):
    """Another live process is writing the same folder (a run directory, an output folder)."""
