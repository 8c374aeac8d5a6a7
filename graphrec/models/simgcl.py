"""SimGCL (Yu et al., SIGIR 2022) and XSimGCL (Yu et al., TKDE 2023): noise-based views."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.models.gcl import GCLConfig, GCLRecommender
from graphrec.models.propagation import propagate


@dataclass
class SimGCLConfig(GCLConfig):
    """SimGCL: LightGCN + InfoNCE between two forward passes with random noise added at every layer."""

    name: str = doc("Model name.", "simgcl")
    eps: float = doc(
        "Noise magnitude epsilon: each propagated layer gets `eps * sign(E) * normalize(U(0,1))` "
        "(SimGCL paper 0.1-0.2; RLMRec's amazon config 0.9).",
        0.1,
        ge=0.0,
        le=1e3,
    )

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

    def encode_clean_and_views(self, eps: float, views: int = 2) -> list[list[torch.Tensor]]:
        r"""The clean pass and ``views`` noisy passes at once: ``[clean layers, view 1's, ...]``.

        The same values as :meth:`encode` once without and ``views`` times with noise, with
        fewer sparse products: layer 1 is :math:`\hat A E_0` for every pass (the noise is
        added after the product), so it is computed once, and its backward is one product
        of the summed gradients instead of ``1 + views``.  Later layers stay one product
        per pass: MKL's CSR product over ``[N, 96]`` columns costs 4x the ``[N, 32]`` one,
        not 3x (measured), so stacking the passes as columns would be slower.  The noise
        is drawn up front in the order the separate passes drew it (view 1's layers, then
        view 2's), from the same generator.
        """
        if eps <= 0:  # the separate passes drew no noise: every pass is the clean one
            return [self.encode()] * (1 + views)
        x0 = self.ego()
        n, d = x0.shape
        adjacency = self._adjacency_on(x0.device)
        noise = [
            [
                torch.nn.functional.normalize(self.rand(n, d, device=x0.device), dim=-1)
                for _ in range(self.num_layers)
            ]
            for _ in range(views)
        ]
        layers = [[x0] for _ in range(1 + views)]
        for depth in range(self.num_layers):
            if depth == 0:
                produced = [propagate(adjacency, x0)] * (1 + views)
            else:
                produced = [propagate(adjacency, passes[-1]) for passes in layers]
            layers[0].append(produced[0])
            for j in range(views):
                x = produced[1 + j]
                # the noise term outside autograd: sign() has a zero gradient (same values, cheaper backward)
                layers[1 + j].append(x + eps * torch.sign(x.detach()) * noise[j][depth])
        return layers

    def contrastive_loss(self, users, pos, neg):
        clean, first, second = self.encode_clean_and_views(self.config.eps)
        final, view1, view2 = self.combine(clean), self.combine(first), self.combine(second)
        u, i = self.contrast_ids(users, pos, neg)
        return final, self.contrast(view1, view2, u, i)


@dataclass
class XSimGCLConfig(SimGCLConfig):
    """XSimGCL: one noisy LightGCN pass; InfoNCE between its final and its `cl_layer`-th layer embeddings."""

    name: str = doc("Model name.", "xsimgcl")
    include_ego: bool = doc(
        "Whether layer 0 enters the layer combination (false in XSimGCL's reference code).", False
    )
    eps: float = doc(
        "Noise magnitude epsilon added at every layer (XSimGCL paper: 0.2).", 0.2, ge=0.0, le=1e3
    )
    cl_layer: int = doc(
        "Layer l* (1..num_layers) whose perturbed output is contrasted with the final embeddings (XSimGCL paper: 1).",
        1,
        ge=1,
        le=64,
    )

    def validate(self, prefix: str = "model") -> None:
        super().validate(prefix)
        if not 1 <= self.cl_layer <= max(1, self.num_layers):
            raise ConfigError(
                f"{prefix}.cl_layer must be in 1..num_layers ({self.num_layers}), got {self.cl_layer}"
            )
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
