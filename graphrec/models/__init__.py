"""Recommender models and their registry.

``MODELS`` maps a config ``model.name`` to its class; each class names its
config dataclass in ``config_class``.  Register a new model with
:func:`register_model` and it becomes available to configs, the CLI and the
contract test suite.
"""
from __future__ import annotations

from graphrec.models.base import LossOutput, Recommender, Scorer
from graphrec.models.kg_lightgcn import KGLightGCN, KGLightGCNConfig
from graphrec.models.kgat import KGAT, KGATConfig
from graphrec.models.lightgcn import LightGCN, LightGCNConfig
from graphrec.models.mf import MF, MFConfig
from graphrec.models.sgl import SGL, SGLConfig
from graphrec.models.simgcl import SimGCL, SimGCLConfig, XSimGCL, XSimGCLConfig

MODELS: dict[str, type[Recommender]] = {}


def register_model(cls: type[Recommender]) -> type[Recommender]:
    """Register a :class:`Recommender` subclass under ``cls.name`` (usable as a decorator)."""
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise ValueError(f"a different model is already registered as {cls.name!r}")
    MODELS[cls.name] = cls
    return cls


def available_models() -> list[str]:
    return sorted(MODELS)


def model_config_class(name: str) -> type:
    return MODELS[name].config_class


def build_model(config, n_users: int, n_items: int, train, data=None) -> Recommender:
    """Instantiate the model named by ``config.name``.

    ``data`` (the :class:`~graphrec.data.dataset.InteractionData` being trained on) is
    passed to models whose class sets ``needs_data = True`` — the knowledge-aware
    models, which map the KG's raw item ids onto internal ids; the others ignore it.
    """
    cls = MODELS[config.name]
    if getattr(cls, "needs_data", False):
        return cls(n_users, n_items, config, train, data=data)
    return cls(n_users, n_items, config, train)


register_model(MF)
register_model(LightGCN)
register_model(SGL)
register_model(SimGCL)
register_model(XSimGCL)
register_model(KGLightGCN)
register_model(KGAT)

__all__ = [
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
    "model_config_class",
    "register_model",
]
