r"""A lexical text encoder fitted on the catalogue: TF-IDF projected by LSA.

Sentence encoders compare meanings; a catalogue also has exact tokens that matter
(brands, model numbers, series names, directors) which a small encoder blurs.
:class:`TfidfLsaEncoder` captures them: word unigrams weighted by sublinear TF-IDF
(:math:`(1 + \log tf) \cdot \log(N / df)`, rows L2-normalised) over the terms that
occur in at least ``min_df`` catalogue texts and in at most ``max_df`` of them, projected
onto the ``dim`` leading right singular vectors of that catalogue matrix (latent semantic
analysis), so every text becomes a dense ``[dim]`` vector and the models that take
sentence embeddings take these unchanged.  New texts are folded in with the same
vocabulary, idf and projection.

The fit is deterministic (randomized SVD with a fixed seed) and depends on the whole
catalogue, so :attr:`TfidfLsaEncoder.model_id` names a digest of the fitted corpus.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from graphrec.errors import ConfigError

#: name of the lexical encoder in an ``encoder`` setting
LEXICAL_ENCODER = "tfidf"
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits (``"3M Scotch-Tape 600"`` -> ``3m scotch tape 600``)."""
    return _TOKEN.findall(text.lower())


def randomized_svd(
    matrix: sp.csr_matrix, rank: int, power_iterations: int = 4, oversample: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(singular values [rank], right singular vectors [n_cols, rank])`` of a sparse matrix.

    Halko, Martinsson & Tropp (2011): a Gaussian sketch of the column space refined by
    ``power_iterations`` QR-stabilised power steps; exact when ``rank + oversample`` reaches
    the matrix's rank.  Deterministic for a given ``seed``.
    """
    n_rows, n_cols = matrix.shape
    width = min(rank + oversample, n_rows, n_cols)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(matrix @ rng.standard_normal((n_cols, width)))
    for _ in range(power_iterations):
        # orthonormalised on the row side only: the same subspace as a QR of Mᵀ·basis in between
        # (its R factor is invertible), without factorising a [n_cols, width] matrix, which for a
        # catalogue's vocabulary (n_cols = terms >> texts) was most of the fit; one Mᵀ·M step
        # between QRs loses nothing measurable in float64
        basis, _ = np.linalg.qr(matrix @ (matrix.T @ basis))
    small = np.asarray((matrix.T @ basis).T)  # [width, n_cols] = basis^T matrix
    # SVD of the wide sketch through its small Gram matrix: one BLAS-3 product and a
    # [width, width] eigendecomposition, many times faster than LAPACK's SVD of a
    # [1000, 30000] matrix; the leading values, the only ones kept, lose no accuracy that matters
    squares, left = np.linalg.eigh(small @ small.T)
    order = np.argsort(squares)[::-1][:rank]
    values = np.sqrt(np.clip(squares[order], 0.0, None))
    right = (small.T @ left[:, order]) / np.where(values > 0, values, 1.0)
    return values, right


class TfidfLsaEncoder:
    """TF-IDF + LSA text encoder (see the module docstring); :meth:`fit` on the catalogue first.

    Args:
        dim: LSA dimensions (fewer when the catalogue has fewer texts or terms).
        min_df: a term must occur in at least this many texts.
        max_df: and in at most this share of them (very common words carry no signal).
    """

    #: vectors depend on the fitted corpus, so the embedding cache is not used for them
    cacheable = False

    def __init__(self, dim: int = 1024, min_df: int = 2, max_df: float = 0.5) -> None:
        if dim < 1 or min_df < 1 or not 0.0 < max_df <= 1.0:
            raise ConfigError(
                f"tfidf encoder: need dim >= 1, min_df >= 1, 0 < max_df <= 1 (got {dim}, {min_df}, {max_df})"
            )
        self.max_dim, self.min_df, self.max_df = dim, min_df, max_df
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0)
        self.projection = np.zeros((0, 0))  # [n_terms, dim]: V_d / s_d^0 (rows = terms)
        self.model_id = ""

    @property
    def fitted(self) -> bool:
        return bool(self.model_id)

    @property
    def dim(self) -> int:
        self._check_fitted()
        return int(self.projection.shape[1])

    def fit(self, texts: Sequence[str]) -> TfidfLsaEncoder:
        """Learn the vocabulary, idf and LSA projection from ``texts`` (the catalogue)."""
        docs = [tokenize(str(t)) for t in texts]
        if not docs:
            raise ConfigError("tfidf encoder: cannot fit on an empty catalogue")
        df = Counter(term for doc in docs for term in set(doc))
        ceiling = self.max_df * len(docs)
        terms = sorted(t for t, n in df.items() if self.min_df <= n <= ceiling)
        if not terms:
            raise ConfigError(
                f"tfidf encoder: no term occurs in at least {self.min_df} of the {len(docs)} catalogue "
                f"texts and in at most {self.max_df:g} of them"
            )
        self.vocabulary = {t: i for i, t in enumerate(terms)}
        self.idf = np.log(len(docs) / np.array([df[t] for t in terms], dtype=np.float64))
        matrix = self._weights(docs)
        rank = max(1, min(self.max_dim, matrix.shape[0] - 1, matrix.shape[1] - 1))
        _, right = randomized_svd(matrix, rank)
        self.projection = right
        digest = hashlib.sha256("\x00".join(map(str, texts)).encode("utf-8")).hexdigest()[:16]
        self.model_id = (
            f"{LEXICAL_ENCODER}|dim={self.max_dim}|min_df={self.min_df}|max_df={self.max_df:g}"
            f"|corpus={digest}"
        )
        return self

    def _weights(self, docs: list[list[str]]) -> sp.csr_matrix:
        """Sublinear TF-IDF rows ``[len(docs), n_terms]``, L2-normalised (all-zero rows stay zero)."""
        rows, cols, values = [], [], []
        for i, doc in enumerate(docs):
            for term, count in Counter(t for t in doc if t in self.vocabulary).items():
                rows.append(i)
                cols.append(self.vocabulary[term])
                values.append(1.0 + np.log(count))
        matrix = sp.csr_matrix(
            (values, (rows, cols)), shape=(len(docs), len(self.vocabulary)), dtype=np.float64
        )
        matrix = matrix @ sp.diags(self.idf)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32 LSA vectors, L2-normalised (zero for a text with no known term)."""
        self._check_fitted()
        vectors = np.asarray(self._weights([tokenize(str(t)) for t in texts]) @ self.projection)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ConfigError(
                "tfidf encoder: fit it on the catalogue texts first (it learns its vocabulary there)"
            )
