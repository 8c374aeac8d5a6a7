"""A trained model ready to use: top-K for known users, fold-in for new ones, similar items.

Ids in and out are **raw** ids (as in the user's data files).  Scoring runs in
blocks of users so that the ``[block, n_items]`` score matrix stays within
``memory_mb`` whatever the number of users; masking and top-K are the evaluation
harness's own (:mod:`graphrec.evaluation.ranking`: no dense mask, deterministic
tie order ``(-score, item index)``).

New users (fold-in, no retraining), from the raw ids of items they interacted with:

* a model with a ``fold_in(rows)`` method (``rows``: ``[B, n_items]`` CSR) scores them
  its own way;
* closed-form models (EASE, ItemKNN, most-popular, text-EASE) score ``X_u · W``
  exactly as for a training user, with ``X_u`` the new user's row;
* embedding models (MF, LightGCN, SGL/SimGCL, KG models, aligned models) embed the
  user as LightGCN's normalised aggregation of the items' final embeddings,
  :math:`e_u = \\sum_{j \\in I_u} e_j / \\sqrt{|I_u| (d_j + 1)}` (``d_j``: the item's
  training degree; +1 for the new edge), and score :math:`e_u^\\top e_i`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.config import RunConfig
from graphrec.data.dataset import InteractionData
from graphrec.errors import GraphrecError
from graphrec.evaluation.ranking import gather_csr_rows, mask_scores, topk_with_ties
from graphrec.models.base import ClosedFormRecommender, Recommender, sparse_csr

#: default bound of one block's ``[users, n_items]`` float32 score matrix
DEFAULT_MEMORY_MB = 256


class InvalidRequestError(GraphrecError, ValueError):
    """A request the recommender cannot answer as given (bad ``k``, bad option)."""


class UnknownIdError(GraphrecError, KeyError):
    """A raw user or item id the run does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class Recommendation:
    """A ranked list: ``items`` (raw ids, best first) with their ``scores``.

    ``user`` is the raw user id (``None`` for a new user or a similar-items query);
    ``fallback`` names the fallback used (``"popularity"`` for an unknown user), if any.
    """

    user: str | None
    items: list[str]
    scores: list[float]
    fallback: str | None = None
    explanations: list[dict] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "items": self.items, "scores": self.scores}
        if self.fallback is not None:
            out["fallback"] = self.fallback
        if self.explanations is not None:
            out["explanations"] = self.explanations
        return out


class _TextCapable(Protocol):
    """A model that scores items it was not trained on from their texts (alpharec, text_ease)."""

    def score_new_items(self, users: torch.Tensor, texts: list[str]) -> torch.Tensor: ...


def _scorer_overridden(model: Recommender) -> bool:
    return type(model).scorer is not Recommender.scorer


class TrainedRecommender:
    """Recommendations from a trained model and the data it was trained on.

    Build it with :func:`graphrec.inference.load_recommender` (from a run directory)
    or directly from a model and its :class:`InteractionData` (only ``user_ids``,
    ``item_ids``, ``train`` and, for explanations, ``item_info`` are used).

    Args:
        model: the trained model (put in eval mode).
        data: the training data (raw id maps, training matrix).
        memory_mb: bound of one block's score matrix; sets the users per block.
        device: where to score (``None``: the model's device).
    """

    def __init__(
        self,
        model: Recommender,
        data: InteractionData,
        memory_mb: float = DEFAULT_MEMORY_MB,
        device: str | torch.device | None = None,
        config: RunConfig | None = None,
        run_dir: str | Path | None = None,
    ) -> None:
        if device is not None:
            model = model.to_device(torch.device(device))
        self.model = model.eval()
        self.data = data
        self.config = config
        self.run_dir = run_dir
        self.n_users, self.n_items = data.n_users, data.n_items
        self.user_ids = np.asarray(data.user_ids, dtype=object)
        self.item_ids = np.asarray(data.item_ids, dtype=object)
        self._user_index = {str(raw): i for i, raw in enumerate(self.user_ids.tolist())}
        self._item_index = {str(raw): i for i, raw in enumerate(self.item_ids.tolist())}
        train = sp.csr_matrix(data.train, dtype=np.float32)
        train.sort_indices()
        self.train = train
        self.popularity = np.asarray((train > 0).sum(axis=0)).ravel().astype(np.int64)
        self.block_users = max(1, int(memory_mb * 2**20 // (4 * max(1, self.n_items))))
        self._scorer: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._emb: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ ids
    @property
    def closed_form(self) -> bool:
        return isinstance(self.model, ClosedFormRecommender)

    def user_index(self, users: Iterable[Any]) -> np.ndarray:
        """Internal ids of raw user ids; :class:`UnknownIdError` names the unknown ones."""
        return self._lookup(self._user_index, users, "user")

    def item_index(self, items: Iterable[Any]) -> np.ndarray:
        """Internal ids of raw item ids; :class:`UnknownIdError` names the unknown ones."""
        return self._lookup(self._item_index, items, "item")

    def knows_user(self, user: Any) -> bool:
        return str(user) in self._user_index

    @staticmethod
    def _lookup(index: dict[str, int], raw: Iterable[Any], what: str) -> np.ndarray:
        raw = [str(r) for r in raw]
        out = np.fromiter((index.get(r, -1) for r in raw), dtype=np.int64, count=len(raw))
        if (out < 0).any():
            unknown = [r for r, i in zip(raw, out) if i < 0]
            more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
            raise UnknownIdError(
                f"unknown {what} id(s) {', '.join(map(repr, unknown[:5]))}{more}: "
                f"not in the run's training data ({len(index)} {what}s)"
            )
        return out

    # ------------------------------------------------------------- scoring
    def scorer(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Scores of internal users against all items (embeddings computed once)."""
        if self._scorer is None:
            if self.closed_form or _scorer_overridden(self.model):
                self._scorer = self.model.scorer()
            else:
                user_emb, item_emb = self.embeddings()
                self._scorer = lambda users: user_emb[users.to(user_emb.device)] @ item_emb.T
        return self._scorer

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's final ``(user, item)`` embeddings (not for closed-form models)."""
        if self._emb is None:
            user_emb, item_emb = self.model.embeddings()
            self._emb = (user_emb.detach(), item_emb.detach())
        return self._emb

    def fold_in_weights(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """The aggregation weights ``1 / sqrt(|I_u| (d_j + 1))`` of a new user's items (same sparsity as ``rows``)."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        counts = np.diff(rows.indptr)
        per_entry = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
        weights = per_entry / np.sqrt(self.popularity[rows.indices] + 1.0)
        return sp.csr_matrix(
            (weights.astype(np.float32), rows.indices, rows.indptr), shape=rows.shape
        )

    @torch.no_grad()
    def score_rows(self, rows: sp.csr_matrix) -> torch.Tensor:
        """Scores ``[B, n_items]`` of new users given by their ``[B, n_items]`` interaction rows."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        fold_in = getattr(self.model, "fold_in", None)
        if fold_in is not None:
            return fold_in(rows)
        if self.closed_form:
            # the model scores from its stored training rows; a shallow copy with the new rows
            # in their place scores the new users exactly as it would score training users
            twin = copy.copy(self.model)
            twin.interactions = rows
            return twin.score(torch.arange(rows.shape[0]))
        _, item_emb = self.embeddings()
        weights = self.fold_in_weights(rows)
        matrix = sparse_csr(
            weights.indptr, weights.indices, weights.data, weights.shape, item_emb.device
        )
        return torch.sparse.mm(matrix, item_emb) @ item_emb.T

    def allowed_items(
        self, candidates: Iterable[Any] | None = None, filter: Callable[[str], bool] | None = None
    ) -> np.ndarray | None:
        """Boolean ``[n_items]`` mask of the items a list may hold (``None``: all)."""
        if candidates is None and filter is None:
            return None
        allowed = np.ones(self.n_items, dtype=bool)
        if candidates is not None:
            allowed[:] = False
            allowed[self.item_index(candidates)] = True
        if filter is not None:
            allowed &= np.fromiter(
                (bool(filter(str(raw))) for raw in self.item_ids), dtype=bool, count=self.n_items
            )
        return allowed

    def rank(
        self,
        scores: torch.Tensor,
        k: int,
        seen: sp.csr_matrix | None = None,
        allowed: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(scores, items)`` of a score block; items outside ``allowed`` and the entries of
        ``seen`` (its ``rows``, default all, one per score row) are masked; ``-inf`` positions (fewer
        than ``k`` items left) carry item ``-1``."""
        scores = scores.float().contiguous()
        if allowed is not None:
            scores.masked_fill_(~torch.from_numpy(allowed).to(scores.device), float("-inf"))
        if seen is not None:
            local, cols = gather_csr_rows(seen, np.arange(seen.shape[0]) if rows is None else rows)
            mask_scores(scores, local, cols)
        top_values, top_indices = topk_with_ties(scores, k)
        values, indices = top_values.cpu().numpy(), top_indices.cpu().numpy()
        indices[~np.isfinite(values)] = -1
        return values, indices

    def topk_users(
        self,
        users: np.ndarray,
        k: int,
        exclude_seen: bool = True,
        allowed: np.ndarray | None = None,
        extra: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` of internal ``users`` in blocks of :attr:`block_users` (bounded memory).

        ``extra(users) -> [B, m]`` scores ``m`` new items (columns ``n_items ..``) ranked with the catalogue.
        """
        users = np.asarray(users, dtype=np.int64)
        width = self.n_items if allowed is None else len(allowed)
        k = min(int(k), width)
        values = np.empty((len(users), k), dtype=np.float32)
        indices = np.empty((len(users), k), dtype=np.int64)
        scorer = self.scorer()
        for start in range(0, len(users), self.block_users):
            block = users[start : start + self.block_users]
            with torch.no_grad():
                scores = scorer(torch.from_numpy(block))
                if extra is not None:
                    new = extra(torch.from_numpy(block))
                    scores = torch.cat(
                        [scores.float(), new.to(scores.device, torch.float32)], dim=1
                    )
            seen = (
                self.train if exclude_seen else None
            )  # its rows `block`, gathered without slicing the matrix
            values[start : start + len(block)], indices[start : start + len(block)] = self.rank(
                scores, k, seen, allowed, block
            )
        return values, indices

    def _lists(
        self,
        users: Sequence[str | None],
        values: np.ndarray,
        indices: np.ndarray,
        fallback: str | None = None,
        item_ids: np.ndarray | None = None,
    ) -> list[Recommendation]:
        item_ids = self.item_ids if item_ids is None else item_ids
        out = []
        for user, row_values, row_items in zip(users, values, indices):
            keep = row_items >= 0
            out.append(
                Recommendation(
                    user,
                    [str(x) for x in item_ids[row_items[keep]]],
                    [float(v) for v in row_values[keep]],
                    fallback,
                )
            )
        return out

    # ----------------------------------------------------------- public API
    def recommend(
        self,
        users: Any,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Iterable[Any] | None = None,
        filter: Callable[[str], bool] | None = None,
        unknown: str = "error",
        new_items: Mapping[str, str] | None = None,
    ) -> list[Recommendation]:
        """Top-``k`` recommendations of known users (raw ids; one id or a list).

        Args:
            users: raw user id(s).
            k: list length (at most the number of allowed items).
            exclude_seen: drop the user's training items.
            candidates: raw item ids to choose from (default: the whole catalogue); new items are always candidates.
            filter: ``filter(raw_item_id) -> bool``; items for which it is false are never recommended.
            unknown: ``"error"`` (default: :class:`UnknownIdError`) or ``"popularity"``: unknown
                users get the most popular allowed items, marked ``fallback="popularity"``.
            new_items: ``{raw id: text}`` of items not in the training data, ranked with the catalogue
                (text-capable models only; see :meth:`score_new_items`).  Popularity fallbacks never hold them.
        """
        _check_k(k)
        if unknown not in ("error", "popularity"):
            raise InvalidRequestError(f"unknown must be 'error' or 'popularity', not {unknown!r}")
        users = [users] if isinstance(users, (str, int, np.integer)) else list(users)
        allowed = self.allowed_items(candidates, filter)
        catalogue_allowed = allowed
        item_ids, extra = self.item_ids, None
        if new_items is not None:
            new_ids, texts = self._check_new_items(new_items)
            new_allowed = (
                np.ones(len(new_ids), dtype=bool)
                if filter is None
                else np.fromiter(
                    (bool(filter(raw)) for raw in new_ids), dtype=bool, count=len(new_ids)
                )
            )
            allowed = np.concatenate(
                [np.ones(self.n_items, dtype=bool) if allowed is None else allowed, new_allowed]
            )
            item_ids = np.concatenate([self.item_ids, np.asarray(new_ids, dtype=object)])
            score_new = self._new_item_scorer()
            extra = lambda block: score_new(block.to(self._device()), texts)  # noqa: E731
        known = (
            [self.knows_user(u) for u in users] if unknown == "popularity" else [True] * len(users)
        )
        known_users = [str(u) for u, ok in zip(users, known) if ok]
        values, indices = self.topk_users(
            self.user_index(known_users), k, exclude_seen, allowed, extra
        )
        lists = iter(self._lists(known_users, values, indices, item_ids=item_ids))
        if all(known):
            return list(lists)
        popular = self.popular(k, catalogue_allowed)
        return [
            next(lists)
            if ok
            else Recommendation(str(u), popular.items, popular.scores, "popularity")
            for u, ok in zip(users, known)
        ]

    # ------------------------------------------------------------ new items
    @property
    def scores_new_items(self) -> bool:
        """Whether the model can score items it never saw from their text."""
        return callable(getattr(self.model, "score_new_items", None))

    def _device(self) -> torch.device:
        for tensor in [*self.model.parameters(), *self.model.buffers()]:
            return tensor.device
        return torch.device("cpu")

    def _new_item_scorer(self) -> Callable[[torch.Tensor, list[str]], torch.Tensor]:
        """The text-capable model's ``score_new_items(users, texts)`` (after :meth:`_check_new_items`)."""
        return cast(_TextCapable, self.model).score_new_items

    def _check_new_items(self, new_items: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """``(raw ids, texts)`` of a ``{raw id: text}`` mapping of new items, validated."""
        if not self.scores_new_items:
            raise InvalidRequestError(
                f"model {self.model.name!r} cannot score unseen items: it has no representation of an item from its "
                "text (text-capable models: alpharec, text_ease); retrain with the items in the data"
            )
        if not isinstance(new_items, Mapping) or not new_items:
            raise InvalidRequestError(
                "new_items must be a non-empty mapping {raw item id: item text}"
            )
        ids, texts = [], []
        for raw, text in new_items.items():
            raw = str(raw)
            if not raw.strip():
                raise InvalidRequestError("new_items: an item id is empty")
            if raw in self._item_index:
                raise InvalidRequestError(
                    f"new_items: {raw!r} is a catalogue item already (a new item needs a new id)"
                )
            if not isinstance(text, str) or not text.strip():
                raise InvalidRequestError(
                    f"new_items[{raw!r}]: the item text must be a non-empty string"
                )
            ids.append(raw)
            texts.append(text)
        return ids, texts

    @torch.no_grad()
    def score_new_items(self, users: Any, new_items: Mapping[str, str]) -> np.ndarray:
        """``[len(users), m]`` float32 scores of known raw ``users`` against new items ``{raw id: text}``
        (columns in the mapping's order), in blocks of :attr:`block_users`.

        Text-capable models only (``alpharec``, ``text_ease``); others raise :class:`InvalidRequestError`.
        """
        users = [users] if isinstance(users, (str, int, np.integer)) else list(users)
        _, texts = self._check_new_items(new_items)
        score_new = self._new_item_scorer()
        index = self.user_index(users)
        out = np.empty((len(index), len(texts)), dtype=np.float32)
        for start in range(0, len(index), self.block_users):
            block = torch.from_numpy(index[start : start + self.block_users]).to(self._device())
            out[start : start + len(block)] = score_new(block, texts).float().cpu().numpy()
        return out

    def popular(self, k: int = 10, allowed: np.ndarray | None = None) -> Recommendation:
        """The ``k`` items with the most training users (the unknown-user fallback)."""
        scores = torch.from_numpy(self.popularity.astype(np.float32)).unsqueeze(0)
        values, indices = self.rank(scores, min(k, self.n_items), None, allowed)
        return self._lists([None], values, indices)[0]

    def interaction_rows(
        self, baskets: Sequence[Iterable[Any]], unknown_items: str = "error"
    ) -> sp.csr_matrix:
        """``[B, n_items]`` binary rows of new users from raw item ids
        (``unknown_items="ignore"`` drops unknown ids)."""
        indptr, columns = [0], []
        for basket in baskets:
            raw = [str(x) for x in basket]
            if unknown_items == "ignore":
                raw = [x for x in raw if x in self._item_index]
            cols = np.unique(self.item_index(raw)) if raw else np.zeros(0, np.int64)
            columns.append(cols)
            indptr.append(indptr[-1] + len(cols))
        cols = np.concatenate(columns) if columns else np.zeros(0, np.int64)
        return sp.csr_matrix(
            (np.ones(len(cols), np.float32), cols, np.asarray(indptr)),
            shape=(len(baskets), self.n_items),
        )

    def recommend_for_items(
        self,
        items: Iterable[Any],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Iterable[Any] | None = None,
        filter: Callable[[str], bool] | None = None,
        unknown_items: str = "error",
    ) -> Recommendation:
        """Top-``k`` for a new user who interacted with ``items`` (raw ids), without retraining.

        See the module docstring for how each kind of model folds the user in.  A user
        with no known item gets the most popular items (``fallback="popularity"``).
        """
        _check_k(k)
        rows = self.interaction_rows([list(items)], unknown_items)
        allowed = self.allowed_items(candidates, filter)
        if rows.nnz == 0:
            popular = self.popular(k, allowed)
            return Recommendation(None, popular.items, popular.scores, "popularity")
        values, indices = self.rank(
            self.score_rows(rows), min(k, self.n_items), rows if exclude_seen else None, allowed
        )
        return self._lists([None], values, indices)[0]

    def similar_items(self, item: Any, k: int = 10) -> Recommendation:
        """The ``k`` items most similar to ``item`` (itself excluded).

        Embedding models: cosine similarity of the final item embeddings.  Closed-form
        models: the scores of a user who interacted with ``item`` only (EASE: row ``i``
        of ``B``; ItemKNN: the items having ``item`` as a neighbour, by similarity).
        """
        _check_k(k)
        index = self.item_index([item])
        rows = self.interaction_rows([[item]])
        if self.closed_form or hasattr(self.model, "fold_in"):
            scores = self.score_rows(rows)
        else:
            _, item_emb = self.embeddings()
            unit = torch.nn.functional.normalize(item_emb, dim=1)
            scores = unit[torch.from_numpy(index).to(unit.device)] @ unit.T
        values, indices = self.rank(scores, min(k, self.n_items), rows)
        return self._lists([None], values, indices)[0]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidRequestError(f"k must be a positive integer, got {k!r}")


__all__ = [
    "DEFAULT_MEMORY_MB",
    "InvalidRequestError",
    "Recommendation",
    "TrainedRecommender",
    "UnknownIdError",
]
