"""kg: build knowledge graphs from item catalogue text with LLMs.

Imports neither ``graphrec`` nor ``alignment``; it exports plain arrays, RecBole
atomic files and RDF.  Entry points:

* ``python -m kg build|stats|query|evaluate|import-recbole`` (see :mod:`kg.cli`);
* :func:`kg.build.run_build` (extract + assemble), :func:`kg.pipeline.extract_items`;
* :func:`kg.evaluate.evaluate_run`; :mod:`kg.rdf`, :mod:`kg.interop` for interop.

Heavy dependencies (torch, transformers, sentence-transformers) load only when the
local backends or embedding-based entity resolution are used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from kg.errors import (  # noqa: F401
    BackendError,
    BackendUnavailable,
    ConfigError,
    DataFormatError,
    JournalError,
    KGError,
    SchemaError,
)

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "DataFormatError",
    "JournalError",
    "KGError",
    "SchemaError",
    "__version__",
]
