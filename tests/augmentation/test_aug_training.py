"""Augmented triplets in BPR training: batch share, both denoising directions, edge-file checks,
config, and the trainer's resume determinism with augmentation on."""

import json

import numpy as np
import pytest
import torch
from crash_helpers import crash_after_epochs

from graphrec.augmentation import write_edges
from graphrec.config import (
    AugmentationConfig,
    EvalConfig,
    TrainConfig,
    load_config,
    model_config_from_dict,
)
from graphrec.data import data_fingerprint
from graphrec.errors import CheckpointError, ConfigError, DataFormatError
from graphrec.io import read_jsonl
from graphrec.models import build_model
from graphrec.training import Trainer
from graphrec.training.edges import load_edges
from graphrec.training.sampler import (
    AugmentedBPRSampler,
    BPRSampler,
    augmented_losses,
    build_sampler,
    select_by_loss,
)


def unseen_pairs(data, count, seed=0):
    """(user, liked, disliked) raw-id triplets over items the user has not trained on."""
    rng = np.random.default_rng(seed)
    edges = []
    for user in rng.permutation(data.n_users)[:count]:
        seen = set(data.train[user].indices.tolist())
        pos, neg = [i for i in rng.permutation(data.n_items) if i not in seen][:2]
        edges.append(
            {
                "user": str(data.user_ids[user]),
                "pos": str(data.item_ids[pos]),
                "neg": str(data.item_ids[neg]),
            }
        )
    return edges


@pytest.fixture
def edge_file(text_data, tmp_path):
    path = tmp_path / "edges.jsonl"
    write_edges(
        path,
        {"dataset": text_data.name, "data_fingerprint": data_fingerprint(text_data)},
        unseen_pairs(text_data, 20),
    )
    return path


def test_each_batch_holds_the_configured_share_of_augmented_triplets(text_data, edge_file):
    edges = load_edges(edge_file, text_data)
    generator = torch.Generator().manual_seed(0)
    sampler = AugmentedBPRSampler(BPRSampler(text_data.train, generator), edges, fraction=0.2)
    sampler.prepare_epoch(model=None)
    pool = set(zip(edges.users.tolist(), edges.pos_items.tolist(), edges.neg_items.tolist()))
    originals = 0
    augmented_seen = set()
    for users, pos, neg in sampler.epoch(batch_size=32):
        n_orig = min(32, text_data.train.nnz - originals)
        k = len(users) - n_orig
        assert k == round(n_orig * 0.2 / 0.8)
        tail = set(zip(users[n_orig:].tolist(), pos[n_orig:].tolist(), neg[n_orig:].tolist()))
        assert tail <= pool
        augmented_seen |= tail
        originals += n_orig
    assert originals == text_data.train.nnz  # the originals are untouched: each once per epoch
    assert augmented_seen == pool  # the pool is walked through, not sampled with gaps


def test_zero_fraction_or_no_file_is_the_plain_sampler(text_data, edge_file):
    plain = build_sampler(text_data, torch.Generator().manual_seed(3), AugmentationConfig())
    assert type(plain) is BPRSampler and plain.prepare_epoch(None) == {}
    zero = build_sampler(
        text_data,
        torch.Generator().manual_seed(3),
        AugmentationConfig(path=str(edge_file), fraction=0.0),
    )
    reference = BPRSampler(text_data.train, torch.Generator().manual_seed(3))
    for (a, b, c), (x, y, z) in zip(zero.epoch(16), reference.epoch(16)):
        assert torch.equal(a, x) and torch.equal(b, y) and torch.equal(c, z)


def test_denoising_directions_pick_opposite_ends():
    losses = torch.tensor([0.1, 2.0, 0.5, 3.0, 0.2, 1.0, 0.7, 0.3, 0.9, 0.4])
    dropped = select_by_loss(losses, "drop", 0.2)
    kept_hard = select_by_loss(losses, "keep_hard", 0.3)
    assert dropped.tolist() == [0, 2, 4, 5, 6, 7, 8, 9]  # 3.0 and 2.0 removed
    assert kept_hard.tolist() == [1, 3, 5]  # the three largest losses only
    assert select_by_loss(losses, "none", 0.5).tolist() == list(range(10))
    assert select_by_loss(losses, "keep_hard", 0.01).tolist() == [3]  # never empty


def test_denoising_uses_the_models_bpr_loss(text_data, edge_file):
    edges = load_edges(edge_file, text_data)
    model = build_model(
        model_config_from_dict({"name": "mf", "embedding_dim": 4}),
        text_data.n_users,
        text_data.n_items,
        text_data.train,
    )
    user_emb, item_emb = model.embeddings()
    u = user_emb[edges.users]
    expected = torch.nn.functional.softplus(
        -((u * item_emb[edges.pos_items]).sum(1) - (u * item_emb[edges.neg_items]).sum(1))
    )
    losses = augmented_losses(model, edges)
    assert torch.allclose(losses, expected.detach(), atol=1e-6)
    for mode, rate, size in (("drop", 0.25, 15), ("keep_hard", 0.29, 6)):
        sampler = AugmentedBPRSampler(
            BPRSampler(text_data.train, torch.Generator()), edges, 0.1, mode, rate
        )
        figures = sampler.prepare_epoch(model)
        assert figures["aug_active"] == size == len(sampler.active)
        active = losses[sampler.active]
        rest = losses[[i for i in range(len(edges)) if i not in set(sampler.active.tolist())]]
        if mode == "drop":
            assert active.max() <= rest.min()
        else:
            assert active.min() >= rest.max()
        assert model.training  # restored after the no-grad pass


def test_edge_file_errors_name_file_line_and_field(text_data, edge_file, tmp_path):
    lines = edge_file.read_text().splitlines()
    cases = {
        "unknown_user": (2, {"user": "nobody"}, "user"),
        "same": (3, {"neg": json.loads(lines[2])["pos"]}, "neg"),
        "no_pos": (4, {"pos": None}, "pos"),
    }
    for name, (line, change, field) in cases.items():
        broken = list(lines)
        broken[line - 1] = json.dumps({**json.loads(broken[line - 1]), **change})
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(broken) + "\n")
        with pytest.raises(DataFormatError) as err:
            load_edges(path, text_data)
        assert f"{path}:{line}:" in str(err.value) and f"field '{field}'" in str(err.value)
    user, item = 0, int(text_data.train[0].indices[0])
    trained = tmp_path / "trained.jsonl"
    write_edges(
        trained,
        {"data_fingerprint": data_fingerprint(text_data)},
        [
            {
                "user": text_data.user_ids[user],
                "pos": text_data.item_ids[item],
                "neg": text_data.item_ids[item - 1 if item else 1],
            }
        ],
    )
    with pytest.raises(DataFormatError, match="liked item is already a training interaction"):
        load_edges(trained, text_data)
    write_edges(
        trained,
        {"data_fingerprint": data_fingerprint(text_data)},
        [
            {
                "user": text_data.user_ids[user],
                "pos": text_data.item_ids[item - 1 if item else 1],
                "neg": text_data.item_ids[item],
            }
        ],
    )
    with pytest.raises(DataFormatError, match="disliked item is already a training interaction"):
        load_edges(trained, text_data)
    other = tmp_path / "other.jsonl"
    write_edges(other, {"data_fingerprint": "0" * 64}, [])
    with pytest.raises(DataFormatError, match="another split"):
        load_edges(other, text_data)
    (tmp_path / "junk.jsonl").write_text("not json\n")
    with pytest.raises(DataFormatError, match=r"junk.jsonl:1: not JSON"):
        load_edges(tmp_path / "junk.jsonl", text_data)


def test_config_fields_are_typed_and_checked():
    config = load_config(
        None,
        [
            "train.augmentation.path=a.jsonl",
            "train.augmentation.denoise=keep_hard",
            "train.augmentation.rate=0.29",
            "train.augmentation.fraction=0.05",
        ],
    )
    assert config.train.augmentation == AugmentationConfig("a.jsonl", 0.05, "keep_hard", 0.29)
    for bad in (
        "train.augmentation.fraction=1.0",
        "train.augmentation.denoise=random",
        "train.augmentation.rate=2",
        "train.augmentation.size=3",
    ):
        with pytest.raises(ConfigError, match="train.augmentation"):
            load_config(None, [bad])


def make_trainer(data, run_dir, augmentation, epochs=4, seed=0):
    torch.manual_seed(seed)
    model = build_model(
        model_config_from_dict({"name": "lightgcn", "embedding_dim": 8, "num_layers": 2}),
        data.n_users,
        data.n_items,
        data.train,
    )
    train = TrainConfig(
        epochs=epochs,
        batch_size=64,
        learning_rate=0.01,
        eval_every=1,
        patience=0,
        seed=seed,
        progress=False,
        augmentation=augmentation,
    )
    return Trainer(model, data, train, EvalConfig(ks=[10, 20], batch_size=16), run_dir=run_dir)


@pytest.mark.parametrize("denoise", ["none", "drop", "keep_hard"])
def test_training_with_augmentation_resumes_identically(text_data, edge_file, tmp_path, denoise):
    augmentation = AugmentationConfig(path=str(edge_file), fraction=0.2, denoise=denoise, rate=0.3)
    reference = make_trainer(text_data, tmp_path / "ref", augmentation).fit()
    records = read_jsonl(tmp_path / "ref" / "metrics.jsonl")
    assert all(
        r["aug_active"] == {"none": 20, "drop": 14, "keep_hard": 6}[denoise] for r in records
    )
    plain = make_trainer(text_data, tmp_path / "plain", AugmentationConfig()).fit()
    assert plain.test.metrics != reference.test.metrics  # the augmented triplets do change training

    with crash_after_epochs(2):
        make_trainer(text_data, tmp_path / "run", augmentation).fit()
    resumed = make_trainer(text_data, tmp_path / "run", augmentation, seed=0)
    torch.nn.init.normal_(resumed.model.user_embedding.weight)
    assert resumed.fit().test.metrics == reference.test.metrics


def test_changed_edge_file_refuses_to_resume(text_data, edge_file, tmp_path):
    augmentation = AugmentationConfig(path=str(edge_file), fraction=0.2)
    make_trainer(text_data, tmp_path / "run", augmentation, epochs=1).fit()
    moved = tmp_path / "moved.jsonl"
    moved.write_bytes(edge_file.read_bytes())
    make_trainer(
        text_data, tmp_path / "run", AugmentationConfig(path=str(moved), fraction=0.2), epochs=2
    ).fit()
    lines = edge_file.read_text().splitlines()
    edge_file.write_text("\n".join(lines[:-1]) + "\n")  # one triplet fewer
    with pytest.raises(CheckpointError, match="different settings"):
        make_trainer(text_data, tmp_path / "run", augmentation, epochs=3).fit()


def test_distributed_shards_of_an_augmented_batch_cover_it(text_data, edge_file):
    from graphrec.training.distributed import DistributedContext

    sampler = build_sampler(
        text_data,
        torch.Generator().manual_seed(1),
        AugmentationConfig(path=str(edge_file), fraction=0.3),
    )
    sampler.prepare_epoch(None)
    twin = build_sampler(
        text_data,
        torch.Generator().manual_seed(1),
        AugmentationConfig(path=str(edge_file), fraction=0.3),
    )
    twin.prepare_epoch(None)
    for (users, pos, neg), (u2, p2, n2) in zip(sampler.epoch(50), twin.epoch(50)):
        assert (
            torch.equal(users, u2) and torch.equal(pos, p2) and torch.equal(neg, n2)
        )  # every rank draws alike
        pieces = [users[slice(*DistributedContext(r, 3).shard(len(users)))] for r in range(3)]
        assert torch.equal(torch.cat(pieces), users)
