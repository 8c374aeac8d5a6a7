r"""Sparse graph propagation for the user-item bipartite graph.

The normalised adjacency of LightGCN,

.. math::
    \hat A = D^{-1/2} \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix} D^{-1/2},

is built once from the training CSR matrix ``R`` and kept as a torch CSR tensor of
shape ``[n_users + n_items, n_users + n_items]`` (users first, then items).  It is
never densified.

``torch.sparse.mm`` differentiates through the sparse matrix by building its
transpose on every backward pass; since :math:`\hat A` is symmetric,
:class:`SymmetricSpMM` reuses it instead (``grad_x = Â @ grad_out``), which is what
makes a LightGCN epoch several times faster on a CPU.

Further CPU details that matter at this size (each measured by ``benchmarks/speed.py``):

* indices are int32 whenever they fit: MKL's sparse BLAS (LP64) takes 32-bit indices,
  so int64 ones are converted on *every* product;
* the product is written with ``addmm(out, A, x, beta=0, out=out)`` into a fresh
  uninitialised buffer: ``torch.sparse.mm`` first zero-fills a result and then copies
  MKL's output into it, two extra passes over ``[N, d]`` per product;
* :func:`propagate_sum` runs the whole LightGCN encoder
  :math:`\sum_{l \le L} \hat A^l x` as one autograd node whose backward is the same
  polynomial applied to the gradient (Horner's scheme, :math:`L` products), since every
  power of a symmetric matrix is symmetric.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def bipartite_adjacency(train: sp.spmatrix) -> sp.csr_matrix:
    """The ``(n_users + n_items)``-square symmetric 0/1 adjacency of a user x item matrix."""
    binary = sp.csr_matrix(train, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    binary.eliminate_zeros()
    n_users, n_items = binary.shape
    return sp.bmat([[None, binary], [binary.T, None]], format="csr", dtype=np.float32).tocsr()


def symmetric_normalize(adjacency: sp.spmatrix) -> sp.csr_matrix:
    r"""Return :math:`D^{-1/2} A D^{-1/2}`; isolated nodes keep all-zero rows."""
    adjacency = sp.csr_matrix(adjacency, dtype=np.float32)
    degree = np.asarray(adjacency.sum(axis=1), dtype=np.float64).ravel()
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0)
    scaling = sp.diags(inv_sqrt.astype(np.float32))
    normalized = (scaling @ adjacency @ scaling).tocsr()
    normalized.sort_indices()
    return normalized


def to_torch_csr(
    matrix: sp.spmatrix, device: str | torch.device = "cpu", index_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Convert a scipy matrix to a torch sparse CSR tensor (float32).

    Indices are int32 when ``nnz`` and the dimensions fit (the sparse BLAS of both MKL
    and cuSPARSE take them without a conversion per product), else int64;
    ``index_dtype`` forces one.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    if index_dtype is None:
        fits = max(matrix.nnz, *matrix.shape) < np.iinfo(np.int32).max
        index_dtype = torch.int32 if fits else torch.int64
    np_index = np.int32 if index_dtype == torch.int32 else np.int64
    with warnings.catch_warnings():
        # torch flags sparse CSR as "beta" on every construction; the ops used here are stable.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np_index, copy=False)),
            torch.from_numpy(matrix.indices.astype(np_index, copy=False)),
            torch.from_numpy(matrix.data),
            size=matrix.shape,
            device=device,
            check_invariants=False,  # scipy already guarantees a valid, sorted CSR
        )


def normalized_adjacency(train: sp.spmatrix, device: str | torch.device = "cpu") -> torch.Tensor:
    """LightGCN's symmetric-normalised bipartite adjacency as a torch CSR tensor."""
    return to_torch_csr(symmetric_normalize(bipartite_adjacency(train)), device)


def sparse_dense_mm(adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``adjacency @ x`` for a sparse CSR ``adjacency`` and a dense ``[N, d]`` ``x`` (no autograd).

    On CPU the product goes straight into an uninitialised result (``beta=0``: MKL
    never reads it), skipping the zero-fill and the copy of ``torch.sparse.mm``;
    the values are bitwise the same.
    """
    if (
        adjacency.layout == torch.sparse_csr
        and x.device.type == "cpu"
        and x.dtype == adjacency.dtype
    ):
        x = x.contiguous()
        out = torch.empty((adjacency.shape[0], x.shape[1]), dtype=x.dtype, device=x.device)
        return torch.addmm(out, adjacency, x, beta=0, out=out)
    return torch.sparse.mm(adjacency, x)


class SymmetricSpMM(torch.autograd.Function):
    """``adjacency @ x`` for a symmetric sparse ``adjacency``; gradient only w.r.t. ``x``."""

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adjacency = adjacency
        return sparse_dense_mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        # d(Ax)/dx^T g = A^T g = A g because A is symmetric: no transposed CSR needed.
        return None, sparse_dense_mm(ctx.adjacency, grad_out)


class DirectedSpMM(torch.autograd.Function):
    """``adjacency @ x`` for a non-symmetric sparse ``adjacency`` whose transpose is given
    (``grad_x = adjacency^T @ grad_out``); gradient only w.r.t. ``x``.  Use
    :func:`propagate_directed`."""

    @staticmethod
    def forward(
        ctx, adjacency: torch.Tensor, transposed: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:  # type: ignore[override]
        ctx.transposed = transposed
        return sparse_dense_mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        return None, None, sparse_dense_mm(ctx.transposed, grad_out.contiguous())


def propagate(adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One propagation step ``Â x`` (``x``: ``[N, d]``) through a symmetric sparse ``Â``."""
    if torch.is_grad_enabled() and x.requires_grad:
        return SymmetricSpMM.apply(adjacency, x)
    return sparse_dense_mm(adjacency, x)


def propagate_directed(
    adjacency: torch.Tensor, transposed: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """One step ``A x`` through a non-symmetric sparse ``A`` given with its transpose (SGL's
    RLMRec views, KGAT's attention matrix)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return DirectedSpMM.apply(adjacency, transposed, x)
    return sparse_dense_mm(adjacency, x)


def _polynomial(adjacency: torch.Tensor, x: torch.Tensor, num_layers: int) -> torch.Tensor:
    """``x + Â x + ... + Â^L x``, summed in that order (as the layer-by-layer loop does)."""
    if num_layers == 0:
        return x.clone()
    layer = sparse_dense_mm(adjacency, x)
    total = x + layer
    for _ in range(num_layers - 1):
        layer = sparse_dense_mm(adjacency, layer)
        total.add_(layer)  # our own buffer: in place, same rounding as `total + layer`
    return total


class SymmetricPolynomial(torch.autograd.Function):
    r"""``y = (I + Â + ... + Â^L) x`` for a symmetric ``Â``, as one autograd node.

    The Jacobian :math:`\sum_l \hat A^l` is symmetric, so the backward applies the
    same polynomial to the gradient, by Horner's scheme:
    :math:`h_L = g,\ h_{l} = g + \hat A h_{l+1}`, returning :math:`h_0` — exactly the
    sums autograd forms through :math:`L` :class:`SymmetricSpMM` nodes, without
    keeping :math:`L` intermediate ``[N, d]`` layers alive or building their graph.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor, num_layers: int) -> torch.Tensor:  # type: ignore[override]
        ctx.adjacency, ctx.num_layers = adjacency, num_layers
        return _polynomial(adjacency, x, num_layers)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        grad = grad.contiguous()
        if ctx.num_layers == 0:
            return None, grad, None
        h = grad
        for _ in range(ctx.num_layers):
            h = sparse_dense_mm(ctx.adjacency, h).add_(grad)  # = grad + Â h, in a fresh buffer
        return None, h, None


def propagate_sum(adjacency: torch.Tensor, x: torch.Tensor, num_layers: int) -> torch.Tensor:
    r"""LightGCN's layer sum :math:`\sum_{l=0}^{L} \hat A^l x` (``x``: ``[N, d]``, ``Â`` symmetric).

    Same values as ``L`` calls of :func:`propagate` summed with ``x``; differentiable
    in ``x`` (one :class:`SymmetricPolynomial` node, ``L`` sparse products backward).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return SymmetricPolynomial.apply(adjacency, x, num_layers)
    return _polynomial(adjacency, x, num_layers)
