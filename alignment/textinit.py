r"""Text-initialised backbones (LLMInit-style): ID embeddings start from projected text, then train as usual.

``text_init`` (:class:`TextInitRecommender`) wraps any registered model with ``user_embedding`` and
``item_embedding`` tables (MF, LightGCN, SGL, SimGCL, XSimGCL, ...).  Before training, the item
table is set to the top-``d`` principal components of the items' frozen text embeddings and the
user table to the mean of the user's training items' rows:

.. math::
    Z_c = Z - \bar z, \quad Z_c = U \Sigma V^\top, \quad
    E_I^{(0)} = s\, Z_c V_{:, :d}, \qquad
    E_U^{(0)} = s\, D_U^{-1} X\, Z_c V_{:, :d},

with :math:`s` chosen so that the item table's standard deviation equals that of the backbone's
own random initialisation (the learning rate and L2 weight tuned for it stay meaningful).
Optionally (``mix`` < 1) the text rows are blended with the random ones:
:math:`E = \text{mix}\cdot E_{\text{text}} + (1 - \text{mix})\cdot E_{\text{random}}`.

Training, scoring and checkpoints are the backbone's own (the wrapper only adds the
initialisation), so ``mix: 0`` trains exactly like the bare backbone with the same seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from alignment.alpharec import mean_item_rows
from alignment.linear import (
    ItemTextInput,
    ItemTextMode,
    cache_dir_field,
    checked_item_embeddings,
    encoder_field,
    item_text_field,
    kg_field,
    prepare_item_embeddings,
)
from graphrec.config import doc, model_config_from_dict
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError
from graphrec.models import build_model, model_class
from graphrec.models.base import InputCache, LossOutput, Recommender, Scorer
from graphrec.optional import TEXT_MODULES


@dataclass
class TextInitConfig:
    """Any ID-embedding backbone whose user and item tables start from PCA-projected item text."""

    name: str = doc("Model name.", "text_init")
    backbone: Any = doc(
        "The wrapped model's section (a model with user/item embedding tables), e.g. `{name: lightgcn}`.",
        default_factory=lambda: {"name": "lightgcn"},
    )
    mix: float = doc(
        "Share of the text initialisation in the initial tables (1 = text only, 0 = the backbone's random init).",
        1.0,
        ge=0.0,
        le=1.0,
    )
    item_text: ItemTextMode = item_text_field()
    kg: str | None = kg_field()
    encoder: str = encoder_field()
    cache_dir: str | None = cache_dir_field()

    def __post_init__(self) -> None:
        if isinstance(self.backbone, dict):
            if self.backbone.get("name", "lightgcn") == "text_init":
                raise ConfigError(
                    "model.backbone.name: the backbone of `text_init` cannot be `text_init`"
                )
            self.backbone = model_config_from_dict(self.backbone, "model.backbone")
        elif not dataclasses.is_dataclass(self.backbone):
            raise ConfigError(
                f"model.backbone: expected a model section (mapping with `name`), got {self.backbone!r}"
            )

    def validate(self, prefix: str = "model") -> None:
        if not 0.0 <= self.mix <= 1.0:
            raise ConfigError(f"{prefix}.mix must be in [0, 1], got {self.mix}")
        validate = getattr(self.backbone, "validate", None)
        if callable(validate):
            validate(f"{prefix}.backbone")


def text_initial_tables(
    train: sp.csr_matrix, item_text: np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unscaled ``([n_users, dim], [n_items, dim])``: items' centred text on its top ``dim``
    principal axes, users' means.

    Raises :class:`ConfigError` when the text has fewer than ``dim`` dimensions.
    """
    z = np.asarray(item_text, dtype=np.float64)
    if z.shape[1] < dim:
        raise ConfigError(
            f"text embeddings have {z.shape[1]} dimensions, fewer than the backbone's embedding_dim {dim}"
        )
    z = z - z.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    items = (z @ vt[:dim].T).astype(np.float32)
    return mean_item_rows(train, items), items


@dataclass
class TextInitInputs:
    """What a :class:`TextInitRecommender` is built on: the item text embeddings and its backbone's inputs."""

    item_embeddings: ItemTextInput
    backbone: object | None = None


class TextInitRecommender(Recommender):
    """A backbone whose embedding tables start from text; see the module docstring.

    Args:
        n_users, n_items, config, train: as for every model (:class:`TextInitConfig`).
        item_embeddings: ``[n_items, d_text]`` text embeddings of the items (what :meth:`prepare`
            encodes from the dataset; benchmarks pass a shared encoding).
        backbone_inputs: the backbone's prepared inputs (``None`` for backbones without any).
    """

    name = "text_init"
    requires = TEXT_MODULES  # the `text` extra: sentence-transformers and the embedded encoder
    config_class = TextInitConfig
    backbone: Recommender

    @classmethod
    def prepare(
        cls,
        config: TextInitConfig,
        train: sp.csr_matrix,
        data: InteractionData | None,
        cache: InputCache,
    ) -> TextInitInputs:
        """The item text embeddings and the backbone's inputs, each prepared once per ``cache``."""
        backbone = cache.inputs(model_class(config.backbone.name), config.backbone, train, data)
        items = prepare_item_embeddings("text_init", config, data, train, cache)
        return TextInitInputs(items, backbone)

    @classmethod
    def from_inputs(
        cls,
        n_users: int,
        n_items: int,
        config: TextInitConfig,
        train: sp.csr_matrix,
        inputs: object | None,
    ) -> TextInitRecommender:
        if not isinstance(inputs, TextInitInputs):
            raise TypeError(f"text_init is built on TextInitInputs, got {type(inputs).__name__}")
        return cls(n_users, n_items, config, train, inputs.item_embeddings, inputs.backbone)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: TextInitConfig,
        train: sp.csr_matrix,
        item_embeddings: ItemTextInput,
        backbone_inputs: object | None = None,
    ) -> None:
        super().__init__(n_users, n_items, config, train)
        self.backbone = build_model(
            config.backbone, n_users, n_items, train, prepared=backbone_inputs
        )
        user_table = getattr(self.backbone, "user_embedding", None)
        item_table = getattr(self.backbone, "item_embedding", None)
        if not (isinstance(user_table, nn.Embedding) and isinstance(item_table, nn.Embedding)):
            raise ConfigError(
                f"model.backbone: {config.backbone.name!r} has no user/item embedding tables to initialise"
            )
        vectors = checked_item_embeddings(item_embeddings, n_items)
        users, items = text_initial_tables(train, vectors, item_table.weight.shape[1])
        with torch.no_grad():
            scale = float(item_table.weight.std()) / max(float(items.std()), 1e-12)
            for table, rows in ((user_table, users), (item_table, items)):
                text = torch.from_numpy(rows).to(table.weight) * scale
                table.weight.mul_(1.0 - config.mix).add_(config.mix * text)

    # the contract, delegated
    def set_l2_weight(self, weight: float) -> None:
        setter = getattr(self.backbone, "set_l2_weight", None)
        if callable(setter):
            setter(weight)

    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        self.backbone.on_epoch_start(epoch, generator)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone.embeddings()

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        return self.backbone.loss(users, pos_items, neg_items)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.backbone.score(users)

    def scorer(self) -> Scorer:
        return self.backbone.scorer()

    def to_device(self, device: torch.device) -> TextInitRecommender:
        self.backbone.to_device(device)
        return self.to(device)
