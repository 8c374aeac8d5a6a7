"""gathered_bpr_l2: LightGCN's blocked BPR + L2 equals the gather-then-autograd losses."""

import pytest
import torch

from graphrec.models import losses
from graphrec.models.losses import bpr_loss, gathered_bpr_l2, l2_penalty


def reference(nodes, ego, users, pos, neg):
    """The losses as LightGCN formed them before: gathered rows, autograd through everything."""
    index = torch.cat([users, pos, neg])
    u, p, n = nodes.index_select(0, index).chunk(3)
    return bpr_loss((u * p).sum(-1), (u * n).sum(-1)), l2_penalty(
        *ego.index_select(0, index).chunk(3)
    )


def tables(dtype=torch.float32, rows=40, dim=8, batch=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    nodes = torch.randn(rows, dim, generator=gen, dtype=dtype, requires_grad=True)
    ego = torch.randn(rows, dim, generator=gen, dtype=dtype, requires_grad=True)
    # duplicates within and across users / positives / negatives on purpose
    users, pos, neg = (torch.randint(rows, (batch,), generator=gen) for _ in range(3))
    return nodes, ego, users, pos, neg


@pytest.mark.parametrize("block", [7, 64, 8192])  # several blocks with a short last one, one block
@pytest.mark.parametrize("weights", [(1.0, 0.01), (0.5, 3.0)])  # 0.5: a scaled loss (DDP shares)
def test_values_and_gradients_match_autograd(monkeypatch, block, weights):
    monkeypatch.setattr(losses, "_BPR_BLOCK_ROWS", block)
    nodes, ego, users, pos, neg = tables()
    rank, reg = gathered_bpr_l2(nodes, ego, users, pos, neg)
    (weights[0] * rank + weights[1] * reg).backward()
    ours = nodes.grad.clone(), ego.grad.clone()
    nodes.grad = ego.grad = None
    ref_rank, ref_reg = reference(nodes, ego, users, pos, neg)
    (weights[0] * ref_rank + weights[1] * ref_reg).backward()
    torch.testing.assert_close(rank, ref_rank, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(reg, ref_reg, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours[0], nodes.grad, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(ours[1], ego.grad, rtol=1e-5, atol=1e-8)


def test_gradcheck_in_double(monkeypatch):
    monkeypatch.setattr(losses, "_BPR_BLOCK_ROWS", 5)
    nodes, ego, users, pos, neg = tables(torch.double, rows=9, dim=3, batch=12)
    assert torch.autograd.gradcheck(
        lambda a, b: gathered_bpr_l2(a, b, users, pos, neg), (nodes, ego)
    )


def test_without_gradients_only_the_values():
    nodes, ego, users, pos, neg = tables()
    with torch.no_grad():
        rank, reg = gathered_bpr_l2(nodes, ego, users, pos, neg)
        ref_rank, ref_reg = reference(nodes, ego, users, pos, neg)
    assert not rank.requires_grad
    torch.testing.assert_close((rank, reg), (ref_rank, ref_reg), rtol=1e-6, atol=1e-7)
