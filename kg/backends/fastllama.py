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

from dataclasses import dataclass
from typing import Any, Sequence


def supports(lm: Any) -> bool:
    """True when ``lm`` is a plain Llama-architecture model this runner reproduces exactly."""
    cfg = getattr(lm, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        return False
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    return (
        rope_type == "default"
        and not getattr(cfg, "attention_bias", False)
        and not getattr(cfg, "mlp_bias", False)
        and getattr(cfg, "hidden_act", "silu") == "silu"
        and getattr(cfg, "pretraining_tp", 1) == 1
    )


@dataclass
class RowCache:
    """Per-row state of a batch: own key/value slots, validity, next position.

    Attributes:
        k, v: ``[L, B, H_kv, C, D]`` keys/values of each row's own tokens.
        valid: ``[B, C]`` bool, slot holds a live token of that row.
        used: slots consumed so far (same for all rows; rows pad shorter chunks).
        pos: ``[B]`` next RoPE position of each row (prefix length + live tokens).
    """

    k: Any
    v: Any
    valid: Any
    used: int
    pos: Any


class LlamaRunner:
    """Packed, batched Llama forward with a shared-prefix cache (see module doc)."""

    def __init__(self, lm: Any) -> None:
        import torch

        if not supports(lm):
            raise ValueError("LlamaRunner supports plain Llama-architecture models only")
        cfg = lm.config
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        rope = getattr(cfg, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)) if isinstance(rope, dict) else 10000.0
        base = lm.model
        self.embed = base.embed_tokens.weight.detach()
        self.norm = base.norm.weight.detach()
        self.head = lm.lm_head.weight.detach()
        self.layers = []
        for layer in base.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append((
                layer.input_layernorm.weight.detach(),
                # one matmul for q, k and v; one for gate and up
                torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]).detach().t().contiguous(),
                att.o_proj.weight.detach().t().contiguous(),
                layer.post_attention_layernorm.weight.detach(),
                torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach().t().contiguous(),
                mlp.down_proj.weight.detach().t().contiguous(),
            ))
        self.dtype = self.embed.dtype
        self.device = self.embed.device
        d = self.head_dim
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32, device=self.device) / d))
        self.q_dim = self.n_heads * d
        self.kv_dim = self.n_kv * d

    # -- pieces --------------------------------------------------------------------
    def _rms(self, x: Any, w: Any) -> Any:
        import torch

        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def _rope(self, x: Any, positions: Any) -> Any:
        """x: ``[N, heads, D]``, positions ``[N]`` -> rotated (HF rotate-half convention)."""
        import torch

        freqs = positions.to(torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().to(x.dtype)[:, None, :], emb.sin().to(x.dtype)[:, None, :]
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    # -- prefix --------------------------------------------------------------------
    def prefix(self, ids: Sequence[int]) -> tuple[Any, Any]:
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
            valid=torch.zeros(batch, shape[3], dtype=torch.bool, device=self.device),
            used=0,
            pos=torch.full((batch,), prefix_len, dtype=torch.long, device=self.device),
        )

    def _ensure(self, cache: RowCache, extra: int) -> None:
        import torch

        cap = cache.k.shape[3]
        if cache.used + extra <= cap:
            return
        new_cap = max(2 * cap, cache.used + extra)
        pad = new_cap - cap
        grow = lambda t: torch.cat([t, t.new_zeros(*t.shape[:3], pad, t.shape[4])], dim=3)  # noqa: E731
        cache.k, cache.v = grow(cache.k), grow(cache.v)
        cache.valid = torch.cat([cache.valid, cache.valid.new_zeros(cache.valid.shape[0], pad)], dim=1)

    def retract(self, cache: RowCache, row: int, n_tokens: int) -> None:
        """Forget the last ``n_tokens`` live tokens of ``row`` (their slots become invalid)."""
        if n_tokens <= 0:
            return
        live = cache.valid[row, : cache.used].nonzero().squeeze(1)
        drop = live[-n_tokens:]
        cache.valid[row, drop] = False
        cache.pos[row] -= len(drop)

    def reset_row(self, cache: RowCache, row: int, prefix_len: int) -> None:
        """Empty ``row`` for a new conversation (its slots become invalid)."""
        cache.valid[row] = False
        cache.pos[row] = prefix_len

    def compact_if_sparse(self, cache: RowCache, min_slots: int = 256) -> None:
        """Move every row's live slots to the front when most slots are dead.

        Rows finish and restart at different times and retract what they wrote, so
        the shared slot counter grows faster than any row's live length; attention
        and memory follow the slot count, hence this occasional gather."""
        longest = int(cache.valid[:, : cache.used].sum(1).max()) if cache.used else 0
        if cache.used >= min_slots and cache.used >= 2 * longest + 64:
            self.compact(cache)

    def compact(self, cache: RowCache) -> None:
        """Gather each row's live slots, in order, to the front of its cache."""
        import torch

        live = cache.valid[:, : cache.used].sum(1)
        longest = int(live.max()) if live.numel() else 0
        order = torch.argsort((~cache.valid[:, : cache.used]).to(torch.int8), dim=1, stable=True)[:, :longest]
        idx = order[None, :, None, :, None].expand(cache.k.shape[0], -1, cache.k.shape[2], -1, cache.k.shape[4])
        k = torch.gather(cache.k[:, :, :, : cache.used], 3, idx)
        v = torch.gather(cache.v[:, :, :, : cache.used], 3, idx)
        cache.k[:, :, :, :longest] = k
        cache.v[:, :, :, :longest] = v
        cache.valid[:, :longest] = torch.arange(longest, device=cache.valid.device)[None, :] < live[:, None]
        cache.valid[:, longest:] = False
        cache.used = longest

    # -- forward -------------------------------------------------------------------
    def forward(
        self, cache: RowCache, tokens: list[list[int]], prefix: tuple[Any, Any] | None, logits: bool = True,
        vocab: Any = None,
    ) -> Any:
        """Feed ``tokens[b]`` (possibly empty) to row ``b``; returns ``[B, V]`` logits of each
        row's last fed token (rows fed nothing get zeros), or ``None`` with ``logits=False``.

        ``vocab``: optional ``[U]`` token ids; logits are then computed for those only,
        ``[B, U]`` (the output projection is a fifth of a decode step's work; constrained
        decoding needs only the tokens it may choose)."""
        import torch

        B = len(tokens)
        T = max((len(t) for t in tokens), default=0)
        if T == 0:
            return None
        self._ensure(cache, T)
        dev = self.device
        lengths = torch.tensor([len(t) for t in tokens], device=dev)
        real = torch.arange(T, device=dev)[None, :] < lengths[:, None]  # [B, T], left-aligned
        flat = real.reshape(-1).nonzero().squeeze(1)
        ids = torch.tensor([t for row in tokens for t in row], dtype=torch.long, device=dev)
        positions = (cache.pos[:, None] + torch.arange(T, device=dev)[None, :]).reshape(-1)[flat]
        s = cache.used
        cache.valid[:, s : s + T] = real
        slots = s + T
        # query t of row b sees the row's live slots up to its own, plus the whole prefix
        causal = torch.arange(slots, device=dev)[None, :] <= (s + torch.arange(T, device=dev))[:, None]
        allowed = cache.valid[:, None, :slots] & causal[None, :, :]  # [B, T, S]
        mask = torch.zeros(B, 1, T, slots, dtype=self.dtype, device=dev)
        mask.masked_fill_(~allowed[:, None], float("-inf"))
        # a padding query attends to nothing live; give it its own slot so softmax stays finite
        pad_q = ~real
        if bool(pad_q.any()):
            b_idx, t_idx = pad_q.nonzero(as_tuple=True)
            mask[b_idx, 0, t_idx, s + t_idx] = 0.0
        H, Hk, D = self.n_heads, self.n_kv, self.head_dim
        group = H // Hk
        scale = D ** -0.5
        x = self.embed[ids]  # [N, hidden]
        N = x.shape[0]
        for li, (w_in, w_qkv, w_o, w_post, w_gu, w_down) in enumerate(self.layers):
            qkv = self._rms(x, w_in) @ w_qkv
            q = self._rope(qkv[:, : self.q_dim].view(N, H, D), positions)
            k = self._rope(qkv[:, self.q_dim : self.q_dim + self.kv_dim].view(N, Hk, D), positions)
            v = qkv[:, self.q_dim + self.kv_dim :].view(N, Hk, D)
            kp = x.new_zeros(B * T, Hk, D)
            vp = x.new_zeros(B * T, Hk, D)
            kp[flat], vp[flat] = k, v
            cache.k[li, :, :, s : s + T] = kp.view(B, T, Hk, D).transpose(1, 2)
            cache.v[li, :, :, s : s + T] = vp.view(B, T, Hk, D).transpose(1, 2)
            qp = x.new_zeros(B * T, H, D)
            qp[flat] = q
            # grouped-query attention: query heads g*group..g*group+group-1 share kv head g
            qg = qp.view(B, T, Hk, group, D).permute(0, 2, 3, 1, 4).reshape(B, Hk, group * T, D)
            kr, vr = cache.k[li, :, :, :slots], cache.v[li, :, :, :slots]
            scores = (qg @ kr.transpose(-1, -2)).view(B, Hk, group, T, slots) * scale + mask[:, :, None]
            if prefix is not None:
                # softmax over [prefix slots, own slots] in two parts: no concatenation; the shared
                # prefix is one [Hk, P, D] block for all rows (rows folded into the matmul, not expanded)
                pk, pv = prefix[0][li, 0], prefix[1][li, 0]  # [Hk, P, D]
                qf = qg.transpose(0, 1).reshape(Hk, B * group * T, D)
                pscores = (qf @ pk.transpose(-1, -2)).view(Hk, B, group, T, -1).transpose(0, 1) * scale
                top = torch.maximum(pscores.amax(-1, keepdim=True), scores.amax(-1, keepdim=True))
                pe, re_ = (pscores - top).exp_(), (scores - top).exp_()
                denom = pe.sum(-1, keepdim=True) + re_.sum(-1, keepdim=True)
                pout = (pe.transpose(0, 1).reshape(Hk, B * group * T, -1) @ pv).view(Hk, B, group * T, D)
                out = pout.transpose(0, 1) + re_.view(B, Hk, group * T, slots) @ vr
                out = out / denom.view(B, Hk, group * T, 1)
            else:
                out = torch.softmax(scores, dim=-1).view(B, Hk, group * T, slots) @ vr
            out = out.view(B, Hk, group, T, D).permute(0, 3, 1, 2, 4).reshape(B * T, H * D)[flat]
            x = x + out @ w_o
            gu = self._rms(x, w_post) @ w_gu
            half = gu.shape[-1] // 2
            x = x + (torch.nn.functional.silu(gu[:, :half]) * gu[:, half:]) @ w_down
        cache.used = slots
        cache.pos = cache.pos + lengths
        if not logits:
            return None
        last = torch.cumsum(lengths, 0) - 1
        fed = lengths > 0
        hidden = self._rms(x[last.clamp(min=0)], self.norm)
        head = self.head if vocab is None else self.head[vocab]
        out_logits = hidden @ head.t()
        return out_logits * fed[:, None].to(out_logits.dtype)
