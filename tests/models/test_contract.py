"""The model contract: every registered model must pass these tests."""
import io

import pytest
import torch

from graphrec.config import model_config_from_dict
from graphrec.models import MODELS, available_models, build_model
from graphrec.models.base import LossOutput, Recommender
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint

# graphrec's own models; plugins (e.g. alignment's `aligned`, which needs a dataset with texts)
# run this same suite from their own tests with their own factory.
MODEL_NAMES = [name for name in available_models() if MODELS[name].__module__.startswith("graphrec.")]


def make(name, data, seed=0, **overrides):
    torch.manual_seed(seed)
    config = model_config_from_dict({"name": name, "embedding_dim": 16, **overrides})
    return build_model(config, data.n_users, data.n_items, data.train)


def batch(data, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    coo = data.train.tocoo()
    idx = torch.randint(coo.nnz, (size,), generator=g)
    users = torch.as_tensor(coo.row, dtype=torch.long)[idx]
    pos = torch.as_tensor(coo.col, dtype=torch.long)[idx]
    neg = torch.randint(data.n_items, (size,), generator=g)
    return users, pos, neg


def test_registry_has_the_baseline_models():
    assert {"mf", "lightgcn"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
class TestModelContract:
    def test_is_a_recommender_with_config(self, name, small_data):
        model = make(name, small_data)
        assert isinstance(model, Recommender)
        assert model.name == name
        assert model.config.name == name

    def test_embedding_shapes(self, name, small_data):
        users, items = make(name, small_data).embeddings()
        assert users.shape == (small_data.n_users, 16)
        assert items.shape == (small_data.n_items, 16)
        assert torch.isfinite(users).all() and torch.isfinite(items).all()

    def test_score_shape_and_scorer_agree(self, name, small_data):
        model = make(name, small_data)
        users = torch.tensor([0, 5, 7])
        direct = model.score(users)
        assert direct.shape == (3, small_data.n_items)
        via_scorer = model.scorer()(users)
        assert not via_scorer.requires_grad
        torch.testing.assert_close(direct.detach(), via_scorer)

    def test_scorer_restores_training_mode(self, name, small_data):
        model = make(name, small_data)
        model.train()
        model.scorer()
        assert model.training

    def test_loss_is_finite_scalar_with_gradients(self, name, small_data):
        model = make(name, small_data)
        out = model.loss(*batch(small_data))
        assert isinstance(out, LossOutput)
        assert out.loss.dim() == 0 and torch.isfinite(out.loss)
        assert all(isinstance(v, float) for v in out.parts.values())
        out.loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)

    def test_training_steps_reduce_the_loss(self, name, small_data):
        model = make(name, small_data)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        data = batch(small_data, size=64)
        first = float(model.loss(*data).loss.detach())
        for _ in range(30):
            optimizer.zero_grad()
            model.loss(*data).loss.backward()
            optimizer.step()
        assert float(model.loss(*data).loss.detach()) < 0.7 * first

    def test_same_seed_same_model(self, name, small_data):
        a = make(name, small_data, seed=3).scorer()(torch.arange(4))
        b = make(name, small_data, seed=3).scorer()(torch.arange(4))
        c = make(name, small_data, seed=4).scorer()(torch.arange(4))
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, c)

    def test_checkpoint_round_trip(self, name, small_data, tmp_path):
        model = make(name, small_data, seed=1)
        save_checkpoint(tmp_path / "m.pt", {"model_state": model.state_dict()})
        other = make(name, small_data, seed=2)
        other.load_state_dict(load_checkpoint(tmp_path / "m.pt")["model_state"])
        users = torch.arange(small_data.n_users)
        torch.testing.assert_close(model.scorer()(users), other.scorer()(users))

    def test_nothing_dense_of_size_users_by_items(self, name, small_data):
        model = make(name, small_data)
        n_pairs = small_data.n_users * small_data.n_items
        for tensor in list(model.parameters()) + list(model.buffers()) + list(vars(model).values()):
            if isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided:
                assert tensor.numel() < n_pairs, "a dense users x items (or larger) tensor is kept by the model"
