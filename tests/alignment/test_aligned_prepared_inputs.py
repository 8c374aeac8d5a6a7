"""The alignment models on the preparation seam: texts are encoded in ``prepare`` (once per
``InputCache``), constructors take the prepared embeddings / views and read nothing."""

import numpy as np
import pytest
import torch

import alignment.linear
import alignment.model
from alignment.alpharec import AlphaRec
from alignment.experiments import build_variant
from alignment.model import AlignedInputs, AlignedRecommender
from alignment.textinit import TextInitInputs
from graphrec.config import model_config_from_dict
from graphrec.models import InputCache, build_model, prepare_inputs

TEXT_MODELS = {
    "text_ease": {"l2": 20.0, "encoder": "all-MiniLM-L6-v2"},  # the others' default encoder
    "alpharec": {"embedding_dim": 8, "hidden_dim": 16},
    "text_init": {"backbone": {"name": "lightgcn", "embedding_dim": 8}},
}


@pytest.fixture
def counted_encodings(monkeypatch, topic_views):
    """Replace the item-text encoding by the topic views' vectors and count the calls."""
    calls = []

    def fake(data, item_text="catalogue+attributes", encoder="x", cache_dir=None, kg=None):
        calls.append(item_text)
        return alignment.linear.ItemTexts(topic_views.item.copy())

    monkeypatch.setattr(alignment.linear, "prepared_item_texts", fake)
    return calls


def test_text_models_share_one_encoding_through_a_cache(topics, topic_views, counted_encodings):
    cache = InputCache()
    models = {
        name: build_model(
            model_config_from_dict({"name": name, **values}),
            topics.n_users,
            topics.n_items,
            topics.train,
            data=topics,
            cache=cache,
        )
        for name, values in TEXT_MODELS.items()
    }
    assert len(counted_encodings) == 1
    np.testing.assert_array_equal(models["text_ease"].item_text.numpy(), topic_views.item)
    other = model_config_from_dict({"name": "text_ease", "item_text": "catalogue"})
    build_model(other, topics.n_users, topics.n_items, topics.train, data=topics, cache=cache)
    assert counted_encodings == ["catalogue+attributes", "catalogue"]
    # without a shared cache, every build encodes
    build_model(other, topics.n_users, topics.n_items, topics.train, data=topics)
    assert len(counted_encodings) == 3


def test_text_init_inputs_hold_the_backbones_own(topics, counted_encodings):
    config = model_config_from_dict(
        {"name": "text_init", "backbone": {"name": "kglightgcn", "embedding_dim": 8}}
    )
    inputs = prepare_inputs(config, topics.train, topics)
    assert isinstance(inputs, TextInitInputs)
    assert inputs.backbone.n_items == topics.n_items  # the backbone's collaborative KG
    model = build_model(config, topics.n_users, topics.n_items, topics.train, prepared=inputs)
    assert model.backbone.ckg is inputs.backbone


def test_aligned_builds_from_prepared_views_without_the_dataset(topics, topic_views, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("the constructor must not build text views")

    config = model_config_from_dict(
        {"name": "aligned", "embedding_dim": 8, "backbone": {"name": "lightgcn"}}
    )
    inputs = AlignedInputs(topic_views)
    monkeypatch.setattr(alignment.model, "text_views_for", no_reading)
    torch.manual_seed(0)
    prepared = build_model(config, topics.n_users, topics.n_items, topics.train, prepared=inputs)
    torch.manual_seed(0)
    direct = AlignedRecommender(topics.n_users, topics.n_items, config, topics.train, topic_views)
    for key, value in direct.state_dict().items():
        torch.testing.assert_close(prepared.state_dict()[key], value)
    np.testing.assert_array_equal(prepared.item_text.numpy(), topic_views.item)


def test_aligned_views_are_built_once_per_cache(topics, topic_views, monkeypatch):
    calls = []

    def views_for(config, data, train, n_users, n_items):
        calls.append(config.objective)
        return topic_views

    monkeypatch.setattr(alignment.model, "text_views_for", views_for)
    cache = InputCache()
    for objective in ("contrastive", "generative"):
        config = model_config_from_dict(
            {"name": "aligned", "embedding_dim": 8, "objective": objective}
        )
        build_model(config, topics.n_users, topics.n_items, topics.train, data=topics, cache=cache)
    assert calls == ["contrastive"]


def test_experiment_variants_use_the_given_views_rebased_on_their_training_matrix(
    topics, topic_views, monkeypatch
):
    monkeypatch.setattr(
        alignment.model, "text_views_for", lambda *a: pytest.fail("views were rebuilt")
    )
    section = {"name": "aligned", "embedding_dim": 8, "backbone": {"name": "lightgcn"}}
    model = build_variant(section, topics, topic_views, seed=0)
    np.testing.assert_array_equal(model.item_text.numpy(), topic_views.item)
    torch.manual_seed(0)
    direct = AlignedRecommender(
        topics.n_users, topics.n_items, model.config, topics.train, topic_views
    )
    for key, value in direct.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)


def test_alpharec_fold_in_runs_the_mlp_once(topics, topic_views):
    config = model_config_from_dict({"name": "alpharec", "embedding_dim": 8, "hidden_dim": 16})
    torch.manual_seed(0)
    model = AlphaRec(topics.n_users, topics.n_items, config, topics.train, topic_views.item)
    calls = []
    model.mlp.register_forward_hook(lambda *args: calls.append(1))
    rows = topics.train[:5]
    scores = model.fold_in(rows)
    assert len(calls) == 2  # the users' and items' text once, the new users' mean text once
    _, items = model.embeddings()
    torch.testing.assert_close(scores, model.fold_in_embeddings(rows) @ items.T)
