"""Texts of items and users: catalogue text, serialised KG facts, user profiles.

* :func:`item_texts` — one text per internal item: title (year), genres, tagline,
  overview, and optionally the item's KG facts (``Directed by: ...; Starring: ...``).
* :func:`mean_profiles` — the no-LLM user profile: the weighted mean of the text
  embeddings of the user's **training** items (weights = the training matrix values,
  i.e. ratings when the split keeps them, else 1).
* :func:`llm_profiles` — RLMRec-style profiles: an LLM (any :mod:`kg.llm.backends`
  backend) summarises what the user likes and dislikes from the titles of their
  **training** items only; replies are cached (:class:`kg.llm.cache.ResponseCache`),
  validated and turned into plain text.

Both profile builders take the training matrix, never an
:class:`~graphrec.data.dataset.InteractionData`, so validation and test
interactions cannot reach them (tested in ``tests/alignment/test_texts.py``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from graphrec.data.dataset import InteractionData
from graphrec.knowledge.sources import load_knowledge, read_entity_labels
from kg.errors import BackendError
from kg.llm.backends import LLMBackend
from kg.llm.cache import ResponseCache, cache_key

log = logging.getLogger(__name__)

#: bump when the profile prompt changes (part of the LLM cache key)
PROFILE_PROMPT_VERSION = "user-profile-v1"

_RELATION_LABELS = {
    "directed_by": "Directed by",
    "starring": "Starring",
    "genre": "Genre",
    "keyword": "Keywords",
    "production_company": "Produced by",
    "original_language": "Original language",
}


def _clean(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return re.sub(r"\s+", " ", str(value)).strip()


def catalogue_text(row: dict) -> str:
    """``"Title (year). Genres: a, b. Tagline. Overview"`` from an ``item_info`` row (missing parts left out)."""
    title = _clean(row.get("title"))
    year = _clean(row.get("year"))
    parts = [f"{title} ({year})." if title and year else (f"{title}." if title else "")]
    genres = [g for g in _clean(row.get("genres")).split("|") if g and g != "(no genres listed)"]
    if genres:
        parts.append("Genres: " + ", ".join(genres) + ".")
    for key in ("tagline", "overview", "description", "text"):
        value = _clean(row.get(key))
        if value:
            parts.append(value)
    return " ".join(p for p in parts if p)


def kg_item_facts(source: str, data: InteractionData) -> pd.DataFrame:
    """Facts about ``data``'s items from a KG ``source`` (a path or ``"dataset"``, as the
    knowledge-aware models' ``kg`` takes it), as a (head = raw item id, relation, tail) table.

    Tails are entity labels from the ``kg`` package's ``entities.tsv`` beside the export when
    there is one ("Buzz Lightyear" for ``Character/buzz-lightyear``), else the entity ids.
    Facts about entities that are not items of ``data`` are left out.
    """
    kg = load_knowledge(source, data)
    triples = kg.triples
    if len(kg.item_entity):
        link = kg.item_entity.drop_duplicates("entity_id").set_index("entity_id")["item_id"]
        heads = triples["head"].map(link)
    else:  # a plain table whose heads are raw item ids
        heads = triples["head"]
    keep = heads.isin(set(data.item_ids.astype(str).tolist())).to_numpy()
    labels = read_entity_labels(source)
    tails = triples["tail"][keep]
    return pd.DataFrame(
        {
            "head": heads[keep].astype(str).to_numpy(),
            "relation": triples["relation"][keep].to_numpy(),
            "tail": [labels.get(t, t) for t in tails.tolist()],
        }
    )


def serialise_facts(facts: pd.DataFrame, max_per_relation: int = 5) -> dict[str, str]:
    """Raw head id -> ``"Directed by: X. Starring: A, B."`` from a (head, relation, tail) table.

    Keeps at most ``max_per_relation`` tails per relation, in table order.
    """
    out: dict[str, str] = {}
    if facts is None or len(facts) == 0:
        return out
    missing = {"head", "relation", "tail"} - set(facts.columns)
    if missing:
        raise ValueError(f"facts table lacks columns {sorted(missing)} (has {list(facts.columns)})")
    for head, group in facts.groupby(facts["head"].astype(str), sort=False):
        pieces = []
        for relation, rows in group.groupby("relation", sort=False):
            tails = [_clean(t) for t in rows["tail"].tolist()[:max_per_relation] if _clean(t)]
            if tails:
                pieces.append(
                    f"{_RELATION_LABELS.get(relation, str(relation).replace('_', ' '))}: {', '.join(tails)}."
                )
        out[head] = " ".join(pieces)
    return out


def item_texts(
    data: InteractionData, facts: pd.DataFrame | None = None, max_facts_per_relation: int = 5
) -> list[str]:
    """One text per internal item (catalogue text, then the serialised ``facts`` when given).

    ``facts`` is a (head = raw item id, relation, tail) table, e.g. ``data.kg.triples`` or a
    ``kg`` export.  Items without side information get their raw id as text, so every
    item still has an embedding (logged).
    """
    serialised = serialise_facts(facts, max_facts_per_relation) if facts is not None else {}
    info = data.item_info
    texts = []
    bare = 0
    for index, raw in enumerate(data.item_ids.tolist()):
        text = catalogue_text(info.iloc[index].to_dict()) if info is not None else ""
        extra = serialised.get(str(raw), "")
        text = " ".join(t for t in (text, extra) if t)
        if not text:
            bare += 1
            text = f"item {raw}"
        texts.append(text)
    if bare:
        log.warning(
            "%d of %d items of %s have no text; their raw id is used", bare, data.n_items, data.name
        )
    return texts


def item_titles(data: InteractionData) -> list[str]:
    """Display title per internal item (``"Title (year)"``; the raw id when there is no title)."""
    info = data.item_info
    out = []
    for index, raw in enumerate(data.item_ids.tolist()):
        row = info.iloc[index].to_dict() if info is not None else {}
        title, year = _clean(row.get("title")), _clean(row.get("year"))
        out.append(f"{title} ({year})" if title and year else (title or f"item {raw}"))
    return out


# --------------------------------------------------------------------- no-LLM profile
def mean_profiles(
    train: sp.csr_matrix, item_vectors: np.ndarray, normalize: bool = True
) -> np.ndarray:
    r"""User profiles ``[n_users, D]``: :math:`p_u = \sum_i w_{ui} t_i / \sum_i w_{ui}` over training items.

    ``w`` are the stored values of ``train`` (ratings or 1).  Users without training
    items get a zero vector.  With ``normalize`` the profiles are L2-normalised.
    """
    train = sp.csr_matrix(train, dtype=np.float32)
    if train.shape[1] != len(item_vectors):
        raise ValueError(
            f"train has {train.shape[1]} items but item_vectors has {len(item_vectors)} rows"
        )
    weights = np.asarray(train.sum(axis=1)).ravel()
    profiles = np.asarray(train @ item_vectors, dtype=np.float32)
    nonzero = weights > 0
    profiles[nonzero] /= weights[nonzero, None]
    if normalize:
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        profiles = np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0)
    return profiles


# ------------------------------------------------------------------- LLM profile
@dataclass
class ProfilePrompt:
    """The prompt of one user: which training items it shows (internal ids) and the messages."""

    user: int
    liked: list[int]
    disliked: list[int]
    messages: list[dict[str, str]]


@dataclass
class ProfileReport:
    """Outcome of :func:`llm_profiles`: cache use and replies that failed validation."""

    users: int = 0
    cached: int = 0
    generated: int = 0
    invalid: list[int] = field(default_factory=list)


SYSTEM_PROMPT = (
    "You write short user profiles for a movie recommender. Given movies a user liked and disliked, "
    "summarise in two or three sentences which genres, themes and styles the user likes and dislikes. "
    "Reply with the profile only."
)


def profile_prompts(
    train: sp.csr_matrix,
    titles: Sequence[str],
    max_items: int = 30,
    dislike_below: float | None = None,
) -> list[ProfilePrompt]:
    """The LLM prompt of every user, built from ``train`` (and ``titles``) only.

    A user's items are ordered by training value (rating) descending, then by item id;
    at most ``max_items`` liked (value >= ``dislike_below``, or all when it is ``None``)
    and ``max_items // 3`` disliked items are listed.
    """
    train = sp.csr_matrix(train)
    prompts = []
    for user in range(train.shape[0]):
        start, stop = train.indptr[user], train.indptr[user + 1]
        items, values = train.indices[start:stop], train.data[start:stop]
        order = np.lexsort((items, -values))
        items, values = items[order], values[order]
        if dislike_below is None:
            liked, disliked = items.tolist(), []
        else:
            liked = items[values >= dislike_below].tolist()
            disliked = items[values < dislike_below][::-1].tolist()  # worst first
        liked, disliked = liked[:max_items], disliked[: max(1, max_items // 3)]
        lines = ["Movies the user liked: " + ("; ".join(titles[i] for i in liked) or "none") + "."]
        if disliked:
            lines.append(
                "Movies the user disliked: " + "; ".join(titles[i] for i in disliked) + "."
            )
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(lines)},
        ]
        prompts.append(ProfilePrompt(user=user, liked=liked, disliked=disliked, messages=messages))
    return prompts


def validate_profile(text: str, max_chars: int = 800) -> str | None:
    """A cleaned profile, or ``None`` when the reply is unusable (empty, no words)."""
    cleaned = re.sub(r"\s+", " ", text or "").strip().strip('"').strip()
    if len(re.findall(r"[^\W\d_]{2,}", cleaned)) < 3:
        return None
    return cleaned[:max_chars]


def llm_profiles(
    train: sp.csr_matrix,
    titles: Sequence[str],
    backend: LLMBackend,
    cache: ResponseCache | None = None,
    *,
    max_items: int = 30,
    dislike_below: float | None = None,
    max_tokens: int = 96,
    batch_size: int | None = None,
    progress: bool = True,
) -> tuple[list[str], ProfileReport]:
    """LLM-written profile text per user from training interactions only.

    Args:
        train: ``[n_users, n_items]`` training matrix (the only interactions used).
        titles: display title per internal item (:func:`item_titles`).
        backend: a :class:`kg.llm.backends.LLMBackend` (``embedded``, ``transformers``, ``openai``).
        cache: a :class:`kg.llm.cache.ResponseCache`; users whose reply is cached are not sent
            to the model again, so an interrupted run continues where it stopped.
        batch_size: conversations per backend call (default: the backend's ``max_batch``).

    Returns:
        ``(profiles, report)``.  A reply that fails :func:`validate_profile` is replaced
        by the list of liked titles (a usable, honest fallback) and counted in
        ``report.invalid``; it is not cached, so the next run asks again.
    """
    prompts = profile_prompts(train, titles, max_items=max_items, dislike_below=dislike_below)
    report = ProfileReport(users=len(prompts))
    profiles: list[str | None] = [None] * len(prompts)
    keys = [
        cache_key(backend.identity(), PROFILE_PROMPT_VERSION, "free-text", p.messages)
        for p in prompts
    ]
    todo = []
    for prompt, key in zip(prompts, keys):
        hit = cache.get(key) if cache is not None else None
        text = validate_profile(hit.text) if hit is not None else None
        if text is not None:
            profiles[prompt.user] = text
            report.cached += 1
        else:
            todo.append(prompt)
    size = batch_size or max(1, int(getattr(backend, "max_batch", 1)))
    bar = tqdm(
        total=len(todo), desc="LLM user profiles", unit="user", disable=None if progress else True
    )
    for start in range(0, len(todo), size):
        chunk = todo[start : start + size]
        replies = backend.complete_batch(
            [p.messages for p in chunk], max_tokens=max_tokens, json_mode=False
        )
        for prompt, reply in zip(chunk, replies):
            text = None if isinstance(reply, BackendError) else validate_profile(reply.text)
            if text is None or isinstance(reply, BackendError):
                report.invalid.append(prompt.user)
                text = "Likes " + "; ".join(titles[i] for i in prompt.liked) + "."
            else:
                report.generated += 1
                if cache is not None:
                    cache.put(keys[prompt.user], reply, model=getattr(backend, "model", ""))
            profiles[prompt.user] = text
        bar.update(len(chunk))
    bar.close()
    if report.invalid:
        log.warning(
            "%d of %d LLM profiles were unusable and replaced by the liked titles",
            len(report.invalid),
            report.users,
        )
    return [str(p) for p in profiles], report
