"""Losses shared by the recommenders (kept beside the models, as in PyG)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    r"""Bayesian personalised ranking loss, averaged over the batch.

    .. math::
        \mathcal{L}_{BPR} = -\frac{1}{B}\sum_{(u,i,j)} \ln \sigma(\hat y_{ui} - \hat y_{uj})

    Args:
        pos_scores: ``[B]`` scores of (user, positive item) pairs.
        neg_scores: ``[B]`` scores of (user, negative item) pairs.
    """
    # softplus(-x) == -log(sigmoid(x)) but stays finite for large |x|.
    return F.softplus(neg_scores - pos_scores).mean()


def l2_penalty(*embeddings: torch.Tensor) -> torch.Tensor:
    r"""L2 penalty on a batch's ego embeddings, as in LightGCN:

    .. math::
        \frac{1}{2B}\sum_{e \in \text{batch}} \lVert e \rVert_2^2

    Args:
        embeddings: tensors of shape ``[B, d]`` (users, positive and negative items).
    """
    batch = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2.0 * batch)
