import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.config import AugmentationConfig
from graphrec.errors import TrainingError
from graphrec.training.sampler import BPRSampler, build_sampler


def test_each_positive_once_per_epoch_and_negatives_are_unseen(small_data):
    sampler = BPRSampler(small_data.train, torch.Generator().manual_seed(0))
    users, pos, neg = map(torch.cat, zip(*sampler.epoch(batch_size=7)))
    assert len(users) == small_data.train.nnz
    seen = sorted(zip(users.tolist(), pos.tolist()))
    coo = small_data.train.tocoo()
    assert seen == sorted(zip(coo.row.tolist(), coo.col.tolist()))
    train = small_data.train.tolil()
    assert all(train[u, j] == 0 for u, j in zip(users.tolist(), neg.tolist()))


def test_same_generator_state_same_batches(small_data):
    a = BPRSampler(small_data.train, torch.Generator().manual_seed(5))
    b = BPRSampler(small_data.train, torch.Generator().manual_seed(5))
    for (ua, pa, na), (ub, pb, nb) in zip(a.epoch(16), b.epoch(16)):
        assert torch.equal(ua, ub) and torch.equal(pa, pb) and torch.equal(na, nb)


def test_dense_user_still_gets_valid_negatives():
    # user 0 has all items but one: the only valid negative is item 4
    train = sp.csr_matrix(np.array([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    sampler = BPRSampler(train, torch.Generator().manual_seed(0))
    negatives = sampler.sample_negatives(torch.zeros(200, dtype=torch.long))
    assert set(negatives.tolist()) == {4}


def test_user_with_every_item_is_a_clear_error():
    train = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(TrainingError, match="user 0 interacted with every item"):
        BPRSampler(train, torch.Generator())


def test_build_sampler_without_augmentation_is_the_plain_sampler(small_data):
    built = build_sampler(small_data, torch.Generator().manual_seed(9), AugmentationConfig())
    plain = BPRSampler(small_data.train, torch.Generator().manual_seed(9))
    assert type(built) is BPRSampler and built.prepare_epoch(model=None) == {}
    for (ua, pa, na), (ub, pb, nb) in zip(built.epoch(16), plain.epoch(16)):
        assert torch.equal(ua, ub) and torch.equal(pa, pb) and torch.equal(na, nb)


def test_epoch_negatives_equal_the_shuffled_order_lookup(small_data, monkeypatch):
    """The first round looked up in training order draws exactly what the shuffled lookup drew."""
    fast = BPRSampler(small_data.train, torch.Generator().manual_seed(11))
    plain = BPRSampler(small_data.train, torch.Generator().manual_seed(11))
    monkeypatch.setattr(
        plain,
        "_first_round_collisions",
        lambda order, negatives: plain.is_positive(plain.users[order], negatives),
    )
    for _ in range(3):  # several epochs: the generator streams stay in step
        for (ua, pa, na), (ub, pb, nb) in zip(fast.epoch(13), plain.epoch(13), strict=True):
            assert torch.equal(ua, ub) and torch.equal(pa, pb) and torch.equal(na, nb)
    order = torch.randperm(fast.num_interactions)
    negatives = torch.randint(fast.n_items, (fast.num_interactions,))
    assert torch.equal(
        fast._first_round_collisions(order, negatives),
        fast.is_positive(fast.users[order], negatives),
    )
