"""SimGCL (Yu et al., SIGIR 2022) and XSimGCL (Yu et al., TKDE 2023): noise-based views."""
from __future__ import annotations

from dataclasses import dataclass

from graphrec.config import doc
from graphrec.errors import ConfigError
from graphrec.models.gcl import GCLConfig, GCLRecommender


@dataclass
class SimGCLConfig(GCLConfig):
    """SimGCL: LightGCN + InfoNCE between two forward passes with random noise added at every layer."""

    name: str = doc("Model name.", "simgcl")
    eps: float = doc("Noise magnitude epsilon: each propagated layer gets `eps * sign(E) * normalize(U(0,1))` (SimGCL paper 0.1-0.2; RLMRec's amazon config 0.9).", 0.1, ge=0.0, le=1e3)

    def validate(self, prefix: str = "model") -> None:
        super().validate(prefix)
        if self.eps < 0:
            raise ConfigError(f"{prefix}.eps must be >= 0, got {self.eps}")


class SimGCL(GCLRecommender):
    r"""SimGCL: two perturbed LightGCN passes are the views; BPR uses a clean pass.

    .. math::
        E'_l = \hat A E'_{l-1} + \epsilon\,\operatorname{sign}(\hat A E'_{l-1}) \odot
            \frac{\Delta}{\lVert\Delta\rVert_2},\quad \Delta \sim U(0,1)^d

    and the loss is :math:`\mathcal{L}_{BPR}(E) + \lambda(\mathcal{L}_{NCE}(E'_U, E''_U) +
    \mathcal{L}_{NCE}(E'_I, E''_I)) + \mu \mathcal{L}_2` with InfoNCE over the batch's
    unique users and positive items (SELFRec; RLMRec contrasts the same nodes against
    all users/items).  Evaluation uses the clean pass.
    """

    name = "simgcl"
    config_class = SimGCLConfig

    def contrastive_loss(self, users, pos, neg):
        final = self.combine(self.encode())
        eps = self.config.eps
        view1 = self.combine(self.encode(noise_eps=eps))
        view2 = self.combine(self.encode(noise_eps=eps))
        u, i = self.contrast_ids(users, pos, neg)
        return final, self.contrast(view1, view2, u, i)


@dataclass
class XSimGCLConfig(SimGCLConfig):
    """XSimGCL: one noisy LightGCN pass; InfoNCE between its final and its `cl_layer`-th layer embeddings."""

    name: str = doc("Model name.", "xsimgcl")
    include_ego: bool = doc("Whether layer 0 enters the layer combination (false in XSimGCL's reference code).", False)
    eps: float = doc("Noise magnitude epsilon added at every layer (XSimGCL paper: 0.2).", 0.2, ge=0.0, le=1e3)
    cl_layer: int = doc("Layer l* (1..num_layers) whose perturbed output is contrasted with the final embeddings (XSimGCL paper: 1).", 1, ge=1, le=64)

    def validate(self, prefix: str = "model") -> None:
        super().validate(prefix)
        if not 1 <= self.cl_layer <= max(1, self.num_layers):
            raise ConfigError(f"{prefix}.cl_layer must be in 1..num_layers ({self.num_layers}), got {self.cl_layer}")
        if self.num_layers < 1:
            raise ConfigError(f"{prefix}.num_layers must be >= 1 for xsimgcl")


class XSimGCL(GCLRecommender):
    r"""XSimGCL: a single perturbed pass serves both the recommendation and the contrast.

    BPR is computed on the final perturbed embeddings; InfoNCE contrasts them with
    the perturbed output of layer :math:`l^*` over the batch's unique users and
    positive items.  One propagation per batch instead of SimGCL's three.
    Evaluation uses the clean pass.
    """

    name = "xsimgcl"
    config_class = XSimGCLConfig

    def contrastive_loss(self, users, pos, neg):
        layers = self.encode(noise_eps=self.config.eps)
        final = self.combine(layers)
        u, i = self.contrast_ids(users, pos, neg)
        return final, self.contrast(final, layers[self.config.cl_layer], u, i)
