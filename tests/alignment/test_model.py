"""The aligned wrapper: config, fused/cold-item embeddings, training through the unchanged trainer."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alignment.model import AlignedConfig, AlignedRecommender
from graphrec.config import (
    EvalConfig,
    TrainConfig,
    dump_config,
    load_config,
    model_config_from_dict,
)
from graphrec.errors import ConfigError
from graphrec.models import build_model
from graphrec.models.lightgcn import LightGCNConfig
from graphrec.training.trainer import Trainer


def make(data, views, seed=0, **values):
    torch.manual_seed(seed)
    config = model_config_from_dict(
        {
            "name": "aligned",
            "embedding_dim": 16,
            "backbone": {"name": "lightgcn", "num_layers": 2},
            **values,
        }
    )
    return AlignedRecommender(data.n_users, data.n_items, config, data.train, text_views=views)


def test_plugin_registers_aligned_without_graphrec_importing_alignment():
    code = (
        "import sys, graphrec, graphrec.models as m, graphrec.training; "
        "assert 'alignment' not in sys.modules; names = m.available_models(); "
        "print(names, 'alignment' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "'aligned'" in out and out.strip().endswith("True")


def test_config_nested_backbone_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "model:\n  name: aligned\n  backbone: {name: lightgcn, num_layers: 3}\n  weight: 0.05\n"
    )
    config = load_config(path, ["model.backbone.num_layers=1", "model.temperature=0.5"])
    assert isinstance(config.model, AlignedConfig) and isinstance(
        config.model.backbone, LightGCNConfig
    )
    assert config.model.backbone.num_layers == 1 and config.model.temperature == 0.5
    (tmp_path / "again.yaml").write_text(dump_config(config))
    assert load_config(tmp_path / "again.yaml").model == config.model


@pytest.mark.parametrize(
    "values, message",
    [
        ({"backbone": {"name": "aligned"}}, "cannot be `aligned`"),
        ({"backbone": {"name": "lightgcn", "bogus": 1}}, "model.backbone.bogus"),
        ({"temperature": 0}, "model.temperature: 0.0 is out of range"),
        ({"objective": "generative", "fusion_weight": 0.2}, "needs objective=contrastive"),
        ({"objective": "generative", "text_bpr_weight": 0.2}, "needs objective=contrastive"),
        ({"backbone": "lightgcn"}, "expected a model section"),
    ],
)
def test_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        model_config_from_dict({"name": "aligned", **values})


def test_needs_texts_from_the_dataset_or_a_file(topics):
    config = model_config_from_dict({"name": "aligned"})
    with pytest.raises(ConfigError, match="needs the dataset's item texts"):
        build_model(config, topics.n_users, topics.n_items, topics.train)


def test_text_views_file_in_config(topics, topic_views, tmp_path):
    topic_views.save(tmp_path / "views.npz")
    config = model_config_from_dict(
        {"name": "aligned", "embedding_dim": 8, "text_views": str(tmp_path / "views.npz")}
    )
    model = build_model(config, topics.n_users, topics.n_items, topics.train, data=topics)
    np.testing.assert_array_equal(model.item_text.numpy(), topic_views.item)
    assert "item_text" not in model.state_dict()  # derived data stays out of checkpoints


def test_fused_and_cold_item_embeddings_follow_the_formula(topics, topic_views):
    model = make(topics, topic_views, fusion_weight=0.5)
    model.eval()
    with torch.no_grad():
        users, items = model.embeddings()
        graph_users, graph_items = model.graph_embeddings()
        text = F.normalize(model.projector(model.item_text), dim=-1)
    cold = model.cold_items
    assert cold.any() and (~cold).any()  # the topic data has items without training interactions
    scale = graph_items[~cold].norm(dim=-1).mean()
    torch.testing.assert_close(users, graph_users)
    torch.testing.assert_close(items[~cold], graph_items[~cold] + 0.5 * scale * text[~cold])
    torch.testing.assert_close(items[cold], 1.5 * scale * text[cold])


def test_without_projection_scores_are_the_backbones(topics, topic_views):
    model = make(topics, topic_views, objective="generative", cold_items="graph")
    torch.testing.assert_close(model.embeddings()[1], model.graph_embeddings()[1])


def _train(model, data, tmp_path=None, epochs=4, **train):
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=512,
        learning_rate=0.01,
        eval_every=1,
        patience=0,
        seed=3,
        progress=False,
        num_threads=1,
        **train,
    )
    return Trainer(
        model, data, cfg, EvalConfig(ks=[20], metrics=["recall", "ndcg"]), run_dir=tmp_path
    ).fit()


def test_weight_zero_trains_exactly_like_the_backbone(topics, topic_views):
    aligned = make(topics, topic_views, weight=0.0, cold_items="graph")
    torch.manual_seed(0)
    plain = build_model(
        LightGCNConfig(embedding_dim=16, num_layers=2), topics.n_users, topics.n_items, topics.train
    )
    a, b = _train(aligned, topics, epochs=2), _train(plain, topics, epochs=2)
    assert a.test.metrics == b.test.metrics


@pytest.mark.parametrize("objective", ["contrastive", "generative"])
def test_resume_after_interruption_equals_uninterrupted_run(
    topics, topic_views, tmp_path, objective
):
    full = _train(
        make(topics, topic_views, objective=objective), topics, tmp_path / "full", epochs=4
    )
    _train(make(topics, topic_views, objective=objective), topics, tmp_path / "cut", epochs=2)
    resumed = _train(
        make(topics, topic_views, objective=objective), topics, tmp_path / "cut", epochs=4
    )
    assert resumed.test.metrics == full.test.metrics
    records = [
        json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4] and all("align" in r for r in records)
    assert (tmp_path / "cut" / "checkpoints" / "best.pt").exists()


def test_early_stopping_works_through_the_wrapper(topics, topic_views):
    result = _train(
        make(topics, topic_views),
        topics,
        epochs=60,
    )
    assert result.epochs_run <= 60


def test_alignment_makes_graph_and_text_views_agree(topics, topic_views):
    model = make(topics, topic_views, weight=1.0)

    def agreement():
        with torch.no_grad():
            users, items = model.graph_embeddings()
            zu, zi = model.projected_text()
            return float(F.cosine_similarity(items, zi).mean())

    before = agreement()
    _train(model, topics, epochs=5)
    assert agreement() > before + 0.2


@pytest.mark.parametrize("text_bpr_weight", [0.0, 1.0])
def test_cold_items_become_recommendable_through_text(topics, topic_views, text_bpr_weight):
    """After training, cold items of a user's favourite topic outrank the other cold items."""
    model = make(topics, topic_views, weight=1.0, text_bpr_weight=text_bpr_weight)
    _train(model, topics, epochs=12)
    cold = torch.nonzero(model.cold_items).ravel()
    user_topic = np.asarray(topics.meta["user_topic"])
    item_topic = torch.as_tensor(topics.meta["item_topic"])
    scores = model.scorer()(torch.arange(topics.n_users))[:, cold]
    top = cold[scores.argmax(dim=1)]
    hit_rate = float((item_topic[top].numpy() == user_topic).mean())
    assert hit_rate > 0.5  # chance: 0.25 (4 topics)
