"""Alignment losses between the graph view and the text view."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""InfoNCE with cosine similarity over in-batch negatives (RLMRec's ``cal_infonce_loss`` direction).

    .. math::
        \mathcal{L} = -\frac{1}{N}\sum_{k=1}^{N}
            \log \frac{\exp(\cos(a_k, p_k)/\tau)}{\sum_{j=1}^{N} \exp(\cos(a_k, p_j)/\tau)}

    Each anchor's positive is the row with the same index; the other ``N - 1`` rows of
    ``positive`` are its negatives, so the cost is ``O(N^2 d)`` in the batch size,
    not in the number of users or items.

    Args:
        anchor: ``[N, d]`` (e.g. graph embeddings of the batch's users).
        positive: ``[N, d]`` (their projected text embeddings).
        temperature: :math:`\tau > 0`.
    """
    if anchor.shape != positive.shape or anchor.dim() != 2:
        raise ValueError(
            f"anchor {tuple(anchor.shape)} and positive {tuple(positive.shape)} must both be [N, d]"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = F.normalize(anchor, dim=-1) @ F.normalize(positive, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(anchor), device=anchor.device))


def cosine_agreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity ``[N]`` of two ``[N, d]`` tensors (zero rows give 0)."""
    return (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)
