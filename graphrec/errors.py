"""Exceptions raised by graphrec.

Every error a user can cause (bad files, bad configs, diverging training) is a
subclass of :class:`GraphrecError` and names where the problem is: the file and
line, the config key, or the epoch.  The hierarchy is kg's (the lowest layer):
``GraphrecError`` is a :class:`kg.errors.KGError`, graphrec's ``DataFormatError`` and
``ConfigError`` are also kg's, so one ``except`` serves all three packages.
"""

from __future__ import annotations

from kg.errors import ConfigError as KGConfigError
from kg.errors import DataFormatError as KGDataFormatError
from kg.errors import KGError


class GraphrecError(KGError):
    """Base class of all errors graphrec raises on purpose (a :class:`kg.errors.KGError`:
    one hierarchy for the three packages; long messages are cut by the base)."""


class DataFormatError(GraphrecError, KGDataFormatError):
    """Malformed or missing input data.

    The message always starts with ``path:line:`` (or ``path:`` when the problem is
    not tied to a line) and names the offending field when there is one (the
    constructor is :class:`kg.errors.DataFormatError`'s, so ``except
    kg.errors.DataFormatError`` catches graphrec's data errors too).
    """


class ConfigError(GraphrecError, KGConfigError):
    """Invalid configuration: unknown key, wrong type or bad value."""


class TrainingError(GraphrecError, RuntimeError):
    """Training cannot continue (e.g. the loss became NaN)."""


class CheckpointError(GraphrecError, RuntimeError):
    """A checkpoint is missing, corrupt or does not match the model."""


class LockError(GraphrecError, RuntimeError):
    """Another live process is writing the same folder (a run directory, an output folder)."""
