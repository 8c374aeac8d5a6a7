"""Shared parts of the knowledge-aware recommenders: KG config fields, the CKG, entity tables.

A knowledge-aware model is built on a prepared :class:`~graphrec.knowledge.CollaborativeKG`:
:meth:`KGRecommender.prepare` reads the graph the config's ``kg`` fields ask for from the
dataset (:func:`graphrec.knowledge.knowledge_graph_for`; ``build_model(..., data=data)``
does this), and the constructor only builds parameters on it.  With ``kg: null`` the
graph holds the interactions alone, which is also how the model contract suite (no
dataset) builds it.  Every model with the same ``kg*`` settings can share one graph
(:meth:`KGRecommender.inputs_key`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

import scipy.sparse as sp
import torch
from torch import nn

from graphrec.config_schema import doc
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError
from graphrec.knowledge import CollaborativeKG, knowledge_graph_for
from graphrec.models.base import InputCache
from graphrec.models.lightgcn import LightGCNConfig
from graphrec.models.mf import EmbeddingRecommender, init_embedding


@dataclass
class KGModelConfig(LightGCNConfig):
    """Base of the knowledge-aware configs (not registered itself)."""

    kg: str | None = doc(
        "KG source: null = interactions only; `dataset` = the dataset's own KG (gold facts, "
        "RecBole .kg/.link); or a path: a `kg` export folder (kg_arrays.npz + id maps), a RecBole "
        ".kg file or folder, or a TSV/CSV triples table (head, relation, tail[, score]).",
        None,
        path=True,
    )
    kg_link: str | None = doc(
        "Item -> entity table (item_id, entity_id) for a triples-table source; null = entities "
        "named like raw item ids are those items.",
        None,
        path=True,
    )
    kg_relations: list[str] | None = doc("Keep only these KG relations; null = all.", None)
    kg_min_entity_degree: int = doc(
        "Drop non-item entities occurring in fewer triples (1 = keep all; 2 drops leaves attached to a single item).",
        1,
        ge=1,
        le=10**9,
    )
    kg_score: Literal["source", "collaborative"] = doc(
        "Score used by `kg_min_score` / `kg_drop_fraction`: the source's `score` column "
        "(confidence, alignment agreement) or the collaborative agreement computed from the "
        "training interactions.",
        "source",
    )
    kg_min_score: float | None = doc(
        "Prune KG triples scoring below this; null = no threshold.", None
    )
    kg_drop_fraction: float | None = doc(
        "Prune this share of the scored KG triples, lowest scores first; null = none.",
        None,
        ge=0.0,
        le=1.0,
    )

    def validate(self, prefix: str = "model") -> None:
        super().validate(prefix)
        if self.kg_min_entity_degree < 1:
            raise ConfigError(
                f"{prefix}.kg_min_entity_degree must be >= 1, got {self.kg_min_entity_degree}"
            )
        if self.kg_drop_fraction is not None and not 0.0 <= self.kg_drop_fraction <= 1.0:
            raise ConfigError(
                f"{prefix}.kg_drop_fraction must be in [0, 1], got {self.kg_drop_fraction}"
            )


class KGRecommender(EmbeddingRecommender):
    """Users, items and the other KG entities each get an ego embedding.

    Node layout (as in :class:`~graphrec.knowledge.CollaborativeKG`): users, then
    items, then the other entities.  BPR and the L2 penalty on the batch's ego
    embeddings come from :class:`~graphrec.models.mf.EmbeddingRecommender`.
    """

    config_class = KGModelConfig

    @classmethod
    def inputs_key(cls, config: KGModelConfig) -> Hashable:
        relations = None if config.kg_relations is None else tuple(config.kg_relations)
        return (
            "collaborative_kg",
            config.kg,
            config.kg_link,
            relations,
            config.kg_min_entity_degree,
            config.kg_score,
            config.kg_min_score,
            config.kg_drop_fraction,
        )

    @classmethod
    def prepare(
        cls,
        config: KGModelConfig,
        train: sp.csr_matrix,
        data: InteractionData | None,
        cache: InputCache,
    ) -> CollaborativeKG:
        """Read, map and prune the knowledge graph the config asks for (see the module docstring)."""
        n_users, n_items = train.shape
        return knowledge_graph_for(config, data, n_users=n_users, n_items=n_items, train=train)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: KGModelConfig,
        train: sp.csr_matrix,
        ckg: CollaborativeKG,
    ) -> None:
        super().__init__(n_users, n_items, config, train)
        if (ckg.n_users, ckg.n_items) != (n_users, n_items):
            raise ValueError(
                f"the collaborative KG has {ckg.n_users} users x {ckg.n_items} items, "
                f"the model {n_users} x {n_items}"
            )
        self.layer_combination = config.layer_combination
        self.ckg = ckg
        n_other = self.ckg.n_entities - n_items
        self.entity_embedding = nn.Embedding(n_other, config.embedding_dim) if n_other > 0 else None
        if self.entity_embedding is not None:
            init_embedding(self.entity_embedding.weight, config.init)

    @property
    def n_nodes(self) -> int:
        return self.ckg.n_nodes

    def ego(self) -> torch.Tensor:
        parts = [self.user_embedding.weight, self.item_embedding.weight]
        if self.entity_embedding is not None:
            parts.append(self.entity_embedding.weight)
        return torch.cat(parts, dim=0)

    def readout(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nodes[: self.n_users], nodes[self.n_users : self.n_users + self.n_items]

    def kg_statistics(self) -> dict:
        return self.ckg.statistics()
