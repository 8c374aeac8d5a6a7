"""blocked_topk returns topk's values exactly (and its items when there are no ties)."""

import pytest
import torch

from graphrec.evaluation.ranking import blocked_topk, topk_with_ties


@pytest.mark.parametrize("n_items,block", [(1000, 8), (1003, 16), (4096, 32), (777, 32)])
def test_blocked_topk_matches_topk_without_ties(n_items, block):
    g = torch.Generator().manual_seed(n_items)
    scores = torch.randn(64, n_items, generator=g)
    scores[3, :] = float("-inf")  # a row with nothing to recommend
    scores[5, -1] = 50.0  # the best item in the last, partial block
    values, indices = blocked_topk(scores, 11, block=block)
    ref = torch.topk(scores, 11, dim=1)
    assert torch.equal(values, ref.values)
    finite = torch.isfinite(ref.values)
    assert torch.equal(indices[finite], ref.indices[finite])
    assert indices[5, 0].item() == n_items - 1


def test_blocked_topk_keeps_the_exact_values_under_heavy_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(
        0, 4, (32, 640), generator=g
    ).float()  # few distinct values: ties everywhere
    values, _ = blocked_topk(scores, 21, block=8)
    assert torch.equal(values, torch.topk(scores, 21, dim=1).values)
    # and the tie-resolving ranking stays the deterministic (-score, index) order
    _, order = topk_with_ties(scores, 20)
    key = scores * 1000 - torch.arange(640).float() / 1000
    assert torch.equal(order, torch.topk(key, 20, dim=1).indices)


def test_blocked_topk_propagates_nan():
    scores = torch.randn(4, 2048)
    scores[2, 1500] = float("nan")
    values, _ = blocked_topk(scores, 5, block=32)
    assert torch.isnan(values[2]).any() and not torch.isnan(values[[0, 1, 3]]).any()


def test_ranking_of_a_large_catalogue_goes_through_the_blocks_and_keeps_the_tie_rule():
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 3, (8, 17000), generator=g).float()
    scores[0, 16990:] = 5.0  # the best items at the very end, in the partial last block
    _, order = topk_with_ties(scores, 20)
    key = scores * 100000 - torch.arange(17000).float()  # exact in float32 at these magnitudes
    assert torch.equal(order, torch.topk(key, 20, dim=1).indices)
