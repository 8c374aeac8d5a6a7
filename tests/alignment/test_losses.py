"""Alignment losses against hand-computed values."""

import math

import pytest
import torch

from alignment.losses import cosine_agreement, info_nce


def test_info_nce_identical_orthogonal_views():
    # cos = identity, logits = I / 0.5: loss = -log(e^2 / (e^2 + e^0)) = log(1 + e^-2) for both rows
    eye = torch.eye(2)
    assert info_nce(eye, eye, 0.5).item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)


def test_info_nce_uses_cosine_not_dot_product():
    anchor = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    positive = torch.tensor([[10.0, 0.0], [0.0, 2.0]])
    assert info_nce(anchor, positive, 0.5).item() == pytest.approx(
        math.log(1 + math.exp(-2)), abs=1e-6
    )


def test_info_nce_hand_checked_three_nodes():
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    positive = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    s = 1 / math.sqrt(2)
    cos = [[1, 1, 0], [0, 0, 1], [s, s, s]]  # cos(anchor_k, positive_j)
    tau = 0.25
    expected = 0.0
    for k in range(3):
        logits = [c / tau for c in cos[k]]
        expected += -(logits[k] - math.log(sum(math.exp(x) for x in logits)))
    assert info_nce(anchor, positive, tau).item() == pytest.approx(expected / 3, rel=1e-6)


def test_info_nce_gradient_pulls_anchor_towards_its_positive():
    anchor = torch.tensor([[1.0, 0.2], [0.1, 1.0]], requires_grad=True)
    positive = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    info_nce(anchor, positive, 0.2).backward()
    # row 0's positive is along y: descending the gradient increases its y component
    assert anchor.grad[0, 1] < 0 and anchor.grad[1, 0] < 0


def test_info_nce_rejects_bad_input():
    with pytest.raises(ValueError):
        info_nce(torch.ones(2, 3), torch.ones(3, 3), 0.2)
    with pytest.raises(ValueError):
        info_nce(torch.ones(2, 3), torch.ones(2, 3), 0.0)


def test_cosine_agreement():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [-1.0, -1.0]])
    torch.testing.assert_close(cosine_agreement(a, b), torch.tensor([1.0, -1.0]))
