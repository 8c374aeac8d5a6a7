"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), fitted in closed form."""
from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch

from graphrec.config import doc
from graphrec.errors import ConfigError
from graphrec.models.base import ClosedFormRecommender

#: bytes per item² while fitting: the float64 Gram / Cholesky factor and inverse (8 + 8) + B (4)
FIT_BYTES_PER_ITEM_PAIR = 20


@dataclass
class EASEConfig:
    """EASE: a dense item-item weight matrix with zero diagonal, in closed form (no SGD; `train.*` optimiser keys are unused)."""

    name: str = doc("Model name.", "ease")
    l2: float = doc("L2 regularisation λ of B (added to the Gram matrix's diagonal); choose it on validation, typically 10-5000.", 500.0, gt=0.0, le=1e12)
    max_memory_gb: float = doc("Refuse (ConfigError) to fit when the dense n_items² matrices would need more than this many GB (20 bytes per item pair while fitting: ~8 GB at 20k items).", 8.0, gt=0.0, le=1e6)

    def validate(self, prefix: str = "model") -> None:
        if not self.l2 > 0:
            raise ConfigError(f"{prefix}.l2 must be positive (the Gram matrix may be singular), got {self.l2}")
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
    config_class = EASEConfig

    def __init__(self, n_users: int, n_items: int, config: EASEConfig, train: sp.csr_matrix) -> None:
        needed = FIT_BYTES_PER_ITEM_PAIR * n_items**2 / 1e9
        if needed > config.max_memory_gb:
            raise ConfigError(
                f"model.max_memory_gb: EASE on {n_items} items needs a dense {n_items} x {n_items} item-item "
                f"matrix, about {needed:.1f} GB while fitting ({4 * n_items**2 / 1e9:.1f} GB for B alone), "
                f"more than model.max_memory_gb = {config.max_memory_gb:g}; raise the limit if the machine "
                "has the memory, or use model.name: itemknn (sparse)"
            )
        super().__init__(n_users, n_items, config, train)
        self.register_buffer("weights", torch.zeros(n_items, n_items))

    def _fit(self) -> dict[str, float]:
        x = self.interactions
        device = self.weights.device
        gram = torch.from_numpy((x.T @ x).toarray()).to(device=device, dtype=torch.float64)
        gram.diagonal().add_(self.config.l2)
        factor = torch.linalg.cholesky(gram)  # X^T X + λI is symmetric positive definite for λ > 0
        del gram
        precision = torch.cholesky_inverse(factor)
        del factor
        precision /= -precision.diagonal()  # column j divided by -P_jj
        precision.diagonal().zero_()
        self.weights.copy_(precision)
        return {}

    def score(self, users: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        return torch.sparse.mm(self.user_rows(users, self.weights.device), self.weights)
