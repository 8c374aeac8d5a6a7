"""Exceptions raised by graphrec.

Every error a user can cause (bad files, bad configs, diverging training) is a
subclass of :class:`GraphrecError` and names where the problem is: the file and
line, the config key, or the epoch.
"""
from __future__ import annotations

from os import PathLike

#: longest error message; a longer one is cut in the middle
MAX_MESSAGE = 1000


class GraphrecError(Exception):
    """Base class of all errors graphrec raises on purpose."""

    def __init__(self, *args: object) -> None:
        # an error quotes what it is about, never a whole 10^6-character value
        if args and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE:
            text = args[0]
            args = (f"{text[:MAX_MESSAGE - 200]} ...[{len(text) - MAX_MESSAGE + 50} characters cut]... "
                    f"{text[-150:]}", *args[1:])
        super().__init__(*args)


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
