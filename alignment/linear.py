r"""Text-regularised linear autoencoder (EASE with a text prior; L3AE-style), fitted in closed form.

``text_ease`` (:class:`TextEASE`) is EASE (Steck, WWW 2019) whose item-item weights are
pulled towards an item-item *text* matrix :math:`S` built from frozen sentence-encoder
embeddings of the item texts, instead of towards zero (Moon, Park & Lee, "LLM-Enhanced
Linear Autoencoders for Recommendation" (L3AE), CIKM 2025, with a small open encoder):

.. math::
    \min_B\ \lVert X - XB\rVert_F^2 + \beta\,\lVert F - FB\rVert_F^2
          + \rho\,\lVert B - cS\rVert_F^2
    \quad \text{s.t.}\ \operatorname{diag} B = 0

with :math:`X` the binarised ``[n_users, n_items]`` training matrix, :math:`F` the
``[d, n_items]`` matrix of L2-normalised item text embeddings (so :math:`F^\top F = K`
is the item-item cosine matrix), :math:`\rho` = ``l2``, :math:`c` = ``text_weight``,
:math:`\beta` = ``feature_weight``.

**Closed form.** With :math:`A = X^\top X + \beta K` and :math:`P = (A + \rho I)^{-1}`, the
Lagrangian :math:`\ldots + 2\gamma^\top \operatorname{diag} B` has the stationarity condition
:math:`(A + \rho I) B = A + \rho c S - \operatorname{diag}(\gamma)`, so
:math:`B = \tilde B - P \operatorname{diag}(\gamma)` with :math:`\tilde B = P(A + \rho cS)
= I - \rho P + \rho c\,PS`; :math:`B_{jj} = 0` gives :math:`\gamma_j = \tilde B_{jj}/P_{jj}`.
Expanding,

.. math::
    B = \underbrace{I - P\,\operatorname{diag}(1/P_{jj})}_{\text{EASE on } A}
      + \rho c\,\bigl(PS - P\,\operatorname{diag}\bigl((PS)_{jj}/P_{jj}\bigr)\bigr),

both terms with zero diagonal.  ``text_weight: 0`` and ``feature_weight: 0`` is EASE with
``l2`` exactly (same arithmetic); :math:`\rho \to \infty` gives :math:`B \to cS` (a text
item-kNN, also available directly as ``text_only: true``).  An item without training
interactions (and :math:`\beta = 0`) has :math:`P_{:,j} = e_j/\rho`: its EASE column is zero
and it is scored only through :math:`S` (zero-shot items).

The separate ridge and prior weights of L3AE map onto this form as
:math:`\lambda_X\lVert B\rVert^2 + \lambda_E\lVert B - S\rVert^2 = \rho\lVert B - cS\rVert^2 +
\text{const}` with :math:`\rho = \lambda_X + \lambda_E`, :math:`c = \lambda_E/\rho` (L3AE's tuned
settings have :math:`\lambda_X < 0`, i.e. :math:`c > 1`).

**The text matrix** :math:`S` (zero diagonal), ``similarity``:

* ``cosine``: :math:`S = K` off the diagonal;
* ``lae`` (L3AE's first phase): EASE on the text features,
  :math:`S = I - Q\operatorname{diag}(1/Q_{jj})`, :math:`Q = (K + \mu I)^{-1}`, :math:`\mu` =
  ``similarity_l2``: item :math:`j`'s text embedding regressed on the others'.

then optionally sparsified per column (scored item) to its ``neighbours`` largest entries
and/or entries ``>= min_similarity``.

**New items from their text** (:meth:`TextEASE.score_new_items`, no refit).  A new item
:math:`n` with no interactions has, had it been in the catalogue at fit time (and
:math:`\beta = 0`), :math:`P_{:,n} = e_n/\rho`, so its column of :math:`B` is only the prior
term :math:`B_{:,n} = \rho c\,P\,S_{:,n}` (``text_only``: :math:`c\,S_{:,n}`), where
:math:`P` is the fitted :math:`(A + \rho I)^{-1}` of the catalogue and :math:`S_{:,n}` the new
item's text column: ``cosine``: :math:`S_{jn} = z_j^\top z_n`; ``lae``: by the block inverse of
:math:`K + \mu I` with the new item appended, :math:`S_{:,n} = -Q_{:,n}/Q_{nn} = (K + \mu I)^{-1} k`
with :math:`k_j = z_j^\top z_n` (ridge regression of the new text on the catalogue's); then the
same ``min_similarity``/``neighbours`` sparsification.  The user's score is :math:`X_u B_{:,n}`.
This is exactly the column the new item would get from a refit with it in the catalogue; each
new item is treated as the only one added, and the catalogue's own columns are kept as trained
(with ``lae``, adding an item would also shift their :math:`S` slightly).  Not available with
``feature_weight`` > 0 (the new item's text would then enter :math:`A`) or ``text_weight`` 0.

**Cold items from their neighbours** (``cold_items: neighbours``).  The prior column above
knows nothing of who buys the items the new one resembles.  With this setting an item without
training interactions (in the catalogue or new) gets the trained items' columns of :math:`B`
combined by kernel ridge regression of its text on theirs,
:math:`B_{:,n} = B_{:,W}\,(K_{WW} + \mu I)^{-1} k_W` (:math:`W` the items with interactions,
:math:`k_W` their cosines with the item's text): users are scored on the item as on the trained
items whose text predicts it.  On a validation cold split it ranks held-out items above text
item-kNN where the prior column ranks them below (``benchmarks/cold_start_analysis.py``).

Item texts come from the dataset, encoded in the model's ``prepare`` step (the constructor
takes the ready embeddings): the catalogue text of
:func:`alignment.texts.catalogue_text`, by default with the ``brand`` and ``categories``
columns inserted after the title (``item_text: catalogue+attributes``; identical to
``catalogue`` for datasets without those columns).  Embeddings go through the on-disk
:class:`~alignment.encoders.EmbeddingCache` (and a small in-process memo), so each text
is encoded once; they are a non-persistent buffer, and checkpoints hold only ``B``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from alignment.encoders import (
    EMBEDDED_ENCODER,
    EmbeddingCache,
    TextEncoder,
    build_encoder,
    default_cache_dir,
    encode_texts,
)
from alignment.texts import catalogue_text, kg_item_facts, serialise_facts
from graphrec.config_schema import doc
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError
from graphrec.models.base import ClosedFormRecommender, InputCache
from graphrec.optional import TEXT_MODULES

log = logging.getLogger(__name__)

#: bytes per item pair while fitting: Gram/P, PS, S, K (float64) and B (float32)
FIT_BYTES_PER_ITEM_PAIR = 36
#: item_info columns written as "Label: value." after the title in ``catalogue+attributes``
ATTRIBUTE_COLUMNS = (("brand", "Brand"), ("categories", "Categories"))


#: which item text the text models encode
ItemTextMode = Literal["catalogue", "catalogue+attributes"]


# The item-text settings shared by text_ease, alpharec and text_init: one definition each
# (a fresh dataclass field per call).
def item_text_field() -> Any:
    return doc(
        "Item text: catalogue text (title, year, genres, tagline, overview/description), "
        "optionally with the `brand` and `categories` columns after the title.",
        "catalogue+attributes",
    )


def kg_field() -> Any:
    return doc(
        "A KG whose facts about each item are appended to its text (\"Genre: Adventure. Keywords: "
        "birthday.\", at most 5 values per relation): a KG export folder or triples file (e.g. the main "
        "job's LLM KG) or `dataset`; null: the item text alone. New items are encoded without facts.",
        None,
        path=True,
    )


def encoder_field(default: str = EMBEDDED_ENCODER, why: str = "") -> Any:
    return doc(
        "Text encoder: `all-MiniLM-L6-v2` (embedded, offline), a local sentence-transformers directory, "
        "`tfidf` (TF-IDF + LSA fitted on the catalogue), or several joined by `+` "
        "(`all-MiniLM-L6-v2+tfidf`: the parts' unit vectors side by side)." + why,
        default,
        path=True,
    )


#: text_ease's default encoder: chosen on validation over the candidates of benchmarks/encoders.py
TEXT_EASE_ENCODER = f"{EMBEDDED_ENCODER}+tfidf"


def cache_dir_field() -> Any:
    return doc(
        "Folder of the embedding cache (`text_embeddings.sqlite`); null = $GRAPHREC_CACHE_DIR or ~/.cache/graphrec.",
        None,
        path=True,
    )


@dataclass
class TextEASEConfig:
    """EASE whose weights are pulled towards an item-item text matrix (L3AE-style), in closed form (no SGD)."""

    name: str = doc("Model name.", "text_ease")
    l2: float = doc(
        "Total ridge ρ of B: B is pulled towards text_weight·S with this weight (EASE's `l2` when "
        "text_weight is 0); choose it on validation.",
        200.0,
        ge=0.0,
        le=1e12,
    )
    text_weight: float = doc(
        "c: the prior B ≈ c·S (0 = plain EASE; L3AE's tuned settings correspond to c > 1); with "
        "text_only only its sign matters.",
        1.0,
        ge=-1e6,
        le=1e6,
    )
    feature_weight: float = doc(
        "β: weight of also reconstructing the item text features, β‖F − FB‖² (adds β·K to the Gram matrix; 0 = off).",
        0.0,
        ge=0.0,
        le=1e12,
    )
    similarity: Literal["lae", "cosine"] = doc(
        "Text matrix S: `lae` = EASE on the text embeddings (L3AE phase 1) or `cosine` = cosine "
        "similarity of the embeddings; zero diagonal.",
        "lae",
    )
    similarity_l2: float = doc(
        "Ridge μ of the `lae` text matrix, (K + μI)^-1 (unused for cosine).", 10.0, ge=0.0, le=1e12
    )
    neighbours: int = doc(
        "Keep the largest `neighbours` entries of S per scored item (column); 0 = all.",
        0,
        ge=0,
        le=10**7,
    )
    min_similarity: float | None = doc(
        "Drop entries of S below this value; null = keep all.", None, ge=-1e6, le=1e6
    )
    text_only: bool = doc(
        "Score with B = text_weight·S only (text item-kNN, the l2 → ∞ limit); no interaction fit.",
        False,
    )
    cold_items: Literal["prior", "neighbours"] = doc(
        "How items without training interactions (and new items) are scored: `prior` = their column "
        "of the fit, which is the text prior alone; `neighbours` = the collaborative columns of their "
        "text neighbours among the trained items, B[:, W] (K_WW + μI)^-1 K_Wj (kernel ridge on the "
        "text embeddings, μ = similarity_l2; ignored with text_only; chosen on validation cold "
        "splits of both benchmark datasets, benchmarks/cold_start_analysis.py).",
        "neighbours",
    )
    cold_l2: float | None = doc(
        "Ridge μ of that kernel regression (cold_items: neighbours); null = similarity_l2. It only "
        "changes the columns of items without training interactions, so it can be chosen on a "
        "validation cold split after the fit (TextEASE.set_cold_l2; benchmarks/text_models.py chooses "
        "it per cold split from {1, 3, 10, 30} on three validation cold splits).",
        None,
        ge=0.0,
        le=1e12,
    )
    item_text: ItemTextMode = item_text_field()
    kg: str | None = kg_field()
    encoder: str = encoder_field(
        TEXT_EASE_ENCODER,
        " Default chosen on validation on both benchmark datasets (benchmarks/encoders.py).",
    )
    cache_dir: str | None = cache_dir_field()
    max_memory_gb: float = doc(
        "Refuse (ConfigError) to fit when the dense n_items² matrices would need more than this "
        "many GB (36 bytes per item pair).",
        8.0,
    )

    @property
    def neighbour_l2(self) -> float:
        """The kernel ridge μ of ``cold_items: neighbours`` (``cold_l2``, else ``similarity_l2``)."""
        return self.similarity_l2 if self.cold_l2 is None else self.cold_l2

    def validate(self, prefix: str = "model") -> None:
        if not self.l2 > 0:
            raise ConfigError(f"{prefix}.l2 must be positive, got {self.l2}")
        if self.feature_weight < 0:
            raise ConfigError(f"{prefix}.feature_weight must be >= 0, got {self.feature_weight}")
        if not self.similarity_l2 > 0:
            raise ConfigError(f"{prefix}.similarity_l2 must be positive, got {self.similarity_l2}")
        if self.cold_l2 is not None and not self.cold_l2 > 0:
            raise ConfigError(f"{prefix}.cold_l2 must be positive (or null), got {self.cold_l2}")
        if self.neighbours < 0:
            raise ConfigError(f"{prefix}.neighbours must be >= 0, got {self.neighbours}")
        if self.text_only and self.text_weight <= 0:
            raise ConfigError(f"{prefix}.text_only needs text_weight > 0")
        if not self.max_memory_gb > 0:
            raise ConfigError(f"{prefix}.max_memory_gb must be positive, got {self.max_memory_gb}")


# ------------------------------------------------------------------------ texts
def attribute_text(row: dict) -> str:
    """Catalogue text with the attribute columns (brand, categories) right after the title.

    Put before the long description so that encoder truncation keeps them; for rows without
    those columns the result equals :func:`alignment.texts.catalogue_text`.
    """
    head = catalogue_text({k: row.get(k) for k in ("title", "year", "genres")})
    attributes = []
    for key, label in ATTRIBUTE_COLUMNS:
        value = catalogue_text({"text": row.get(key)}).rstrip(".")
        if value:
            attributes.append(f"{label}: {value}.")
    tail = catalogue_text({k: row.get(k) for k in ("tagline", "overview", "description", "text")})
    return " ".join(p for p in (head, *attributes, tail) if p)


def linear_item_texts(data, mode: str = "catalogue+attributes", kg: str | None = None) -> list[str]:
    """One text per internal item of ``data``, followed by its facts in ``kg`` (see :func:`kg_field`);
    items without side information get ``"item <raw id>"``."""
    if mode not in ("catalogue", "catalogue+attributes"):
        raise ConfigError(f"model.item_text: unknown mode {mode!r}")
    make = catalogue_text if mode == "catalogue" else attribute_text
    facts = serialise_facts(kg_item_facts(kg, data)) if kg is not None else {}
    info = data.item_info
    records = info.to_dict("records") if info is not None else [{}] * data.n_items
    texts = []
    for raw, row in zip(data.item_ids.tolist(), records):
        text = " ".join(t for t in (make(row), facts.get(str(raw), "")) if t)
        texts.append(text or f"item {raw}")
    return texts


_MEMO: dict[tuple[str, str], np.ndarray] = {}


def item_text_embeddings(
    data,
    item_text: str = "catalogue+attributes",
    encoder: str = EMBEDDED_ENCODER,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """``[n_items, d]`` float32 L2-normalised embeddings of the item texts (on-disk cache + in-process memo)."""
    return prepared_item_texts(data, item_text, encoder, cache_dir).vectors


@dataclass(frozen=True)
class ItemTexts:
    """A text model's prepared input: the catalogue's item texts and their embeddings.

    The texts let the model build the same encoder again for new items' texts (an encoder
    fitted on the catalogue, ``tfidf``, needs them); ``texts`` is ``None`` when a caller
    passed bare vectors.
    """

    vectors: np.ndarray
    texts: tuple[str, ...] | None = None


def prepared_item_texts(
    data,
    item_text: str = "catalogue+attributes",
    encoder: str = EMBEDDED_ENCODER,
    cache_dir: str | Path | None = None,
    kg: str | None = None,
) -> ItemTexts:
    """:class:`ItemTexts` of ``data``'s items with the ``encoder`` setting (on-disk cache + in-process memo)."""
    texts = linear_item_texts(data, item_text, kg)
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
    key = (encoder, digest)
    if key not in _MEMO:
        cache = EmbeddingCache(
            (Path(cache_dir) if cache_dir else default_cache_dir()) / "text_embeddings.sqlite"
        )
        try:
            vectors = encode_texts(build_encoder(encoder, catalogue=texts), texts, cache)
        finally:
            cache.close()
        _MEMO.clear()  # keep one dataset's vectors only
        _MEMO[key] = vectors
    return ItemTexts(_MEMO[key].copy(), tuple(texts))


class ItemTextSettings(Protocol):
    """The text settings shared by text_ease, alpharec and text_init configs."""

    @property
    def item_text(self) -> str: ...

    @property
    def encoder(self) -> str: ...

    @property
    def cache_dir(self) -> str | None: ...

    @property
    def kg(self) -> str | None: ...


def item_text_key(config: ItemTextSettings) -> Hashable:
    """What the item text embeddings of a text model config depend on (shared by text_ease, alpharec, text_init)."""
    return ("item_text_embeddings", config.item_text, config.kg, config.encoder, config.cache_dir)


def prepare_item_embeddings(
    model: str,
    config: ItemTextSettings,
    data: InteractionData | None,
    train: sp.csr_matrix,
    cache: InputCache,
) -> ItemTexts:
    """:class:`ItemTexts` of ``data``'s items for a text model (the ``prepare`` step), encoded with the
    config's ``item_text``/``encoder``/``cache_dir`` once per ``cache``."""
    if data is None:
        raise ConfigError(
            f"model {model} needs the dataset's item texts: build it with "
            "build_model(config, n_users, n_items, train, data=data), or pass the embeddings (prepared=)"
        )
    return cache.shared(
        item_text_key(config),
        train,
        data,
        lambda: prepared_item_texts(
            data, config.item_text, config.encoder, config.cache_dir, config.kg
        ),
    )


#: what text models take as their item text input
ItemTextInput = np.ndarray | torch.Tensor | ItemTexts


def checked_item_embeddings(item_embeddings: ItemTextInput, n_items: int) -> np.ndarray:
    """The vectors of ``item_embeddings`` as a float32 ``[n_items, d]`` array (:class:`ConfigError` on another
    shape)."""
    if isinstance(item_embeddings, ItemTexts):
        item_embeddings = item_embeddings.vectors
    vectors = np.asarray(item_embeddings, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != n_items:
        raise ConfigError(
            f"item text embeddings have shape {vectors.shape}, expected ({n_items}, d)"
        )
    return vectors


class NewItemEncoder:
    """The encoder of a text model's ``encoder`` setting for new items' texts, built on first use
    (fitted on the catalogue's texts when the setting has a ``tfidf`` part)."""

    def __init__(self, spec: str, item_texts: ItemTextInput) -> None:
        self.spec = spec
        self.catalogue = item_texts.texts if isinstance(item_texts, ItemTexts) else None
        self._encoder: TextEncoder | None = None

    def get(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = build_encoder(self.spec, catalogue=self.catalogue)
        return self._encoder


def encode_item_texts(
    texts: list[str], encoder: TextEncoder, cache_dir: str | Path | None = None
) -> np.ndarray:
    """``[len(texts), d]`` float32 L2-normalised embeddings of new item texts (through the on-disk cache)."""
    cache = EmbeddingCache(
        (Path(cache_dir) if cache_dir else default_cache_dir()) / "text_embeddings.sqlite"
    )
    try:
        vectors = encode_texts(encoder, list(texts), cache)
    finally:
        cache.close()
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------------ math
def text_matrix(
    embeddings: torch.Tensor,
    similarity: str = "lae",
    similarity_l2: float = 10.0,
    neighbours: int = 0,
    min_similarity: float | None = None,
) -> torch.Tensor:
    """The item-item text matrix S ``[n, n]`` (zero diagonal; column j = weights onto scored item j)."""
    e = embeddings.to(torch.float64)
    gram = e @ e.T
    if similarity == "cosine":
        s = gram
    elif similarity == "lae":
        gram.diagonal().add_(similarity_l2)
        s = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        del gram
        s /= -s.diagonal()  # column j divided by -Q_jj
    else:
        raise ConfigError(f"model.similarity: unknown {similarity!r}")
    s.diagonal().zero_()
    if min_similarity is not None:
        s[s < min_similarity] = 0.0
    if 0 < neighbours < s.shape[0] - 1:
        s.diagonal().fill_(-torch.inf)  # never a neighbour of itself
        top = torch.topk(s, neighbours, dim=0).indices
        kept = torch.zeros_like(s)
        kept.scatter_(0, top, s.gather(0, top))
        s = kept
    return s


def text_gram_factor(catalogue: torch.Tensor, similarity_l2: float) -> torch.Tensor:
    """Cholesky factor ``[n, n]`` (float64) of ``K + μI`` of the catalogue's unit text rows
    (the `lae` text matrix's)."""
    cat = catalogue.to(torch.float64)
    gram = cat @ cat.T
    gram.diagonal().add_(similarity_l2)
    return torch.linalg.cholesky(gram)


def new_item_text_columns(
    catalogue: torch.Tensor,
    new: torch.Tensor,
    similarity: str = "lae",
    similarity_l2: float = 10.0,
    neighbours: int = 0,
    min_similarity: float | None = None,
    factor: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[n, m]``: the column of S that each of ``new`` (``[m, d]`` unit rows) would have were it appended alone
    to ``catalogue`` (``[n, d]`` unit rows); see "New items" in the module docstring.  ``factor``: a ready
    :func:`text_gram_factor` (`lae`; computed here otherwise)."""
    cat = catalogue.to(torch.float64)
    cross = cat @ new.to(cat).T
    if similarity == "cosine":
        s = cross
    elif similarity == "lae":
        s = torch.cholesky_solve(
            cross, text_gram_factor(cat, similarity_l2) if factor is None else factor
        )
    else:
        raise ConfigError(f"model.similarity: unknown {similarity!r}")
    if min_similarity is not None:
        s[s < min_similarity] = 0.0
    if 0 < neighbours < s.shape[0]:  # text_matrix's per-column rule, on n + 1 items
        top = torch.topk(s, neighbours, dim=0).indices
        kept = torch.zeros_like(s)
        kept.scatter_(0, top, s.gather(0, top))
        s = kept
    return s


def text_ease_weights(
    gram: torch.Tensor,
    s: torch.Tensor | None,
    l2: float,
    text_weight: float,
    extra_ridge: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""``B`` of the module docstring from ``A`` (``gram``, float64, not modified) and ``S``; float64, zero diagonal.

    ``s`` may be ``None`` (or ``text_weight`` 0): then ``B`` is EASE on ``A`` with ``l2``.
    ``extra_ridge`` (``[n]``, optional) adds :math:`\lVert \operatorname{diag}(r)^{1/2} B\rVert^2`, a ridge on
    each input item's row of ``B`` on top of ``l2`` (with :math:`r_i = d\,A_{ii}` the dropout penalty of
    DLAE/EDLAE, Steck 2020): :math:`P = (A + \rho I + \operatorname{diag} r)^{-1}`, the prior term unchanged
    (``benchmarks/text_ease_ablations.py``).
    """
    a = gram.clone()
    a.diagonal().add_(l2)
    if extra_ridge is not None:
        a.diagonal().add_(extra_ridge.to(a))
    p = torch.cholesky_inverse(torch.linalg.cholesky(a))  # A + ρI is SPD for ρ > 0
    del a
    prior = None
    if s is not None and text_weight != 0:
        prior = p @ s
        prior -= p * (prior.diagonal() / p.diagonal())[None, :]
        prior *= l2 * text_weight
    p /= -p.diagonal()  # EASE: column j divided by -P_jj
    p.diagonal().zero_()
    if prior is not None:
        p += prior
        p.diagonal().zero_()  # exactly zero already up to rounding
    return p


def neighbour_columns(
    weights: torch.Tensor,
    trained: torch.Tensor,
    trained_vectors: torch.Tensor,
    vectors: torch.Tensor,
    factor: torch.Tensor,
) -> torch.Tensor:
    """``[n, m]``: each of ``vectors``' (``[m, d]`` unit rows) column built from the trained items' columns,
    ``B[:, W] (K_WW + μI)⁻¹ K_W,new`` (``factor``: :func:`text_gram_factor` of ``trained_vectors``)."""
    cross = trained_vectors.to(torch.float64) @ vectors.to(torch.float64).T
    return weights[:, trained].to(torch.float64) @ torch.cholesky_solve(cross, factor)


# ------------------------------------------------------------------------ model
def check_fit_memory(config: TextEASEConfig, n_items: int) -> None:
    """:class:`ConfigError` when the dense ``n_items``² fit matrices would exceed ``max_memory_gb``."""
    needed = FIT_BYTES_PER_ITEM_PAIR * n_items**2 / 1e9
    if needed > config.max_memory_gb:
        raise ConfigError(
            f"model.max_memory_gb: text_ease on {n_items} items needs dense {n_items} x {n_items} matrices, "
            f"about {needed:.1f} GB while fitting, more than model.max_memory_gb = {config.max_memory_gb:g}"
        )


class TextEASE(ClosedFormRecommender):
    """EASE with a text prior (see the module docstring); scores ``X_u B`` like EASE.

    Args:
        n_users, n_items, config, train: as for every model (:class:`TextEASEConfig`).
        item_embeddings: ``[n_items, d]`` text embeddings of the items (what :meth:`prepare`
            encodes from the dataset with the config's text settings; benchmarks that share
            one encoding across many fits pass their own).
    """

    name = "text_ease"
    requires = TEXT_MODULES  # the `text` extra: sentence-transformers and the embedded encoder
    config_class = TextEASEConfig
    config: TextEASEConfig
    item_text: torch.Tensor
    weights: torch.Tensor

    @classmethod
    def inputs_key(cls, config: TextEASEConfig) -> Hashable:
        return item_text_key(config)

    @classmethod
    def prepare(
        cls,
        config: TextEASEConfig,
        train: sp.csr_matrix,
        data: InteractionData | None,
        cache: InputCache,
    ) -> ItemTexts:
        """The item texts and embeddings (refused before encoding when the fit would not fit in memory)."""
        check_fit_memory(config, train.shape[1])
        return prepare_item_embeddings("text_ease", config, data, train, cache)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: TextEASEConfig,
        train: sp.csr_matrix,
        item_embeddings: ItemTextInput,
    ) -> None:
        check_fit_memory(config, n_items)
        super().__init__(n_users, n_items, config, train)
        vectors = torch.from_numpy(checked_item_embeddings(item_embeddings, n_items))
        # derived from the data (and cached on disk), so kept out of checkpoints
        self.register_buffer("item_text", vectors.clone(), persistent=False)
        self.register_buffer("weights", torch.zeros(n_items, n_items))
        self._fit_factor: torch.Tensor | None = None  # Cholesky of A + rho I, for new items
        self._text_factor: torch.Tensor | None = None  # Cholesky of K + mu I (lae), for new items
        self._ridge_factor: torch.Tensor | None = (
            None  # Cholesky of K_WW + mu I (cold_items: neighbours)
        )
        self._encoder = NewItemEncoder(config.encoder, item_embeddings)
        # the last request's new items and their columns of B
        self._new_columns: tuple[tuple[str, ...], torch.Tensor] | None = None

    def text_similarity(self) -> torch.Tensor:
        """The text matrix S ``[n_items, n_items]`` (float64) of the config."""
        c = self.config
        vectors = torch.nn.functional.normalize(
            self.item_text.to(self.weights.device, torch.float64), dim=1
        )
        return text_matrix(vectors, c.similarity, c.similarity_l2, c.neighbours, c.min_similarity)

    def _fit(self) -> dict[str, float]:
        c = self.config
        self._fit_factor = self._ridge_factor = None  # factors of an earlier fit are stale
        device = self.weights.device
        if c.text_only:
            text = self.text_similarity()
            self.weights.copy_(c.text_weight * text)
            return {"text_nonzero_per_item": float(torch.count_nonzero(text)) / self.n_items}
        s = self.text_similarity() if c.text_weight != 0 or c.feature_weight != 0 else None
        x = self.interactions
        gram = torch.from_numpy((x.T @ x).toarray()).to(device=device, dtype=torch.float64)
        if c.feature_weight:
            vectors = torch.nn.functional.normalize(self.item_text.to(device, torch.float64), dim=1)
            gram += c.feature_weight * (vectors @ vectors.T)
        weights = text_ease_weights(gram, s if c.text_weight != 0 else None, c.l2, c.text_weight)
        self.weights.copy_(weights)
        if c.cold_items == "neighbours":
            self.fill_cold_columns()
        if s is None:
            return {}
        return {"text_nonzero_per_item": float(torch.count_nonzero(s)) / self.n_items}

    def _trained_items(self) -> torch.Tensor:
        """Indices of the items with training interactions."""
        return torch.from_numpy(np.flatnonzero(self.interactions.getnnz(axis=0) > 0))

    def _neighbour_factor(self, trained: torch.Tensor, catalogue: torch.Tensor) -> torch.Tensor:
        if self._ridge_factor is None:  # kept for later new items (not in checkpoints)
            self._ridge_factor = text_gram_factor(catalogue[trained], self.config.neighbour_l2)
        return self._ridge_factor

    def fill_cold_columns(self) -> None:
        """``cold_items: neighbours``: the columns of items without interactions from their text neighbours'
        (part of the fit; benchmarks that replace ``weights`` apply it again)."""
        has_interactions = self.interactions.getnnz(axis=0) > 0
        trained = torch.from_numpy(np.flatnonzero(has_interactions))
        cold = torch.from_numpy(np.flatnonzero(~has_interactions))
        if len(cold) == 0 or len(trained) == 0:
            return
        catalogue = torch.nn.functional.normalize(self.item_text.to(torch.float64), dim=1)
        # not kept: an item x item matrix the scorer never needs (new items build their own)
        factor = text_gram_factor(catalogue[trained], self.config.neighbour_l2)
        columns = neighbour_columns(
            self.weights, trained, catalogue[trained], catalogue[cold], factor
        )
        columns[cold, torch.arange(len(cold))] = 0.0  # zero diagonal, as every column of B
        self.weights[:, cold] = columns.to(self.weights.dtype)

    def set_cold_l2(self, value: float | None) -> None:
        """Re-derive the columns of the items without training interactions with another ``cold_l2``
        (``cold_items: neighbours``); the trained columns stay as fitted, so this is no refit."""
        self._check_fitted()
        if self.config.cold_items != "neighbours" or self.config.text_only:
            raise ConfigError(
                "cold_l2 is used only with cold_items: neighbours (and not text_only)"
            )
        self.config.cold_l2 = value
        self.config.validate()
        self._ridge_factor = None  # new items' factor is stale
        self._new_columns = None
        self.fill_cold_columns()

    def score(self, users: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        return torch.sparse.mm(self.user_rows(users, self.weights.device), self.weights)

    def new_item_weights(self, vectors: torch.Tensor) -> torch.Tensor:
        """``[n_items, m]`` float64: the columns of ``B`` of new items given by their ``[m, d]`` text embeddings."""
        c = self.config
        if c.feature_weight:
            raise ConfigError(
                "text_ease with feature_weight > 0 cannot score new items without a refit "
                "(their text would enter the Gram matrix)"
            )
        if c.text_weight == 0 and (c.cold_items == "prior" or c.text_only):
            raise ConfigError(
                "text_ease with text_weight 0 is plain EASE: it has no text prior to score new items with "
                "(cold_items: neighbours scores them from their text neighbours' columns)"
            )
        device = self.weights.device
        catalogue = torch.nn.functional.normalize(self.item_text.to(device, torch.float64), dim=1)
        new = torch.nn.functional.normalize(
            torch.as_tensor(vectors).to(device, torch.float64), dim=1
        )
        if c.cold_items == "neighbours" and not c.text_only:
            trained = self._trained_items()
            factor = self._neighbour_factor(trained, catalogue)
            return neighbour_columns(self.weights, trained, catalogue[trained], new, factor)
        # Cholesky factors of K + mu I and of A + rho I (P = its inverse), computed on the first request
        # and kept: later requests cost O(n^2) per new item, not a refit (they are not in checkpoints)
        if c.similarity == "lae" and self._text_factor is None:
            self._text_factor = text_gram_factor(catalogue, c.similarity_l2)
        s = new_item_text_columns(
            catalogue,
            new,
            c.similarity,
            c.similarity_l2,
            c.neighbours,
            c.min_similarity,
            factor=self._text_factor,
        )
        if c.text_only:
            return c.text_weight * s
        if self._fit_factor is None:
            x = self.interactions
            gram = torch.from_numpy((x.T @ x).toarray()).to(device=device, dtype=torch.float64)
            gram.diagonal().add_(c.l2)
            self._fit_factor = torch.linalg.cholesky(gram)
        return (c.l2 * c.text_weight) * torch.cholesky_solve(s, self._fit_factor)

    def score_new_item_vectors(self, users: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """``[B, m]`` scores of ``users`` against new items given by their text embeddings (``X_u B_{:,new}``)."""
        self._check_fitted()
        columns = self.new_item_weights(vectors).to(torch.float32)
        return torch.sparse.mm(self.user_rows(users, columns.device), columns)

    def score_new_items(self, users: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """``[B, m]`` scores of ``users`` against new items given by their texts (encoded with the model's encoder)."""
        key = tuple(texts)
        cached = self._new_columns  # read once: a server thread may replace it meanwhile
        if cached is None or cached[0] != key:  # one request's items, scored block by block
            vectors = torch.from_numpy(
                encode_item_texts(list(texts), self._encoder.get(), self.config.cache_dir)
            )
            cached = (key, self.new_item_weights(vectors).to(torch.float32))
            self._new_columns = cached
        self._check_fitted()
        columns = cached[1]
        return torch.sparse.mm(self.user_rows(users, columns.device), columns)
