"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), fitted in closed form."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.models.base import ClosedFormRecommender

log = logging.getLogger(__name__)

#: bytes per item pair while fitting, by precision: two n² matrices alive at a time (the Gram
#: matrix and its Cholesky factor, then the factor and the inverse) plus B (float32)
FIT_BYTES_PER_ITEM_PAIR = {"float32": 12, "float64": 20}
#: ``precision: auto`` uses float32 while the bound on the condition number of X^T X + λI
#: stays below this: the relative error of a float32 Cholesky inverse is about
#: cond · 6e-8 (<= 6e-4 here), far below the gaps between the scores that decide a ranking
#: (tested against float64: same metrics to 1e-4 on the benchmark datasets)
FLOAT32_MAX_CONDITION = 1e4


@dataclass
class EASEConfig:
    """EASE: a dense item-item weight matrix with zero diagonal, in closed form (no SGD; `train.*` optimiser keys are unused)."""  # noqa: E501 (one line in the config reference)

    name: str = doc("Model name.", "ease")
    l2: float = doc(
        "L2 regularisation λ of B (added to the Gram matrix's diagonal); choose it on validation, typically 10-5000.",
        500.0,
        gt=0.0,
        le=1e12,
    )
    max_memory_gb: float = doc(
        "Refuse (ConfigError) to fit when the dense n_items² matrices would need more than this "
        "many GB (12 bytes per item pair while fitting in float32, 20 in float64: ~8 GB at 26k / "
        "20k items).",
        8.0,
        gt=0.0,
        le=1e6,
    )
    precision: Literal["auto", "float32", "float64"] = doc(
        "Arithmetic of the fit: `auto` = float32 (2x faster, 40% less memory) when the condition "
        "number of X^T X + λI is provably below 1e4 (Gershgorin bound), else float64.",
        "auto",
    )

    def validate(self, prefix: str = "model") -> None:
        if not self.l2 > 0:
            raise ConfigError(
                f"{prefix}.l2 must be positive (the Gram matrix may be singular), got {self.l2}"
            )
        if self.precision not in ("auto", "float32", "float64"):
            raise ConfigError(
                f"{prefix}.precision must be auto, float32 or float64, got {self.precision!r}"
            )
        if not self.max_memory_gb > 0:
            raise ConfigError(f"{prefix}.max_memory_gb must be positive, got {self.max_memory_gb}")


class EASE(ClosedFormRecommender):
    r"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

    .. math::
        P = (X^\top X + \lambda I)^{-1}, \qquad
        B = I - P \,\operatorname{diag}(1 / \operatorname{diag} P), \qquad
        \hat y_u = X_u B

    with :math:`X` the binarised training matrix, so :math:`B_{ij} = -P_{ij} / P_{jj}`
    off the diagonal and :math:`\operatorname{diag} B = 0`.  ``B`` is a dense
    ``[n_items, n_items]`` float32 buffer (saved in checkpoints); fitting works in
    float64 on the model's device and needs about 20 bytes per item pair (fine up to
    ~20k items; beyond ``max_memory_gb`` the constructor raises a :class:`ConfigError`).
    Scores multiply the users' sparse training rows by ``B``: no user × item matrix
    is densified beyond the ``[B, n_items]`` score batch itself.
    """

    name = "ease"
    weights: torch.Tensor
    config_class = EASEConfig

    def __init__(
        self, n_users: int, n_items: int, config: EASEConfig, train: sp.csr_matrix
    ) -> None:
        cheapest = "float64" if config.precision == "float64" else "float32"
        needed = FIT_BYTES_PER_ITEM_PAIR[cheapest] * n_items**2 / 1e9
        if needed > config.max_memory_gb:
            raise ConfigError(
                f"model.max_memory_gb: EASE on {n_items} items needs a dense {n_items} x {n_items} item-item "
                f"matrix, about {needed:.3g} GB while fitting in {cheapest} ({4 * n_items**2 / 1e9:.3g} GB for B "
                f"alone){machine_memory_note()}, more than model.max_memory_gb = {config.max_memory_gb:g}; raise "
                "the limit if the machine has the memory, or use model.name: itemknn (sparse)"
            )
        super().__init__(n_users, n_items, config, train)
        self.register_buffer("weights", torch.zeros(n_items, n_items))

    def _fit(self) -> dict[str, float]:
        gram = gram_matrix(self.interactions)
        precision = fit_precision(gram, self.config.l2, self.config.precision)
        if FIT_BYTES_PER_ITEM_PAIR[precision] * self.n_items**2 / 1e9 > self.config.max_memory_gb:
            log.warning("EASE: float64 would exceed model.max_memory_gb; fitting in float32")
            precision = "float32"
        self.weights.copy_(ease_weights(gram, self.config.l2, precision, self.weights.device))
        return {"float32": float(precision == "float32")}

    def score(self, users: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        return torch.sparse.mm(self.user_rows(users, self.weights.device), self.weights)


def machine_memory_note() -> str:
    """``" (this machine has N GB)"`` where the OS tells, else ``""``."""
    try:
        return f" (this machine has {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1e9:.0f} GB)"
    except (AttributeError, ValueError, OSError):
        return ""


def gram_matrix(interactions: sp.csr_matrix) -> torch.Tensor:
    """The dense float64 item-item Gram matrix :math:`X^\top X` of a (binary) sparse matrix
    (exact: co-occurrence counts)."""
    x = sp.csr_matrix(interactions, dtype=np.float64)
    return torch.from_numpy((x.T @ x).toarray())


def condition_bound(gram: torch.Tensor, l2: float) -> float:
    """An upper bound on the condition number of ``gram + l2 I`` for a non-negative PSD
    ``gram``: its largest eigenvalue is at most its largest row sum (Gershgorin), its
    smallest at least ``l2``."""
    return float((gram.abs().sum(dim=1).max() + l2) / l2) if gram.numel() else 1.0


def fit_precision(gram: torch.Tensor, l2: float, setting: str) -> str:
    """``float32`` or ``float64`` for ``setting`` (``auto``: float32 when provably well conditioned)."""
    if setting != "auto":
        return setting
    return "float32" if condition_bound(gram, l2) <= FLOAT32_MAX_CONDITION else "float64"


def ease_weights(
    gram: torch.Tensor, l2: float, precision: str = "float32", device: str | torch.device = "cpu"
) -> torch.Tensor:
    r"""EASE's ``B = I - P diag(1/diag P)`` with :math:`P = (G + \lambda I)^{-1}`, as float32.

    One Cholesky factorisation and inverse in ``precision`` (``gram`` is not modified).  For
    a grid of λ values this is the cheapest exact path per value on a CPU: an
    eigendecomposition of ``G`` shared by the grid still needs one ``n^3`` product per
    value (:math:`V \operatorname{diag}(1/(s+\lambda)) V^\top`, 2n³ flops) against the
    factorisation and inverse's n³, and the decomposition itself costs 5-10 of them
    (measured at 3k and 9.3k items).  Reusable by other closed-form linear models.
    """
    dtype = torch.float32 if precision == "float32" else torch.float64
    a = gram.to(device=device, dtype=dtype, copy=True)
    a.diagonal().add_(l2)
    factor = torch.linalg.cholesky(a)  # G + λI is symmetric positive definite for λ > 0
    del a
    inverse = torch.cholesky_inverse(factor)
    del factor
    inverse /= -inverse.diagonal()  # column j divided by -P_jj
    inverse.diagonal().zero_()
    return inverse.to(torch.float32)
