"""Reusable experiment steps: train a variant, denoise-and-retrain, noise robustness, cold start.

Everything goes through graphrec's :class:`~graphrec.training.trainer.Trainer` (early
stopping on validation, test at the best validation epoch) and evaluation harness, and
models through :func:`graphrec.models.build_model`; the one encoding of the text views
given to these steps is passed to every aligned variant as its prepared inputs, re-based
on the variant's training matrix (:func:`views_for_train`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from alignment.coldstart import evaluate_cold_start, text_item_knn_scorer, text_profile_scorer
from alignment.denoise import (
    DenoiseReport,
    denoise_interactions,
    interaction_agreement,
    train_edges,
)
from alignment.model import AlignedConfig, AlignedInputs
from alignment.noise import inject_noise
from alignment.texts import mean_profiles
from alignment.views import TextViews
from graphrec.config import EvalConfig, TrainConfig, model_config_from_dict
from graphrec.data.dataset import InteractionData
from graphrec.evaluation import EvaluationResult, Evaluator
from graphrec.models import Recommender, build_model, prepare_inputs
from graphrec.training.run import seed_everything
from graphrec.training.trainer import Trainer

log = logging.getLogger(__name__)


@dataclass
class VariantResult:
    """Outcome of one trained variant: test (and valid) evaluations, the model, extra info."""

    test: EvaluationResult
    valid: EvaluationResult | None
    best_epoch: int
    model: Recommender
    info: dict


def views_for_train(views: TextViews, train: sp.csr_matrix) -> TextViews:
    """``views`` with mean user profiles recomputed from ``train`` (after noise or denoising).

    Item embeddings are unchanged; only the profile, which depends on the training
    interactions, is rebuilt, so it never sees edges the model does not train on.
    """
    if views.meta.get("user_profile", "mean") != "mean":
        return views
    return TextViews(
        mean_profiles(train, views.item),
        views.item,
        views.user_ids,
        views.item_ids,
        dict(views.meta),
    )


def build_variant(
    model: Mapping[str, Any], data: InteractionData, views: TextViews | None, seed: int
) -> Recommender:
    """The model of config section ``model`` on ``data`` (aligned variants on ``views`` re-based on ``data.train``)."""
    config = model_config_from_dict(dict(model))
    seed_everything(seed)
    prepared = None
    if isinstance(config, AlignedConfig) and views is not None:
        prepared = AlignedInputs(
            views_for_train(views, data.train),
            prepare_inputs(config.backbone, data.train, data),
        )
    return build_model(config, data.n_users, data.n_items, data.train, data=data, prepared=prepared)


def train_variant(
    model: Mapping[str, Any],
    data: InteractionData,
    train: TrainConfig,
    evaluation: EvalConfig,
    views: TextViews | None = None,
    seed: int = 0,
    run_dir: str | Path | None = None,
    exclude: sp.csr_matrix | None = None,
) -> VariantResult:
    """Train ``model`` (a config mapping) on ``data`` and evaluate the best validation epoch.

    ``exclude``: the matrix masked at the final evaluation (default ``data.train``); a
    denoised run passes the training matrix it was given before cleaning, so that every
    variant masks the same items.
    """
    train = copy.deepcopy(train)
    train.seed = seed
    net = build_variant(model, data, views, seed)
    trainer = Trainer(net, data, train, evaluation, run_dir=run_dir)
    result = trainer.fit()
    test, valid = result.test, result.valid
    if exclude is not None:
        evaluator = Evaluator(
            ks=tuple(evaluation.ks),
            metrics=tuple(evaluation.metrics),
            batch_size=evaluation.batch_size,
            item_popularity=data.item_popularity(),
        )
        scorer = net.scorer()
        test = evaluator.evaluate(scorer, data.test, exclude=[exclude])
        valid = (
            evaluator.evaluate(scorer, data.valid, exclude=[exclude])
            if data.valid is not None
            else None
        )
    return VariantResult(
        test=test,
        valid=valid,
        best_epoch=result.best_epoch,
        model=net,
        info={"epochs_run": result.epochs_run, "seconds_per_epoch": result.seconds_per_epoch},
    )


def denoise_and_train(
    scoring_model: Mapping[str, Any],
    final_model: Mapping[str, Any],
    data: InteractionData,
    train: TrainConfig,
    evaluation: EvalConfig,
    views: TextViews,
    seed: int = 0,
    drop_fraction: float = 0.1,
    truth: sp.spmatrix | None = None,
    scorer_result: VariantResult | None = None,
) -> tuple[VariantResult, DenoiseReport]:
    """Train an aligned (contrastive) model, drop the ``drop_fraction`` least consistent
    training edges (:func:`~alignment.denoise.interaction_agreement`), retrain ``final_model``
    on the rest; evaluation masks the original training matrix.

    ``scorer_result``: an already trained aligned model on ``data`` to score with (saves a run).
    """
    if scorer_result is None:
        scorer_result = train_variant(scoring_model, data, train, evaluation, views, seed)
    users, items = train_edges(data.train)
    scores = interaction_agreement(scorer_result.model, users, items)
    cleaned, report = denoise_interactions(data, scores, drop_fraction=drop_fraction, truth=truth)
    final = train_variant(final_model, cleaned, train, evaluation, views, seed, exclude=data.train)
    final.info["denoise"] = report.to_dict()
    return final, report


def noise_robustness(
    data: InteractionData,
    variants: Mapping[str, Callable[[InteractionData, int, sp.csr_matrix | None], VariantResult]],
    levels: Sequence[float] = (0.0, 0.05, 0.1, 0.2),
    seeds: Sequence[int] = (0, 1, 2),
    metric: str = "recall@20",
    noise_seed_offset: int = 1000,
    on_result: Callable[[dict], None] | None = None,
) -> dict:
    """Train every variant on data with ``level`` fake training edges injected, for each seed.

    Args:
        variants: name -> ``fn(noisy_data, seed, fake) -> VariantResult`` (``fake`` is the
            injected edges' matrix, for detection reports; ``None`` at level 0).
        levels: shares of fake edges relative to the training interactions.
        metric: the test metric tabulated.
        on_result: called with each finished record (for progress logs and partial saves).

    Returns:
        ``{"metric", "levels", "results": {variant: [mean per level]}, "std": {...},
        "records": [{"variant", "noise", "seed", "value", ...}], "degradation": {variant: [relative loss vs level 0]}}``
        — the format :mod:`graphrec.reporting` plots.
    """
    records = []
    for level in levels:
        for seed in seeds:
            if level > 0:
                noisy, fake = inject_noise(data, level, seed=noise_seed_offset + seed)
            else:
                noisy, fake = data, None
            for name, fn in variants.items():
                result = fn(noisy, seed, fake)
                record = {
                    "variant": name,
                    "noise": float(level),
                    "seed": int(seed),
                    "value": float(result.test.metrics[metric]),
                    "best_epoch": result.best_epoch,
                    **({"denoise": result.info["denoise"]} if "denoise" in result.info else {}),
                }
                records.append(record)
                if on_result is not None:
                    on_result(record)
    return summarize_noise(records, metric)


def summarize_noise(records: Sequence[dict], metric: str) -> dict:
    """Means, standard deviations and relative degradation per variant and noise level."""
    levels = sorted({r["noise"] for r in records})
    names = list(dict.fromkeys(r["variant"] for r in records))
    results, std, degradation = {}, {}, {}
    for name in names:
        means, stds = [], []
        for level in levels:
            values = [r["value"] for r in records if r["variant"] == name and r["noise"] == level]
            means.append(float(np.mean(values)) if values else None)
            stds.append(float(np.std(values)) if values else None)
        results[name], std[name] = means, stds
        base = means[0] if levels and levels[0] == 0.0 else None
        degradation[name] = [
            None if (base in (None, 0) or m is None) else (base - m) / base for m in means
        ]
    return {
        "metric": metric,
        "levels": levels,
        "results": results,
        "std": std,
        "degradation": degradation,
        "records": list(records),
    }


def cold_start_baselines(
    cold: InteractionData, views: TextViews, ks: Sequence[int] = (10, 20), k_neighbours: int = 50
) -> dict[str, EvaluationResult]:
    """Text-only baselines on a cold-start split: profile cosine and item-kNN over text."""
    profiles = mean_profiles(cold.train, views.item)
    return {
        "text profile cosine": evaluate_cold_start(
            text_profile_scorer(profiles, views.item), cold, ks=ks
        ),
        "text item-kNN": evaluate_cold_start(
            text_item_knn_scorer(cold.train, views.item, k=k_neighbours), cold, ks=ks
        ),
    }
