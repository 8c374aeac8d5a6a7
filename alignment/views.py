"""The text view of a dataset: one embedding per user and per item.

:class:`TextViews` holds ``user [n_users, D]`` and ``item [n_items, D]`` text
embeddings (float32, L2-normalised) aligned with a dataset's internal ids, plus
the provenance of how they were made.  :func:`build_text_views` makes them from a
dataset (item text -> encoder -> mean or LLM user profiles over the training
matrix); :meth:`TextViews.save` / :meth:`TextViews.load` store them by raw id in
an ``.npz`` file, so expensive views (LLM profiles) are built once and reused
through the model config key ``text_views``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from alignment.encoders import (
    EMBEDDED_ENCODER,
    EmbeddingCache,
    SentenceEncoder,
    TextEncoder,
    default_cache_dir,
    encode_texts,
)
from alignment.texts import item_texts, item_titles, llm_profiles, mean_profiles
from graphrec.data.dataset import InteractionData
from graphrec.errors import DataFormatError
from graphrec.io import atomic_open


@dataclass
class TextViews:
    """User and item text embeddings aligned with internal ids.

    Attributes:
        user: ``[n_users, D]`` float32 profile embeddings.
        item: ``[n_items, D]`` float32 item text embeddings.
        user_ids, item_ids: raw ids of the rows (for saving and re-aligning).
        meta: provenance (encoder, item text mode, profile mode, LLM report).
    """

    user: np.ndarray
    item: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user = np.ascontiguousarray(self.user, dtype=np.float32)
        self.item = np.ascontiguousarray(self.item, dtype=np.float32)
        if self.user.ndim != 2 or self.item.ndim != 2 or self.user.shape[1] != self.item.shape[1]:
            raise ValueError(
                f"user {self.user.shape} and item {self.item.shape} views must be 2-D with the same width"
            )
        if len(self.user) != len(self.user_ids) or len(self.item) != len(self.item_ids):
            raise ValueError("text views and their id arrays differ in length")

    @property
    def dim(self) -> int:
        return int(self.item.shape[1])

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (vectors, raw ids as unicode, meta as JSON) atomically."""
        with atomic_open(path, "wb", encoding=None) as handle:
            np.savez(
                handle,
                user=self.user,
                item=self.item,
                user_ids=np.asarray(self.user_ids, dtype=str),
                item_ids=np.asarray(self.item_ids, dtype=str),
                meta=np.asarray(json.dumps(self.meta)),
            )

    @classmethod
    def load(cls, path: str | Path, data: InteractionData | None = None) -> TextViews:
        """Read views saved by :meth:`save`; with ``data``, rows are re-ordered to its internal ids.

        Raises :class:`~graphrec.errors.DataFormatError` naming the file when it is
        malformed or lacks a user or item of ``data``.
        """
        path = Path(path)
        if not path.is_file():
            raise DataFormatError("text views file not found", path=path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in ("user", "item", "user_ids", "item_ids", "meta")}
        except (KeyError, ValueError, OSError) as err:
            raise DataFormatError(f"not a text views file: {err}", path=path) from err
        meta = json.loads(str(arrays["meta"]))
        views = cls(
            arrays["user"],
            arrays["item"],
            arrays["user_ids"].astype(object),
            arrays["item_ids"].astype(object),
            meta,
        )
        return views if data is None else views.aligned_to(data, source=path)

    def aligned_to(self, data: InteractionData, source: str | Path = "text views") -> TextViews:
        """Rows re-ordered to ``data``'s internal ids (every user and item must be present)."""

        def order(saved: np.ndarray, wanted: np.ndarray, kind: str) -> np.ndarray:
            index = {str(raw): i for i, raw in enumerate(saved.tolist())}
            missing = [str(r) for r in wanted.tolist() if str(r) not in index]
            if missing:
                raise DataFormatError(
                    f"has no {kind} {missing[0]!r} ({len(missing)} {kind}s of {data.name} missing)",
                    path=source,
                    field=f"{kind}_ids",
                )
            return np.asarray([index[str(r)] for r in wanted.tolist()], dtype=np.int64)

        users, items = (
            order(self.user_ids, data.user_ids, "user"),
            order(self.item_ids, data.item_ids, "item"),
        )
        return TextViews(
            self.user[users], self.item[items], data.user_ids, data.item_ids, dict(self.meta)
        )


def build_text_views(
    data: InteractionData,
    train: sp.csr_matrix | None = None,
    *,
    encoder: TextEncoder | str = EMBEDDED_ENCODER,
    cache: EmbeddingCache | str | Path | None = "default",
    item_text: Literal["catalogue", "catalogue+kg"] = "catalogue",
    facts: pd.DataFrame | None = None,
    user_profile: Literal["mean", "llm"] = "mean",
    llm_backend=None,
    llm_cache=None,
    progress: bool = False,
) -> TextViews:
    """Text views of ``data``: encoded item texts and user profiles built from ``train``.

    Args:
        data: the dataset (item side information, ids).  Only ``train`` interactions are read.
        train: the training matrix profiles are built from (default ``data.train``; pass a
            cleaned or noisy one to match the model's graph).
        encoder: a :class:`~alignment.encoders.TextEncoder` or a model name/path for
            :class:`~alignment.encoders.SentenceEncoder`.
        cache: an :class:`~alignment.encoders.EmbeddingCache`, a path to one, ``"default"``
            (``$GRAPHREC_CACHE_DIR/text_embeddings.sqlite``) or ``None`` (no cache).
        item_text: ``catalogue`` or ``catalogue+kg`` (appends the facts in ``facts``, default
            ``data.kg.triples``).
        user_profile: ``mean`` (weighted mean of training item embeddings) or ``llm`` (needs
            ``llm_backend``; replies cached in ``llm_cache``).
    """
    train = data.train if train is None else sp.csr_matrix(train)
    if train.shape != (data.n_users, data.n_items):
        raise ValueError(f"train has shape {train.shape}, expected {(data.n_users, data.n_items)}")
    text_encoder: TextEncoder = (
        SentenceEncoder(encoder, progress=progress) if isinstance(encoder, str) else encoder
    )
    owned_cache = None
    if isinstance(cache, str) and cache == "default":
        cache = owned_cache = EmbeddingCache(default_cache_dir() / "text_embeddings.sqlite")
    elif isinstance(cache, (str, Path)):
        cache = owned_cache = EmbeddingCache(cache)
    try:
        if item_text == "catalogue+kg" and facts is None:
            if data.kg is None:
                raise ValueError(
                    f"item_text=catalogue+kg but dataset {data.name!r} has no KG; pass facts="
                )
            facts = data.kg.triples
        texts = item_texts(data, facts if item_text == "catalogue+kg" else None)
        item = encode_texts(text_encoder, texts, cache, progress=progress)
        meta: dict = {
            "encoder": text_encoder.model_id,
            "item_text": item_text,
            "user_profile": user_profile,
            "train_interactions": int(train.nnz),
        }
        if user_profile == "mean":
            user = mean_profiles(train, item)
        elif user_profile == "llm":
            if llm_backend is None:
                raise ValueError(
                    "user_profile=llm needs an llm_backend (kg.llm.backends.make_backend)"
                )
            profiles, report = llm_profiles(
                train, item_titles(data), llm_backend, llm_cache, progress=progress
            )
            user = encode_texts(text_encoder, profiles, cache, progress=progress)
            empty = np.diff(train.indptr) == 0
            user[empty] = 0.0  # nothing to summarise: no text signal rather than the fallback text
            meta["llm"] = {
                "backend": llm_backend.identity(),
                "users": report.users,
                "cached": report.cached,
                "generated": report.generated,
                "invalid": len(report.invalid),
            }
        else:
            raise ValueError(f"unknown user_profile {user_profile!r}; choose mean or llm")
    finally:
        if owned_cache is not None:
            owned_cache.close()
    return TextViews(user, item, data.user_ids, data.item_ids, meta)
