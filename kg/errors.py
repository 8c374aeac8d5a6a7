"""Exceptions raised by kg.

Every error a user can cause names where the problem is: the file and line, the
config field, or the backend endpoint.  This is the one error hierarchy of the three
packages: kg is the lowest layer, and ``graphrec.errors`` derives from it
(``GraphrecError`` is a :class:`KGError`; graphrec's ``DataFormatError`` and
``ConfigError`` subclass these), so ``except kg.errors.DataFormatError`` catches a
graphrec data error too.
"""

from __future__ import annotations

from os import PathLike

#: longest error message; a longer one is cut in the middle
MAX_MESSAGE = 1000


def capped_message(args: tuple[object, ...]) -> tuple[object, ...]:
    """Exception ``args`` whose message (the first, if a string) is cut in the middle to :data:`MAX_MESSAGE`
    characters: an error quotes what it is about, never a whole 10^6-character value."""
    if args and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE:
        text = args[0]
        args = (
            f"{text[: MAX_MESSAGE - 200]} ...[{len(text) - MAX_MESSAGE + 50} characters cut]... "
            f"{text[-150:]}",
            *args[1:],
        )
    return args


class KGError(Exception):
    """Base class of all errors kg raises on purpose."""

    def __init__(self, *args: object) -> None:
        super().__init__(*capped_message(args))


class DataFormatError(KGError, ValueError):
    """Malformed or missing input data; the message starts with ``path:line:``."""

    def __init__(
        self,
        message: str,
        path: str | PathLike[str] | None = None,
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


class SchemaError(DataFormatError):
    """An ontology (schema) file is invalid."""


class ConfigError(KGError, ValueError):
    """Invalid configuration: unknown key, wrong type or bad value."""


class BackendError(KGError, RuntimeError):
    """An LLM call failed in a way retrying will not fix (e.g. HTTP 400, bad model)."""


class BackendUnavailable(BackendError):
    """The backend stayed unreachable (or rate limited) after all retries.

    The build stops cleanly on this error; the journal keeps finished items and the
    same command resumes the build.
    """


class JournalError(KGError, RuntimeError):
    """An output folder holds a journal from an incompatible build."""
