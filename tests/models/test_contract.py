"""The model contract: every registered model must pass these tests.

Trainable models pass :class:`TestModelContract`; closed-form models
(``trainable = False``: fitted once, no loss, no embeddings) pass
:class:`TestClosedFormContract` instead.
"""

import pytest
import scipy.sparse as sp
import torch

from graphrec.config import model_config_from_dict
from graphrec.errors import TrainingError
from graphrec.models import MODELS, available_models, build_model
from graphrec.models.base import ClosedFormRecommender, LossOutput, Recommender
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint

# graphrec's own models; plugins (e.g. alignment's `aligned`, which needs a dataset with texts)
# run this same suite from their own tests with their own factory.
ALL_NAMES = [name for name in available_models() if MODELS[name].__module__.startswith("graphrec.")]
MODEL_NAMES = [name for name in ALL_NAMES if MODELS[name].trainable]
CLOSED_FORM_NAMES = [name for name in ALL_NAMES if not MODELS[name].trainable]


def make(name, data, seed=0, **overrides):
    """A model of ``name``; closed-form models come fitted."""
    torch.manual_seed(seed)
    sizes = {"embedding_dim": 16} if MODELS[name].trainable else {}
    config = model_config_from_dict({"name": name, **sizes, **overrides})
    model = build_model(config, data.n_users, data.n_items, data.train)
    if not model.trainable:
        model.fit()
    return model


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
    assert {"ease", "itemknn", "popularity"} <= set(CLOSED_FORM_NAMES)


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
        for value in out.parts.values():  # floats, or detached 0-d tensors read once per epoch
            assert isinstance(value, float) or (
                isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad
            )
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
                assert tensor.numel() < n_pairs, (
                    "a dense users x items (or larger) tensor is kept by the model"
                )


@pytest.mark.parametrize("name", CLOSED_FORM_NAMES)
class TestClosedFormContract:
    """Closed-form models: fitted once by ``fit()``; scores from the users' sparse training rows."""

    def test_is_a_closed_form_recommender_with_config(self, name, small_data):
        model = make(name, small_data)
        assert isinstance(model, ClosedFormRecommender) and not model.trainable
        assert model.name == name and model.config.name == name
        assert not list(model.parameters()), "closed-form models have nothing for an optimiser"

    def test_score_shape_and_scorer_agree(self, name, small_data):
        model = make(name, small_data)
        users = torch.tensor([0, 5, 7])
        direct = model.score(users)
        assert direct.shape == (3, small_data.n_items)
        assert torch.isfinite(direct).all()
        via_scorer = model.scorer()(users)
        assert not via_scorer.requires_grad
        torch.testing.assert_close(direct, via_scorer)

    def test_unfitted_model_refuses_to_score(self, name, small_data):
        model = build_model(
            model_config_from_dict({"name": name}),
            small_data.n_users,
            small_data.n_items,
            small_data.train,
        )
        with pytest.raises(TrainingError, match="not fitted"):
            model.scorer()
        with pytest.raises(TrainingError, match="not fitted"):
            model.score(torch.tensor([0]))

    def test_no_loss_and_no_embeddings(self, name, small_data):
        model = make(name, small_data)
        with pytest.raises(TrainingError, match="closed-form"):
            model.loss(*batch(small_data))
        with pytest.raises(NotImplementedError, match="closed-form"):
            model.embeddings()

    def test_fit_is_deterministic_and_ignores_the_seed(self, name, small_data):
        users = torch.arange(small_data.n_users)
        a = make(name, small_data, seed=3).scorer()(users)
        b = make(name, small_data, seed=4).scorer()(users)
        assert torch.equal(a, b)

    def test_checkpoint_round_trip(self, name, small_data, tmp_path):
        model = make(name, small_data)
        save_checkpoint(tmp_path / "m.pt", {"model_state": model.state_dict()})
        other = build_model(
            model.config, small_data.n_users, small_data.n_items, small_data.train
        )  # not fitted
        other.load_state_dict(
            load_checkpoint(tmp_path / "m.pt")["model_state"]
        )  # weights_only=True
        users = torch.arange(small_data.n_users)
        torch.testing.assert_close(model.scorer()(users), other.scorer()(users))

    def test_nothing_dense_of_size_users_by_items(self, name, small_data, monkeypatch):
        full = (small_data.n_users, small_data.n_items)

        def refuse_full(original):
            def densify(self, *args, **kwargs):
                assert self.shape != full, "the user x item training matrix was densified"
                return original(self, *args, **kwargs)

            return densify

        for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
            monkeypatch.setattr(cls, "toarray", refuse_full(cls.toarray))
            monkeypatch.setattr(cls, "todense", refuse_full(cls.todense))
        model = make(name, small_data)
        model.scorer()(torch.arange(small_data.n_users))
        n_pairs = small_data.n_users * small_data.n_items
        for tensor in list(model.buffers()) + list(vars(model).values()):
            if not (isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided):
                continue
            if (
                tensor.dim() == 2
                and tensor.shape[0] == small_data.n_items
                and tensor.shape[1] <= small_data.n_items
            ):
                continue  # item x item (EASE's B) or item x k (ItemKNN's neighbours): no user dimension
            assert tensor.numel() < n_pairs, (
                "a dense users x items (or larger) tensor is kept by the model"
            )
