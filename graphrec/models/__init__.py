"""Recommender models and their registry.

``MODELS`` maps a config ``model.name`` to its class; each class names its
config dataclass in ``config_class``.  Register a new model with
:func:`register_model` and it becomes available to configs, the CLI and the
contract test suite.

Other packages add models through the setuptools entry-point group
``graphrec.models`` (``name = "package.module:ModelClass"``); they are loaded on
first use of the registry (:func:`load_plugins`), so graphrec never imports them
by name.

Building a model is two steps (:func:`build_model` does both): :func:`prepare_inputs`
does the I/O a model needs (``Recommender.prepare``: read the knowledge graph, encode
texts), then the pure constructor takes the prepared object.  Pass ``prepared=`` or a
shared :class:`InputCache` to build several models on inputs prepared once.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

import scipy.sparse as sp

from graphrec.data.dataset import InteractionData
from graphrec.models.base import (
    ClosedFormRecommender,
    InputCache,
    LossOutput,
    Recommender,
    Scorer,
)
from graphrec.models.ease import EASE, EASEConfig
from graphrec.models.itemknn import ItemKNN, ItemKNNConfig
from graphrec.models.kg_lightgcn import KGLightGCN, KGLightGCNConfig
from graphrec.models.kgat import KGAT, KGATConfig
from graphrec.models.lightgcn import LightGCN, LightGCNConfig
from graphrec.models.mf import MF, MFConfig
from graphrec.models.popularity import Popularity, PopularityConfig
from graphrec.models.sgl import SGL, SGLConfig
from graphrec.models.simgcl import SimGCL, SimGCLConfig, XSimGCL, XSimGCLConfig

MODELS: dict[str, type[Recommender]] = {}

#: entry-point group of models provided by other packages
PLUGIN_GROUP = "graphrec.models"
_plugins_loaded = False
log = logging.getLogger(__name__)


def register_model(cls: type[Recommender]) -> type[Recommender]:
    """Register a :class:`Recommender` subclass under ``cls.name`` (usable as a decorator)."""
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"a different model is already registered as {cls.name!r}")
    MODELS[cls.name] = cls
    return cls


def load_plugins() -> None:
    """Register the models of the ``graphrec.models`` entry-point group (once per process).

    A plugin that fails to import, is not a :class:`Recommender` or whose entry-point
    name differs from its class's ``name`` is skipped with a warning naming it.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # set first: a plugin's import may use the registry again
    for entry in entry_points(group=PLUGIN_GROUP):
        if entry.name in MODELS:
            continue
        try:
            cls = entry.load()
        except Exception as err:  # a broken plugin must not break the built-in models
            log.warning(
                "model plugin %s = %s could not be loaded: %s", entry.name, entry.value, err
            )
            continue
        if (
            not (isinstance(cls, type) and issubclass(cls, Recommender))
            or getattr(cls, "name", None) != entry.name
        ):
            log.warning(
                "model plugin %s = %s is not a Recommender named %r; skipped",
                entry.name,
                entry.value,
                entry.name,
            )
            continue
        register_model(cls)


def available_models() -> list[str]:
    load_plugins()
    return sorted(MODELS)


def model_class(name: str) -> type[Recommender]:
    """The registered class of model ``name`` (loading the plugins when it is not built in)."""
    if name not in MODELS:
        load_plugins()
    return MODELS[name]


def model_config_class(name: str) -> type:
    return model_class(name).config_class


def prepare_inputs(
    config: Any,
    train: sp.csr_matrix,
    data: InteractionData | None = None,
    cache: InputCache | None = None,
) -> object | None:
    """The prepared inputs of the model ``config`` names (``Recommender.prepare``; ``None`` if it has none).

    With a ``cache``, inputs already prepared there for the same settings and data are reused.
    """
    return (cache if cache is not None else InputCache()).inputs(
        model_class(config.name), config, train, data
    )


def build_model(
    config: Any,
    n_users: int,
    n_items: int,
    train: sp.csr_matrix,
    data: InteractionData | None = None,
    *,
    prepared: object | None = None,
    cache: InputCache | None = None,
) -> Recommender:
    """Instantiate the model named by ``config.name``: prepare its inputs, then construct it.

    Args:
        data: the :class:`~graphrec.data.dataset.InteractionData` being trained on; models
            that read something for it (the knowledge-aware models map the KG's raw item
            ids, the text models encode item texts) use it in their ``prepare`` step.
        prepared: ready inputs (what ``prepare_inputs`` returned for this config and data);
            nothing is read or encoded then.
        cache: an :class:`InputCache` shared by several builds, so that equal inputs are
            prepared once.
    """
    cls = model_class(config.name)
    if prepared is None:
        prepared = prepare_inputs(config, train, data, cache)
    return cls.from_inputs(n_users, n_items, config, train, prepared)


register_model(MF)
register_model(LightGCN)
register_model(SGL)
register_model(SimGCL)
register_model(XSimGCL)
register_model(KGLightGCN)
register_model(KGAT)
register_model(EASE)
register_model(ItemKNN)
register_model(Popularity)

__all__ = [
    "ClosedFormRecommender",
    "EASE",
    "EASEConfig",
    "InputCache",
    "ItemKNN",
    "ItemKNNConfig",
    "KGAT",
    "KGATConfig",
    "KGLightGCN",
    "KGLightGCNConfig",
    "LightGCN",
    "LightGCNConfig",
    "LossOutput",
    "MF",
    "MFConfig",
    "MODELS",
    "Popularity",
    "PopularityConfig",
    "Recommender",
    "SGL",
    "SGLConfig",
    "SimGCL",
    "SimGCLConfig",
    "XSimGCL",
    "XSimGCLConfig",
    "Scorer",
    "available_models",
    "build_model",
    "load_plugins",
    "model_class",
    "model_config_class",
    "prepare_inputs",
    "register_model",
]
