r"""Text-graph alignment for any graphrec backbone (RLMRec-Con / RLMRec-Gen), fused ranking, cold items.

:class:`AlignedRecommender` wraps a registered model (``backbone``) through the
model contract only: its loss is the backbone's own loss plus
``weight`` × an alignment loss between the backbone's graph embeddings
:math:`e_v` and the text embeddings :math:`t_v` of the same users and items.

* ``objective: contrastive`` (RLMRec-Con): an MLP :math:`f` projects text into the
  graph space, :math:`z_v = f(t_v)`, and InfoNCE with cosine similarity and
  temperature :math:`\tau` pulls :math:`e_v` towards :math:`z_v` against the other
  users (items) *of the batch* — not against all users every step, as RLMRec does.
* ``objective: generative`` (RLMRec-Gen): a share ``mask_ratio`` of the batch's
  nodes has its ego embedding replaced by a learnable mask token, the backbone
  propagates, and an MLP :math:`g` reconstructs the masked nodes' text embeddings
  (InfoNCE between :math:`g(h_v)` and :math:`t_v` over the masked nodes).

Ranking (contrastive only, where :math:`f` exists) fuses the two views through the
item representation, so scores stay dot products as the contract wants:

.. math::
    \hat e_i = e_i + w\,\bar z_i, \qquad
    \hat e_i = (1 + w)\,\bar z_i \ \text{for items without training interactions},
    \qquad \hat y_{ui} = e_u^\top \hat e_i,

with :math:`\bar z_i = s \cdot z_i/\lVert z_i\rVert` rescaled to the mean norm
:math:`s` of the warm items' graph embeddings and :math:`w` = ``fusion_weight``.
Cold items are thereby recommendable through their projected text.

The model is built on prepared :class:`~alignment.views.TextViews` (``AlignedInputs``):
its ``prepare`` step builds them from the dataset (item texts, user profiles from the
training matrix only) or loads a saved file (``text_views``), and prepares the backbone's
own inputs; the constructor does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from alignment.encoders import EMBEDDED_ENCODER, default_cache_dir
from alignment.losses import info_nce
from alignment.profiles import make_profile_backend
from alignment.views import TextViews, build_text_views
from graphrec.config import doc, model_config_from_dict
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError
from graphrec.models import build_model, model_class
from graphrec.models.base import InputCache, LossOutput, Recommender
from graphrec.models.losses import bpr_loss
from graphrec.optional import TEXT_MODULES
from kg.llm.cache import ResponseCache


@dataclass
class AlignedConfig:
    """Text-graph alignment around any backbone model (RLMRec-Con / -Gen), fused ranking and cold items."""

    name: str = doc("Model name.", "aligned")
    backbone: Any = doc(
        "The wrapped model's section (any registered model except `aligned`), e.g. `{name: lightgcn, num_layers: 3}`.",
        default_factory=lambda: {"name": "lightgcn"},
    )
    embedding_dim: int | None = doc(
        "Sets `backbone.embedding_dim`; null = the backbone's own value.", None, ge=1, le=65536
    )
    objective: Literal["contrastive", "generative"] = doc(
        "`contrastive` (RLMRec-Con: MLP text -> graph, InfoNCE over in-batch nodes) or "
        "`generative` (RLMRec-Gen: mask nodes, propagate, reconstruct their text embeddings).",
        "contrastive",
    )
    weight: float = doc(
        "Weight of the alignment loss added to the backbone's loss.", 0.1, ge=0.0, le=1e6
    )
    temperature: float = doc(
        "InfoNCE temperature tau (cosine similarities / tau).", 0.2, gt=0.0, le=1e6
    )
    mask_ratio: float = doc(
        "Generative: share of the batch's users and items whose ego embedding is masked.",
        0.1,
        ge=0.0,
        lt=1.0,
    )
    max_align_nodes: int = doc(
        "At most this many users and this many items of a batch take part in the alignment loss "
        "(random subset; bounds the [N, N] InfoNCE and projection cost).",
        256,
        ge=1,
        le=10**7,
    )
    hidden_dim: int | None = doc(
        "Hidden width of the projection MLPs; null = (text dim + graph dim) / 2 as in RLMRec.",
        None,
        ge=1,
        le=65536,
    )
    fusion_weight: float = doc(
        "Ranking: weight w of the projected text embedding added to each item's graph embedding "
        "(contrastive only; 0 = graph scores).",
        0.0,
        ge=-1e6,
        le=1e6,
    )
    text_bpr_weight: float = doc(
        "Weight of a BPR loss that ranks items by their projected text alone, e_u . z_i "
        "(contrastive only; trains the text path cold items are ranked by, as in "
        "DropoutNet/CLCRec); 0 = off.",
        0.0,
        ge=0.0,
        le=1e6,
    )
    cold_items: Literal["text", "graph"] = doc(
        "Items without training interactions are scored through their projected text (`text`, "
        "contrastive only) or their untrained graph embedding (`graph`).",
        "text",
    )
    text_views: str | None = doc(
        "Saved text views (`.npz` from `alignment.TextViews.save`, e.g. with LLM profiles); null "
        "= build them from the dataset.",
        None,
        path=True,
    )
    item_text: Literal["catalogue", "catalogue+kg"] = doc(
        "Item text: catalogue text (title, genres, tagline, overview), optionally with the "
        "dataset's KG facts serialised.",
        "catalogue",
    )
    user_profile: Literal["mean", "llm"] = doc(
        "User text: `mean` = rating-weighted mean of the training items' text embeddings; `llm` = "
        "LLM-written profile from training interactions (cached; slow with the embedded model).",
        "mean",
    )
    llm_backend: str = doc(
        "Backend of LLM profiles: `embedded` (SmolLM2 GGUF), `openai` (OPENAI_BASE_URL / "
        "OPENAI_API_KEY), or a local model path (transformers).",
        "embedded",
    )
    encoder: str = doc(
        "Sentence encoder: `all-MiniLM-L6-v2` (embedded, offline) or a local sentence-transformers directory.",
        EMBEDDED_ENCODER,
        path=True,
    )
    cache_dir: str | None = doc(
        "Folder of the embedding and LLM caches; null = $GRAPHREC_CACHE_DIR or ~/.cache/graphrec.",
        None,
        path=True,
    )

    def __post_init__(self) -> None:
        if dataclasses.is_dataclass(self.backbone):
            pass
        elif isinstance(self.backbone, dict):
            if self.backbone.get("name", "lightgcn") == "aligned":
                raise ConfigError(
                    "model.backbone.name: the backbone of `aligned` cannot be `aligned`"
                )
            self.backbone = model_config_from_dict(self.backbone, "model.backbone")
        else:
            raise ConfigError(
                f"model.backbone: expected a model section (mapping with `name`), got {self.backbone!r}"
            )
        if self.embedding_dim is not None:
            if not hasattr(self.backbone, "embedding_dim"):
                raise ConfigError(
                    f"model.embedding_dim: backbone {self.backbone.name!r} has no embedding_dim"
                )
            self.backbone.embedding_dim = self.embedding_dim

    def validate(self, prefix: str = "model") -> None:
        if self.weight < 0:
            raise ConfigError(f"{prefix}.weight must be >= 0, got {self.weight}")
        if self.temperature <= 0:
            raise ConfigError(f"{prefix}.temperature must be positive, got {self.temperature}")
        if not 0.0 < self.mask_ratio <= 1.0:
            raise ConfigError(f"{prefix}.mask_ratio must be in (0, 1], got {self.mask_ratio}")
        if self.max_align_nodes < 2:
            raise ConfigError(f"{prefix}.max_align_nodes must be >= 2, got {self.max_align_nodes}")
        if self.fusion_weight < 0:
            raise ConfigError(f"{prefix}.fusion_weight must be >= 0, got {self.fusion_weight}")
        if self.text_bpr_weight < 0:
            raise ConfigError(f"{prefix}.text_bpr_weight must be >= 0, got {self.text_bpr_weight}")
        if self.text_bpr_weight > 0 and self.objective != "contrastive":
            raise ConfigError(
                f"{prefix}.text_bpr_weight needs objective=contrastive (the text->graph projection)"
            )
        if self.fusion_weight > 0 and self.objective != "contrastive":
            raise ConfigError(
                f"{prefix}.fusion_weight needs objective=contrastive (the text->graph projection)"
            )
        validate = getattr(self.backbone, "validate", None)
        if callable(validate):
            validate(f"{prefix}.backbone")


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """``Linear -> LeakyReLU -> Linear`` (RLMRec's projection), Xavier-initialised."""
    net = nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, out_dim))
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return net


class _Embeddings(nn.Module):
    """``forward() = backbone.embeddings()``, so :func:`torch.func.functional_call` can swap ego tables."""

    def __init__(self, backbone: Recommender) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone.embeddings()


def text_views_key(config: AlignedConfig) -> Hashable:
    """What the text views of an aligned config depend on besides the data and training matrix."""
    return (
        "text_views",
        config.text_views,
        config.item_text,
        config.user_profile,
        config.llm_backend if config.user_profile == "llm" else None,
        config.encoder,
        config.cache_dir,
    )


def text_views_for(
    config: AlignedConfig,
    data: InteractionData | None,
    train: sp.csr_matrix,
    n_users: int,
    n_items: int,
) -> TextViews:
    """The text views a config asks for: a saved file, or built from ``data`` and ``train``.

    Reads files and caches and may encode texts or run an LLM: this is the preparation
    step of :class:`AlignedRecommender`, never called by its constructor.
    """
    if config.text_views:
        views = TextViews.load(config.text_views, data)
    else:
        if data is None:
            raise ConfigError(
                "model aligned needs the dataset's item texts: build it with build_model(config, n_users, n_items, "
                "train, data=data), or set model.text_views to a saved TextViews file"
            )
        cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        backend, llm_cache = None, None
        if config.user_profile == "llm":
            backend = make_profile_backend(config.llm_backend)
            llm_cache = ResponseCache(cache_dir / "llm_profiles.sqlite")
        views = build_text_views(
            data,
            train,
            encoder=config.encoder,
            cache=cache_dir / "text_embeddings.sqlite",
            item_text=config.item_text,
            user_profile=config.user_profile,
            llm_backend=backend,
            llm_cache=llm_cache,
        )
    if views.user.shape[0] != n_users or views.item.shape[0] != n_items:
        raise ConfigError(
            f"text views have {views.user.shape[0]} users x {views.item.shape[0]} items, "
            f"the model {n_users} x {n_items}"
        )
    return views


@dataclass
class AlignedInputs:
    """What an :class:`AlignedRecommender` is built on: the text views and its backbone's inputs."""

    text_views: TextViews
    backbone: object | None = None


class AlignedRecommender(Recommender):
    """A backbone recommender plus text-graph alignment; see the module docstring for the math.

    Args:
        n_users, n_items, config, train: as for every model (:class:`AlignedConfig`).
        text_views: the users' and items' text embeddings (what :meth:`prepare` builds from
            the config's text settings; experiments that share one encoding pass their own).
        backbone_inputs: the backbone's prepared inputs (``None`` for backbones without any).
    """

    name = "aligned"
    requires = TEXT_MODULES  # the `text` extra: sentence-transformers and the embedded encoder
    config_class = AlignedConfig
    config: AlignedConfig
    backbone: Recommender
    user_text: torch.Tensor
    item_text: torch.Tensor
    cold_items: torch.Tensor

    @classmethod
    def prepare(
        cls,
        config: AlignedConfig,
        train: sp.csr_matrix,
        data: InteractionData | None,
        cache: InputCache,
    ) -> AlignedInputs:
        """The backbone's inputs and the text views, each prepared once per ``cache``."""
        backbone = cache.inputs(model_class(config.backbone.name), config.backbone, train, data)
        n_users, n_items = train.shape
        views = cache.shared(
            text_views_key(config),
            train,
            data,
            lambda: text_views_for(config, data, train, n_users, n_items),
        )
        return AlignedInputs(views, backbone)

    @classmethod
    def from_inputs(
        cls,
        n_users: int,
        n_items: int,
        config: AlignedConfig,
        train: sp.csr_matrix,
        inputs: object | None,
    ) -> AlignedRecommender:
        if not isinstance(inputs, AlignedInputs):
            raise TypeError(f"aligned is built on AlignedInputs, got {type(inputs).__name__}")
        return cls(n_users, n_items, config, train, inputs.text_views, inputs.backbone)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: AlignedConfig,
        train: sp.csr_matrix,
        text_views: TextViews,
        backbone_inputs: object | None = None,
    ) -> None:
        super().__init__(n_users, n_items, config, train)
        self.backbone = build_model(
            config.backbone, n_users, n_items, train, prepared=backbone_inputs
        )
        views = text_views
        if views.user.shape[0] != n_users or views.item.shape[0] != n_items:
            raise ValueError(
                f"text views have {views.user.shape[0]} users x {views.item.shape[0]} items, "
                f"expected {n_users} x {n_items}"
            )
        self.text_meta = dict(views.meta)
        # Derived from the data (and cached on disk), so kept out of checkpoints.
        self.register_buffer("user_text", torch.from_numpy(views.user.copy()), persistent=False)
        self.register_buffer("item_text", torch.from_numpy(views.item.copy()), persistent=False)
        degree = np.asarray((sp.csr_matrix(train) != 0).sum(axis=0)).ravel()
        self.register_buffer("cold_items", torch.from_numpy(degree == 0), persistent=False)
        graph_dim = getattr(config.backbone, "embedding_dim", None)
        if graph_dim is None:
            with torch.no_grad():
                graph_dim = int(self.backbone.embeddings()[0].shape[1])
        text_dim = views.dim
        hidden = config.hidden_dim or (text_dim + graph_dim) // 2
        self.projector = (
            mlp(text_dim, hidden, graph_dim) if config.objective == "contrastive" else None
        )
        self.decoder: nn.Sequential | None = None
        self.mask_token: nn.Parameter | None = None
        if config.objective == "generative":
            self._check_ego_tables()
            self.decoder = mlp(graph_dim, hidden, text_dim)
            self.mask_token = nn.Parameter(torch.empty(1, graph_dim))
            nn.init.xavier_uniform_(self.mask_token)
        # Per-step draws (node subsets, masks) come from a private generator reseeded every epoch
        # from (seed drawn at construction, epoch): resumed runs repeat them exactly, and the
        # trainer's generator is left alone, so weight=0 trains exactly like the bare backbone.
        self._base_seed = int(torch.randint(0, 2**31, (1,)))
        self._rng = torch.Generator().manual_seed(self._base_seed)

    # ------------------------------------------------------------ contract hooks
    def set_l2_weight(self, weight: float) -> None:
        setter = getattr(self.backbone, "set_l2_weight", None)
        if callable(setter):
            setter(weight)

    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        self.backbone.on_epoch_start(epoch, generator)
        self._rng.manual_seed(self._base_seed * 100_003 + epoch)

    # ------------------------------------------------------------------- views
    def graph_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's user and item embeddings ``([n_users, d], [n_items, d])`` (graph view)."""
        return self.backbone.embeddings()

    def projected_text(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Text embeddings projected into the graph space, ``([n_users, d], [n_items, d])`` (contrastive only)."""
        if self.projector is None:
            raise RuntimeError("projected_text needs objective=contrastive")
        return self.projector(self.user_text), self.projector(self.item_text)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Users' graph embeddings and the fused item representations :math:`\\hat e_i` (module docstring)."""
        user_emb, item_emb = self.backbone.embeddings()
        weight = self.config.fusion_weight
        use_cold = self.config.cold_items == "text" and bool(self.cold_items.any())
        if self.projector is None or (weight == 0 and not use_cold):
            return user_emb, item_emb
        text = F.normalize(self.projector(self.item_text), dim=-1)
        warm = ~self.cold_items
        scale = (
            item_emb[warm].norm(dim=-1).mean().detach()
            if bool(warm.any())
            else item_emb.new_tensor(1.0)
        )
        text = text * scale
        fused = item_emb + weight * text if weight else item_emb
        if use_cold:
            fused = torch.where(self.cold_items[:, None], (1.0 + weight) * text, fused)
        return user_emb, fused

    # -------------------------------------------------------------------- loss
    def _subset(self, nodes: torch.Tensor, limit: int) -> torch.Tensor:
        if len(nodes) <= limit:
            return nodes
        keep = torch.randperm(len(nodes), generator=self._rng)[:limit].to(nodes.device)
        return nodes[keep]

    def contrastive_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """InfoNCE between graph and projected text embeddings of the batch's unique ``users`` and ``items``."""
        user_emb, item_emb = self.backbone.embeddings()
        users = self._subset(torch.unique(users), self.config.max_align_nodes)
        items = self._subset(torch.unique(items), self.config.max_align_nodes)
        tau = self.config.temperature
        project = self._text_projector()
        loss_users = info_nce(user_emb[users], project(self.user_text[users]), tau)
        loss_items = info_nce(item_emb[items], project(self.item_text[items]), tau)
        return (loss_users + loss_items) / 2

    def _text_projector(self) -> nn.Sequential:
        if self.projector is None:
            raise RuntimeError("the text -> graph projection needs objective=contrastive")
        return self.projector

    def _ego_table(self, name: str) -> torch.Tensor:
        table = getattr(self.backbone, name)
        if not isinstance(table, nn.Embedding):
            raise RuntimeError(f"backbone {self.backbone.name!r} has no embedding table {name!r}")
        return table.weight

    def _check_ego_tables(self) -> None:
        names = dict(self.backbone.named_parameters())
        for table in ("user_embedding.weight", "item_embedding.weight"):
            if table not in names:
                raise ConfigError(
                    f"model.objective=generative masks ego embeddings, but backbone {self.backbone.name!r} has no "
                    f"parameter {table!r} (use a model with user/item embedding tables, or objective=contrastive)"
                )

    def _mask(self, nodes: torch.Tensor) -> torch.Tensor:
        nodes = torch.unique(nodes)
        count = min(
            len(nodes),
            max(2, int(round(self.config.mask_ratio * len(nodes)))),
            self.config.max_align_nodes,
        )
        keep = torch.randperm(len(nodes), generator=self._rng)[:count].to(nodes.device)
        return nodes[keep]

    def generative_loss(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mask some batch nodes' ego embeddings, propagate, reconstruct their text (InfoNCE over masked nodes)."""
        if self.decoder is None or self.mask_token is None:
            raise RuntimeError("generative_loss needs objective=generative")
        decoder, mask_token = self.decoder, self.mask_token
        masked_users, masked_items = self._mask(users), self._mask(items)
        user_table = self._ego_table("user_embedding")
        item_table = self._ego_table("item_embedding")
        user_mask = torch.zeros(self.n_users, 1, dtype=torch.bool, device=user_table.device)
        item_mask = torch.zeros(self.n_items, 1, dtype=torch.bool, device=item_table.device)
        user_mask[masked_users] = True
        item_mask[masked_items] = True
        swapped = {
            "backbone.user_embedding.weight": torch.where(user_mask, mask_token, user_table),
            "backbone.item_embedding.weight": torch.where(item_mask, mask_token, item_table),
        }
        user_emb, item_emb = functional_call(_Embeddings(self.backbone), swapped, ())
        tau = self.config.temperature
        loss_users = info_nce(decoder(user_emb[masked_users]), self.user_text[masked_users], tau)
        loss_items = info_nce(decoder(item_emb[masked_items]), self.item_text[masked_items], tau)
        return (loss_users + loss_items) / 2

    def alignment_loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> torch.Tensor:
        items = torch.cat([pos_items, neg_items])
        if self.config.objective == "contrastive":
            return self.contrastive_loss(users, items)
        return self.generative_loss(users, items)

    def text_bpr_loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> torch.Tensor:
        r"""BPR on :math:`e_u^\top z_i` over a random subset (``max_align_nodes``) of the batch's triples."""
        keep = self._subset(
            torch.arange(len(users), device=users.device), self.config.max_align_nodes
        )
        user_emb, _ = self.backbone.embeddings()
        u = user_emb[users[keep]]
        project = self._text_projector()
        pos = (u * project(self.item_text[pos_items[keep]])).sum(-1)
        neg = (u * project(self.item_text[neg_items[keep]])).sum(-1)
        return bpr_loss(pos, neg)

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        out = self.backbone.loss(users, pos_items, neg_items)
        align = self.alignment_loss(users, pos_items, neg_items)
        parts = dict(out.parts)
        parts["align"] = align.detach()
        total = out.loss + self.config.weight * align
        if self.config.text_bpr_weight > 0:
            text_bpr = self.text_bpr_loss(users, pos_items, neg_items)
            parts["text_bpr"] = text_bpr.detach()
            total = total + self.config.text_bpr_weight * text_bpr
        return LossOutput(total, parts)
