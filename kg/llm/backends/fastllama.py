"""Batched forward of a Llama-family causal LM for many conversations at once.

Why not ``model.generate``: on a CPU, extracting facts from short catalogue texts is
dominated by (a) re-reading the shared prompt prefix, (b) the per-step cost of a
growing ``DynamicCache`` (every step concatenates the whole cache of every row) and
(c) Python/``generate`` overhead per call.  This runner

* keeps the key/value cache of the shared prefix (system message + example turn)
  **once**, shape ``[L, 1, H_kv, P, D]``, and lets every row attend to it (no copy);
* keeps each row's own tokens in a preallocated cache ``[L, B, H_kv, C, D]`` written in
  place (grown by doubling when full);
* feeds, in one forward, a *different number of tokens per row* (a row that is given
  a stretch of forced text — its item text, the next JSON key — and a row that
  generates one token share the step).  Matmuls run on the packed real tokens only,
  ``[N, hidden]``; attention uses a per-row mask over the slots, so padding costs no
  matmul work;
* can *retract* the tail of a row (mark slots invalid and rewind its positions), so a
  caller can replace what the model wrote with a canonical rendering.

Math per layer (HF Llama, pre-norm): ``h = x + W_o · attn(RoPE(W_q n(x)), RoPE(W_k n(x)), W_v n(x))``,
``x' = h + W_down (silu(W_gate n(h)) ⊙ W_up n(h))`` with ``n`` = RMSNorm; grouped-query
attention (``H`` query heads share ``H_kv`` key/value heads); logits ``= W_head n(x_last)``.
Tested against ``transformers``' own forward (same logits to float tolerance).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

if TYPE_CHECKING:
    import torch

#: keys and values ``[L, 1, H_kv, P, D]`` of a shared prompt prefix
Prefix: TypeAlias = "tuple[torch.Tensor, torch.Tensor]"


def supports(lm: Any) -> bool:
    """True when ``lm`` is a plain Llama-architecture model this runner reproduces exactly."""
    cfg = getattr(lm, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        return False
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    rope_type = (
        rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    )
    return (
        rope_type == "default"
        and not getattr(cfg, "attention_bias", False)
        and not getattr(cfg, "mlp_bias", False)
        and getattr(cfg, "hidden_act", "silu") == "silu"
        and getattr(cfg, "pretraining_tp", 1) == 1
    )


@dataclass
class RowCache:
    """Per-row state of a batch: own key/value slots and how many are live.

    Attributes:
        k, v: ``[L, B, H_kv, C, D]`` keys/values of each row's own tokens; row ``b``'s
            live tokens are slots ``0 .. length[b]-1`` (RoPE position = prefix length + slot).
        length: ``[B]`` live tokens per row (a retraction simply lowers it).
        prefix_len: length of the shared prefix every row continues.
    """

    k: torch.Tensor
    v: torch.Tensor
    length: torch.Tensor
    prefix_len: int


class _Group(NamedTuple):
    """Rows attended together in one step (see :meth:`LlamaRunner._groups`)."""

    members: torch.Tensor | None  # row indices; None = every row (a view of the cache, no gather)
    T: int  # queries per row (padded)
    S: int  # own slots attended
    flat: torch.Tensor  # packed index of each query in the padded [G, T] layout
    sel: torch.Tensor  # the packed tokens of this group
    mask: torch.Tensor  # [G, 1, T, S] additive causal mask


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed blocks for reuse instead of handing them back to the
    OS (no mmap for large blocks, no trimming); returns whether it took the setting.

    Every decoding step allocates and frees tensors of a few MB; by default glibc maps each
    such block afresh and unmaps it when freed, so every step pays page faults and zeroing in
    the kernel: 35 of 113 CPU seconds on a 48-item products build, 6 with this setting.
    Process-wide and harmless elsewhere (the blocks are reused); a no-op off glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, 1 << 30))


def native_bf16_matmul() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX tiles or AVX-512 BF16):
    there a bf16 product runs 2-6x faster than float32 (measured: 160 -> 810-960 GFLOP/s for
    a prefill-sized [256, 576] x [576, 1728] product on one core); elsewhere it is emulated
    and slower."""
    import torch

    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_matmul_dtype(setting: str, device: Any) -> torch.dtype:
    """The dtype of the weight products for ``setting`` (``auto`` | ``float32`` | ``bfloat16``)."""
    import torch

    if setting == "auto":
        on_cpu = str(device).startswith("cpu")
        return torch.bfloat16 if on_cpu and native_bf16_matmul() else torch.float32
    if setting not in ("float32", "bfloat16"):
        raise ValueError(f"matmul dtype must be auto, float32 or bfloat16, got {setting!r}")
    return getattr(torch, setting)


class LlamaRunner:
    """Packed, batched Llama forward with a shared-prefix cache (see module doc).

    ``matmul_dtype``: the weight products (q/k/v, output, gate/up, down, the output head)
    run in this dtype with their inputs cast to it and results cast back; the residual
    stream, norms, RoPE, attention and the caches stay in the model's dtype.  ``auto``:
    bfloat16 on a CPU that multiplies it natively (:func:`native_bf16_matmul`), else the
    model's dtype.
    """

    def __init__(self, lm: Any, matmul_dtype: str = "float32") -> None:
        import torch

        if not supports(lm):
            raise ValueError("LlamaRunner supports plain Llama-architecture models only")
        cfg = lm.config
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        rope = getattr(cfg, "rope_parameters", None) or {}
        theta = (
            rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
            if isinstance(rope, dict)
            else 10000.0
        )
        base = lm.model
        self.embed = base.embed_tokens.weight.detach()
        self.norm = base.norm.weight.detach()
        self.head = lm.lm_head.weight.detach()
        self.layers = []
        for layer in base.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                (
                    layer.input_layernorm.weight.detach(),
                    # one matmul for q, k and v; one for gate and up
                    torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
                    .detach()
                    .t()
                    .contiguous(),
                    att.o_proj.weight.detach().t().contiguous(),
                    layer.post_attention_layernorm.weight.detach(),
                    torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach().t().contiguous(),
                    mlp.down_proj.weight.detach().t().contiguous(),
                )
            )
        self.dtype = self.embed.dtype
        self.device = self.embed.device
        self.matmul_dtype = resolve_matmul_dtype(matmul_dtype, self.device)
        keep_freed_memory()
        #: seconds in forward, split between prefill (tokens fed in stretches: prompt and item
        #: text) and decode (one token per row) in proportion to the tokens of each in a step
        self.seconds = {"prefill": 0.0, "decode": 0.0}
        if self.matmul_dtype != self.dtype:  # keep only the product copies of the big matrices
            self.head = self.head.to(self.matmul_dtype)
            self.layers = [
                (w_in, w_qkv.to(self.matmul_dtype), w_o.to(self.matmul_dtype), w_post,
                 w_gu.to(self.matmul_dtype), w_down.to(self.matmul_dtype))
                for w_in, w_qkv, w_o, w_post, w_gu, w_down in self.layers
            ]  # fmt: skip
        d = self.head_dim
        self.inv_freq = 1.0 / (
            theta ** (torch.arange(0, d, 2, dtype=torch.float32, device=self.device) / d)
        )
        self.q_dim = self.n_heads * d
        self.kv_dim = self.n_kv * d

    # -- pieces --------------------------------------------------------------------
    def _mm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x @ w`` in ``w``'s dtype, returned in ``x``'s."""
        return x @ w if x.dtype == w.dtype else (x.to(w.dtype) @ w).to(x.dtype)

    def _rms(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        import torch

        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def _rope(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x: ``[N, heads, D]``, positions ``[N]`` -> rotated (HF rotate-half convention)."""
        import torch

        freqs = positions.to(torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().to(x.dtype)[:, None, :], emb.sin().to(x.dtype)[:, None, :]
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    # -- prefix --------------------------------------------------------------------
    def prefix(self, ids: Sequence[int]) -> Prefix:
        """Keys/values ``[L, 1, H_kv, P, D]`` of a shared prefix (computed once, reused)."""
        import torch

        cache = self.new_rows(1, len(ids))
        with torch.inference_mode():
            self.forward(cache, [list(ids)], None, logits=False)
        n = len(ids)
        return cache.k[:, :, :, :n].clone(), cache.v[:, :, :, :n].clone()

    def new_rows(self, batch: int, capacity: int, prefix_len: int = 0) -> RowCache:
        import torch

        shape = (len(self.layers), batch, self.n_kv, max(capacity, 8), self.head_dim)
        return RowCache(
            k=torch.zeros(shape, dtype=self.dtype, device=self.device),
            v=torch.zeros(shape, dtype=self.dtype, device=self.device),
            length=torch.zeros(batch, dtype=torch.long, device=self.device),
            prefix_len=prefix_len,
        )

    def _ensure(self, cache: RowCache, needed: int) -> None:
        import torch

        cap = cache.k.shape[3]
        if needed <= cap:
            return
        pad = max(2 * cap, needed) - cap
        grow = lambda t: torch.cat([t, t.new_zeros(*t.shape[:3], pad, t.shape[4])], dim=3)  # noqa: E731
        cache.k, cache.v = grow(cache.k), grow(cache.v)

    def retract(self, cache: RowCache, row: int, n_tokens: int) -> None:
        """Forget the last ``n_tokens`` tokens of ``row`` (their slots are reused)."""
        if n_tokens > 0:
            cache.length[row] = max(0, int(cache.length[row]) - n_tokens)

    def reset_row(self, cache: RowCache, row: int) -> None:
        """Empty ``row`` for a new conversation."""
        cache.length[row] = 0

    # -- forward -------------------------------------------------------------------
    def forward(
        self,
        cache: RowCache,
        tokens: list[list[int]],
        prefix: Prefix | None,
        logits: bool = True,
        vocab: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Feed ``tokens[b]`` (possibly empty) to row ``b``; returns ``[B, V]`` logits of each
        row's last fed token (rows fed nothing get zeros), or ``None`` with ``logits=False``.

        ``vocab``: optional ``[U]`` token ids; logits are then computed for those only,
        ``[B, U]`` (the output projection is a fifth of a decode step's work; constrained
        decoding needs only the tokens it may choose).

        Matmuls run on the packed real tokens.  Attention runs per group of rows fed the
        same kind of input: rows fed one token (decoding) and rows fed a stretch (a new
        item's text) are never padded to each other's length."""

        lens = [len(t) for t in tokens]
        if not any(lens):
            return None
        started = time.perf_counter()
        try:
            return self._forward(cache, tokens, lens, prefix, logits, vocab)
        finally:
            fed = sum(lens)
            decoded = sum(1 for n in lens if n == 1)
            elapsed = time.perf_counter() - started
            self.seconds["decode"] += elapsed * decoded / fed
            self.seconds["prefill"] += elapsed * (fed - decoded) / fed

    def _forward(
        self,
        cache: RowCache,
        tokens: list[list[int]],
        lens: list[int],
        prefix: Prefix | None,
        logits: bool,
        vocab: torch.Tensor | None,
    ) -> torch.Tensor | None:
        import torch

        dev = self.device
        lengths = torch.tensor(lens, dtype=torch.long, device=dev)
        self._ensure(cache, int((cache.length + lengths).max()))
        row_of = torch.repeat_interleave(torch.arange(len(tokens), device=dev), lengths)  # [N]
        offset = torch.cat(
            [torch.arange(n, device=dev) for n in lens if n]
        )  # [N] index within the row's feed
        slot = cache.length[row_of] + offset  # [N] where each token's key/value goes
        positions = cache.prefix_len + slot
        ids = torch.tensor([t for row in tokens for t in row], dtype=torch.long, device=dev)
        groups = self._groups(cache, lens, lengths, row_of, offset)
        H, Hk, D = self.n_heads, self.n_kv, self.head_dim
        x = self.embed[ids]  # [N, hidden]
        for li, (w_in, w_qkv, w_o, w_post, w_gu, w_down) in enumerate(self.layers):
            qkv = self._mm(self._rms(x, w_in), w_qkv)
            N = x.shape[0]
            q = self._rope(qkv[:, : self.q_dim].view(N, H, D), positions)
            k = self._rope(qkv[:, self.q_dim : self.q_dim + self.kv_dim].view(N, Hk, D), positions)
            v = qkv[:, self.q_dim + self.kv_dim :].view(N, Hk, D)
            cache.k[li][row_of, :, slot] = k
            cache.v[li][row_of, :, slot] = v
            att = x.new_empty(N, H * D)
            for group in groups:
                self._attend(att, q, cache, li, group, prefix, len(tokens))
            x = x + self._mm(att, w_o)
            gu = self._mm(self._rms(x, w_post), w_gu)
            half = gu.shape[-1] // 2
            x = x + self._mm(torch.nn.functional.silu(gu[:, :half]) * gu[:, half:], w_down)
        cache.length = cache.length + lengths
        if not logits:
            return None
        last = torch.cumsum(lengths, 0) - 1
        fed = lengths > 0
        hidden = self._rms(x[last.clamp(min=0)], self.norm)
        head = self.head if vocab is None else self.head[vocab]
        out_logits = self._mm(hidden, head.t())
        return out_logits * fed[:, None].to(out_logits.dtype)

    def _groups(
        self,
        cache: RowCache,
        lens: list[int],
        lengths: torch.Tensor,
        row_of: torch.Tensor,
        offset: torch.Tensor,
    ) -> list[_Group]:
        """Attention groups of one step: the decoding rows (fed one token) and the chunk rows
        (fed a stretch), each padded only to its own longest feed."""
        import torch

        B, dev = len(lens), self.device
        groups = []
        decoding = [b for b in range(B) if lens[b] == 1]
        chunks = [b for b in range(B) if lens[b] > 1]
        # the decoding group spans every row so its keys/values are a view of the cache (no
        # gather); rows not decoding just get a discarded dummy query
        for members in ((list(range(B)) if decoding else []), chunks):
            if not members:
                continue
            m = torch.tensor(members, dtype=torch.long, device=dev)
            every_row = len(members) == B
            T = 1 if members is not chunks else max(lens[b] for b in members)
            S = int((cache.length[m] + lengths[m]).max())
            # packed index of (row, t) for the group's padded [G, T] layout
            member_pos = torch.full((B,), -1, dtype=torch.long, device=dev)
            member_pos[m] = torch.arange(len(members), device=dev)
            in_group = (member_pos[row_of] >= 0) & (
                (lengths[row_of] == 1) if members is not chunks else True
            )
            flat = (member_pos[row_of] * T + offset)[in_group]
            # query t of row b sees own slots j <= length[b] + t (and the whole prefix)
            limit = cache.length[m][:, None] + torch.arange(T, device=dev)[None, :]  # [G, T]
            mask = torch.zeros(len(members), 1, T, S, dtype=self.dtype, device=dev)
            mask.masked_fill_(
                torch.arange(S, device=dev)[None, None, None, :] > limit[:, None, :, None],
                float("-inf"),
            )
            groups.append(
                _Group(None if every_row else m, T, S, flat, in_group.nonzero().squeeze(1), mask)
            )
        return groups

    def _attend_fused(
        self, qp: torch.Tensor, cache: RowCache, li: int, group: _Group, prefix: Prefix | None
    ) -> torch.Tensor:
        """Attention of a chunk group's padded queries ``qp`` (``[G*T, H, D]``) through
        ``scaled_dot_product_attention``, in the weight products' dtype; returns the real
        queries' outputs ``[n, H*D]``.

        Each row's keys are [shared prefix, own slots]: the prefix is copied per row here,
        which costs little beside a stretch's attention (and the fused kernel never holds the
        ``[T, P + S]`` scores); decoding rows keep :meth:`_attend`'s uncopied prefix.
        """
        import torch

        H, Hk, D = self.n_heads, self.n_kv, self.head_dim
        m, T, S, flat, _, mask = group
        assert m is not None  # a chunk group names its rows
        G, low = len(m), self.matmul_dtype
        keys, values = cache.k[li][m, :, :S], cache.v[li][m, :, :S]  # [G, Hk, S, D]
        visible = mask == 0  # [G, 1, T, S]
        if prefix is not None:
            pk, pv = prefix[0][li], prefix[1][li]  # [1, Hk, P, D]
            keys = torch.cat([pk.expand(G, -1, -1, -1), keys], dim=2)
            values = torch.cat([pv.expand(G, -1, -1, -1), values], dim=2)
            seen = visible.new_ones(G, 1, T, pk.shape[2])
            visible = torch.cat([seen, visible], dim=3)
        # grouped-query attention: query head h reads key/value head h // (H / Hk)
        keys = keys.repeat_interleave(H // Hk, dim=1).to(low)
        values = values.repeat_interleave(H // Hk, dim=1).to(low)
        queries = qp.view(G, T, H, D).transpose(1, 2).to(low)
        out = torch.nn.functional.scaled_dot_product_attention(
            queries, keys, values, attn_mask=visible
        )  # [G, H, T, D]; the default scale is D^-1/2
        return out.transpose(1, 2).reshape(G * T, H * D)[flat].to(qp.dtype)

    def _attend(
        self,
        att: torch.Tensor,
        q: torch.Tensor,
        cache: RowCache,
        li: int,
        group: _Group,
        prefix: Prefix | None,
        B: int,
    ) -> None:
        """Attention of layer ``li`` for one group's queries, written into ``att`` (``[N, H*D]``)."""
        import torch

        H, Hk, D = self.n_heads, self.n_kv, self.head_dim
        per_kv = H // Hk
        scale = D**-0.5
        m, T, S, flat, sel, mask = group
        G = B if m is None else len(m)
        qp = q.new_zeros(G * T, H, D)
        qp[flat] = q[sel]
        if m is not None and T > 1:  # rows fed a stretch of text (prefill): one fused kernel
            att[sel] = self._attend_fused(qp, cache, li, group, prefix)
            return
        # grouped-query attention: query heads g*per_kv..g*per_kv+per_kv-1 share kv head g
        qg = qp.view(G, T, Hk, per_kv, D).permute(0, 2, 3, 1, 4).reshape(G, Hk, per_kv * T, D)
        if m is None:
            kr, vr = cache.k[li][:, :, :S], cache.v[li][:, :, :S]
        else:
            kr, vr = cache.k[li][m, :, :S], cache.v[li][m, :, :S]
        scores = (qg @ kr.transpose(-1, -2)).view(G, Hk, per_kv, T, S) * scale + mask[:, :, None]
        if prefix is not None:
            # softmax over [prefix slots, own slots] in two parts: no concatenation; the shared
            # prefix is one [Hk, P, D] block for all rows (rows folded into the matmul, not expanded)
            pk, pv = prefix[0][li, 0], prefix[1][li, 0]  # [Hk, P, D]
            qf = qg.transpose(0, 1).reshape(Hk, G * per_kv * T, D)
            pscores = (qf @ pk.transpose(-1, -2)).view(Hk, G, per_kv, T, -1).transpose(0, 1) * scale
            top = torch.maximum(pscores.amax(-1, keepdim=True), scores.amax(-1, keepdim=True))
            pe, re_ = (pscores - top).exp_(), (scores - top).exp_()
            denom = pe.sum(-1, keepdim=True) + re_.sum(-1, keepdim=True)
            pout = (pe.transpose(0, 1).reshape(Hk, G * per_kv * T, -1) @ pv).view(
                Hk, G, per_kv * T, D
            )
            out = (pout.transpose(0, 1) + re_.view(G, Hk, per_kv * T, S) @ vr) / denom.view(
                G, Hk, per_kv * T, 1
            )
        else:
            out = torch.softmax(scores, dim=-1).view(G, Hk, per_kv * T, S) @ vr
        att[sel] = out.view(G, Hk, per_kv, T, D).permute(0, 3, 1, 2, 4).reshape(G * T, H * D)[flat]
