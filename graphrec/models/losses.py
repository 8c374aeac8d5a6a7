"""Losses shared by the recommenders (kept beside the models, as in PyG)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    r"""Bayesian personalised ranking loss, averaged over the batch.

    .. math::
        \mathcal{L}_{BPR} = -\frac{1}{B}\sum_{(u,i,j)} \ln \sigma(\hat y_{ui} - \hat y_{uj})

    Args:
        pos_scores: ``[B]`` scores of (user, positive item) pairs.
        neg_scores: ``[B]`` scores of (user, negative item) pairs.
    """
    # softplus(-x) == -log(sigmoid(x)) but stays finite for large |x|.
    return F.softplus(neg_scores - pos_scores).mean()


def l2_penalty(*embeddings: torch.Tensor) -> torch.Tensor:
    r"""L2 penalty on a batch's ego embeddings, as in LightGCN:

    .. math::
        \frac{1}{2B}\sum_{e \in \text{batch}} \lVert e \rVert_2^2

    Args:
        embeddings: tensors of shape ``[B, d]`` (users, positive and negative items).
    """
    batch = embeddings[0].shape[0]
    total = embeddings[0].pow(2).sum()
    for e in embeddings[1:]:
        total = total + e.pow(2).sum()
    return total / (2.0 * batch)


#: batch rows per block of :class:`_GatheredBPR`: the block's gathered ``[rows, d]`` tables and
#: their gradients stay in the core's caches between the gather, the scores and the scatter of
#: the gradient, instead of streaming ``[B, d]`` intermediates through memory a dozen times
#: (forward and autograd's backward).  Measured on the 2-core Xeon at B = 333k, N = 325k,
#: d = 32 (forward + backward): one thread 237 / 234 / 264 ms for 8k / 32k / 128k rows; two
#: threads beside other jobs 8.0 / 2.4 / 1.0 s, since each of the block's ~15 small ops waits at
#: an OpenMP barrier for a descheduled thread: the largest block that costs nothing on one thread
_BPR_BLOCK_ROWS = 32768


class _GatheredBPR(torch.autograd.Function):
    r"""BPR over rows gathered from a node table, and the L2 penalty of the same rows of a
    second table, forward and gradients in one blocked pass.

    With :math:`x_b = e_{u_b} \cdot (e_{n_b} - e_{p_b})` (rows of ``nodes``) the outputs are
    :math:`\tfrac1B \sum_b \operatorname{softplus}(x_b)` (:func:`bpr_loss`) and
    :math:`\tfrac1{2B} \sum_{r \in u, p, n} \lVert w_r \rVert^2` (:func:`l2_penalty`, rows of
    ``ego``), and the gradients

    .. math::
        \partial e_u \mathrel{+}= \tfrac{\sigma(x)}{B}(e_n - e_p),\quad
        \partial e_p \mathrel{-}= \tfrac{\sigma(x)}{B} e_u,\quad
        \partial e_n \mathrel{+}= \tfrac{\sigma(x)}{B} e_u,\qquad
        \partial w = \tfrac{c}{B} \odot w

    (:math:`c`: how often each node occurs in the batch), which are what autograd forms through
    the gathers, products and sums; they agree with it to float rounding (the sums are taken
    in another order).  The BPR gradient is formed in the forward (block by block, while the
    rows are in cache) when wanted; the backward only scales it by the incoming gradient.
    Blocks of :data:`_BPR_BLOCK_ROWS` rows.
    """

    @staticmethod
    def forward(
        ctx,
        nodes: torch.Tensor,
        ego: torch.Tensor,
        users: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        wants: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        batch = users.shape[0]
        grad_nodes = torch.zeros_like(nodes) if wants else None
        rank = torch.zeros((), dtype=torch.float64, device=nodes.device)
        for start in range(0, batch, _BPR_BLOCK_ROWS):
            rows = slice(start, start + _BPR_BLOCK_ROWS)
            u = nodes.index_select(0, users[rows])
            p = nodes.index_select(0, pos[rows])
            n = nodes.index_select(0, neg[rows])
            n_minus_p = n.sub_(p)  # n's block is ours: reused in place
            x = (u * n_minus_p).sum(-1)
            rank += F.softplus(x).sum(dtype=torch.float64)
            if grad_nodes is not None:
                weight = torch.sigmoid(x).div_(batch).unsqueeze(1)
                u.mul_(weight)  # σ(x)/B e_u, the positive's and the negative's gradient
                grad_nodes.index_add_(0, users[rows], n_minus_p.mul_(weight))
                grad_nodes.index_add_(0, pos[rows], u, alpha=-1)
                grad_nodes.index_add_(0, neg[rows], u)
        counts = torch.bincount(torch.cat([users, pos, neg]), minlength=ego.shape[0])
        counts = counts.to(ego.dtype)
        reg = (counts * ego.pow(2).sum(-1)).sum() / (2.0 * batch)
        ctx.save_for_backward(grad_nodes, ego, counts)
        ctx.batch = batch
        return (rank / batch).to(nodes.dtype), reg

    @staticmethod
    def backward(ctx, grad_rank: torch.Tensor, grad_reg: torch.Tensor):  # type: ignore[override]
        grad_nodes, ego, counts = ctx.saved_tensors
        if grad_nodes is not None and ctx.needs_input_grad[0]:
            # 1 is the usual incoming gradient (the loss itself): skip an [N, d] pass
            grad_nodes = grad_nodes if bool(grad_rank == 1) else grad_nodes * grad_rank
        else:
            grad_nodes = None
        grad_ego = None
        if ctx.needs_input_grad[1]:
            grad_ego = ego * (counts * (grad_reg / ctx.batch)).unsqueeze(1)
        return grad_nodes, grad_ego, None, None, None, None


def gathered_bpr_l2(
    nodes: torch.Tensor,
    ego: torch.Tensor,
    users: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(bpr_loss, l2_penalty)`` of a batch whose rows are taken from node tables.

    The same values as ``bpr_loss((nodes[users] * nodes[pos]).sum(-1), (nodes[users] *
    nodes[neg]).sum(-1))`` and ``l2_penalty(ego[users], ego[pos], ego[neg])``, and their
    gradients with respect to ``nodes`` and ``ego``, to float rounding, without holding any
    ``[B, d]`` intermediate (:class:`_GatheredBPR`).

    Args:
        nodes: ``[N, d]`` propagated embeddings (the scores' rows).
        ego: ``[N, d]`` embeddings penalised by L2 (LightGCN's layer-0 table).
        users, pos, neg: ``[B]`` row indices into both tables.
    """
    wants = torch.is_grad_enabled() and (nodes.requires_grad or ego.requires_grad)
    rank, reg = _GatheredBPR.apply(nodes, ego, users, pos, neg, wants)
    return rank, reg


#: elements of one ``[rows, candidates]`` block of logits in :class:`_FusedInfoNCE` (1 MiB of
#: float32): a block stays in the core's L2 cache between the product that makes it, its
#: ``exp`` and the two products that use it, instead of streaming an ``[n, m]`` matrix
#: through memory five times (measured fastest on the 2-core Xeon, 32-128 rows for m = 3.5k-11k)
_BLOCK_ELEMENTS = 1 << 18
#: on a GPU the blocks only bound memory (256 MiB): few large kernels beat many small ones
_GPU_BLOCK_ELEMENTS = 1 << 26


def _row_chunk(candidates: int, device: torch.device) -> int:
    if device.type != "cpu":
        return max(16, _GPU_BLOCK_ELEMENTS // max(1, candidates))
    return max(16, min(1024, _BLOCK_ELEMENTS // max(1, candidates)))


class _FusedInfoNCE(torch.autograd.Function):
    r"""Mean InfoNCE of pre-normalised, pre-scaled rows, forward and gradients in one blocked pass.

    ``q = normalize(view1) / tau`` (``[n, d]``), ``k = normalize(view2)`` (``[n, d]``, the
    positives) and ``c`` (``[m, d]``, the candidates of the denominator: ``k`` itself for
    in-batch negatives, every node's second view for RLMRec's all-node form).  With
    :math:`P = \operatorname{softmax}(q c^\top)` row-wise the loss and its gradients are

    .. math::
        \mathcal L = \tfrac1n \textstyle\sum_i (\operatorname{lse}_i - q_i \cdot k_i),\quad
        \partial_q = \tfrac1n (P c - k),\quad \partial_c = \tfrac1n P^\top q,\quad
        \partial_k = -\tfrac1n q .

    The rows of ``q`` are taken in blocks (:func:`_row_chunk`); each block's logits are
    exponentiated in place, summed, and used at once for its rows of :math:`P c` and its
    share of :math:`P^\top q`, so no ``[n, m]`` matrix is ever held and each block is
    read from cache.  When ``1/tau <= 40`` the logits are bounded by 40 and ``exp`` cannot
    overflow, so no row maximum is subtracted (as before); otherwise it is.  The gradients
    are formed in the forward when any input needs one (training always does), so the
    backward only scales them by the incoming gradient.
    """

    @staticmethod
    def forward(
        ctx, q: torch.Tensor, k: torch.Tensor, c: torch.Tensor, stable: bool, wants: bool
    ) -> torch.Tensor:  # type: ignore[override]
        n = q.shape[0]
        wants = wants and any(ctx.needs_input_grad[:3])
        lse = torch.empty(n, dtype=q.dtype, device=q.device)
        grad_q = torch.empty_like(q) if wants else None
        grad_c = torch.zeros_like(c) if wants else None
        step = _row_chunk(c.shape[0], q.device)
        for start in range(0, n, step):
            qb = q[start : start + step]
            block = torch.mm(qb, c.T)
            top = block.amax(dim=1, keepdim=True) if stable else None
            if top is not None:
                block.sub_(top)
            block.exp_()
            sums = block.sum(dim=1, keepdim=True)
            lse[start : start + step] = (
                (sums.log() + top).squeeze(1) if top is not None else sums.log().squeeze(1)
            )
            if grad_q is not None and grad_c is not None:
                # (E c) / r and E^T (q / r): the softmax's division moved onto the [b, d] sides
                torch.mm(block, c, out=grad_q[start : start + step]).div_(sums)
                grad_c.addmm_(block.T, qb / sums)
        if grad_q is not None:
            grad_q.sub_(k)
        ctx.save_for_backward(q, grad_q, grad_c)
        return (lse - (q * k).sum(dim=1)).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        q, grad_q, grad_c = ctx.saved_tensors
        scale = grad / q.shape[0]
        grad_k = None
        if ctx.needs_input_grad[1]:
            grad_k = q * (-scale)
        return (
            grad_q * scale if ctx.needs_input_grad[0] else None,
            grad_k,
            grad_c * scale if ctx.needs_input_grad[2] else None,
            None,
            None,
        )


def info_nce(
    view1: torch.Tensor,
    view2: torch.Tensor,
    temperature: float,
    candidates: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""InfoNCE between two views of the same nodes, with in-batch negatives.

    .. math::
        \mathcal{L} = -\frac{1}{n}\sum_{i} \ln
            \frac{\exp(\cos(z'_i, z''_i)/\tau)}{\sum_{j} \exp(\cos(z'_i, z''_j)/\tau)}

    Row ``i`` of ``view1`` and ``view2`` are two views of node ``i``; the other rows of
    ``view2`` are its negatives (SGL's and SimGCL's contrast over the batch's unique
    users or items, as in SELFRec, instead of over every node: O(n^2 d) for a batch of
    n unique nodes rather than O(n N d)).  Computed by :class:`_FusedInfoNCE` (blocked,
    no ``[n, n]`` or ``[n, N]`` matrix held, analytic gradients).

    Args:
        view1, view2: ``[n, d]`` embeddings (normalised here).
        temperature: :math:`\tau > 0`.
        candidates: ``[N, d]`` second-view embeddings of *every* node of the type, to
            take the denominator over all of them instead of the batch (RLMRec's
            ``cal_infonce_loss``; ``view2``'s rows are among them).
    """
    q = F.normalize(view1, dim=-1) / temperature
    k = F.normalize(view2, dim=-1)
    c = k if candidates is None else F.normalize(candidates, dim=-1)
    wants = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or c.requires_grad)
    return _FusedInfoNCE.apply(q, k, c, 1.0 / temperature > 40.0, wants)


def l2_parameters(module: torch.nn.Module) -> torch.Tensor:
    r"""Sum of squared L2 norms of all of ``module``'s trainable parameters.

    RLMRec's ``reg_params``: :math:`\sum_W \lVert W \rVert_2^2`, not divided by the batch
    size (weight 1e-5 in its SGL / SimGCL configs for Amazon-book).
    """
    total = None
    for p in module.parameters():
        if p.requires_grad:
            term = p.pow(2).sum()
            total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def transe_distance(head: torch.Tensor, relation: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    r"""Squared translation distance :math:`\lVert h + r - t \rVert_2^2` per row (``[B]``)."""
    return (head + relation - tail).pow(2).sum(-1)


def kg_margin_bpr_loss(pos_distance: torch.Tensor, neg_distance: torch.Tensor) -> torch.Tensor:
    r"""KGAT's pairwise KG loss: :math:`-\ln\sigma(g(h,r,t') - g(h,r,t))`, averaged.

    Args:
        pos_distance: ``[B]`` distances of true triples.
        neg_distance: ``[B]`` distances of corrupted triples.
    """
    return F.softplus(pos_distance - neg_distance).mean()
