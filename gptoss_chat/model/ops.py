"""The per-op kernel table the transformer calls, with plain-torch implementations.

The model never calls a heavy op directly: it calls `ops.rms_norm(...)`, `ops.moe(...)` and so on
on an `Ops` table. `TORCH_OPS` holds the reference implementations below (CPU and CUDA). The
Triton backend replaces some entries with kernels of *exactly* these signatures:

    from dataclasses import replace
    ops = replace(TORCH_OPS, name="triton", moe=triton_moe, attention_decode=triton_decode)

Four entries fuse a norm or a residual add with their neighbours (`norm_linear`,
`linear_residual`, `moe_block`, and `out_proj_moe_block`: the last two in one) and one fuses a
decode token's RoPE, KV write and attention (`rope_attention_decode`), so a decode step needs
fewer launches; their defaults compose the references and give exactly the unfused results.

`select_ops` picks the table: the kernels package plugs in by defining
`gptoss_chat.kernels.build_ops(base: Ops, device: torch.device) -> Ops`.

Conventions for every op:
- T = tokens in this call (prefill chunk, or 1 for decode); H = hidden_size; V = vocab_size;
  E = num_experts; I = intermediate_size; Hq / Hkv = query / key-value heads; D = head_dim;
  S = slots in one layer's KV buffer.
- Activations are bf16 and contiguous; norm scales and sinks are float32; logits float32.
  (The engine's float32 parity mode always uses the torch table, so kernels see only bf16.)
- Ops are pure (they return new tensors) except for the sampler's RNG, and never synchronise
  with the host unless their docstring says so, so the decode step can be captured in a CUDA
  graph once the attention ops are graph-safe kernels.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from gptoss_chat.model.mxfp4 import dequantize_mxfp4

SWIGLU_ALPHA = 1.702


@dataclass(frozen=True)
class ExpertWeights:
    """One layer's router and experts, MXFP4 packed exactly as the checkpoint stores them."""

    gate_weight: torch.Tensor  # [E, H] bf16 (router)
    gate_bias: torch.Tensor  # [E] bf16
    mlp1_blocks: torch.Tensor  # [E, 2I, H/32, 16] uint8; output rows interleave glu, linear
    mlp1_scales: torch.Tensor  # [E, 2I, H/32] uint8
    mlp1_bias: torch.Tensor  # [E, 2I] bf16
    mlp2_blocks: torch.Tensor  # [E, H, I/32, 16] uint8
    mlp2_scales: torch.Tensor  # [E, H, I/32] uint8
    mlp2_bias: torch.Tensor  # [E, H] bf16


@dataclass(frozen=True)
class PreparedLinear:
    """An attention projection's weight in a kernel table's own form (`Ops.prepare_linear`),
    with the dense bf16 [N, K] weight it came from: the references and matrix products over
    many tokens read `dense`."""

    dense: torch.Tensor


def dense_weight(weight: torch.Tensor | PreparedLinear) -> torch.Tensor:
    """The plain [N, K] tensor of a linear weight, prepared or not."""
    return weight.dense if isinstance(weight, PreparedLinear) else weight


class RmsNormOp(Protocol):
    def __call__(self, x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
        """x [T, H] bf16, scale [H] float32 -> [T, H] bf16: x / rms(x) * scale, in float32."""
        ...


class AttentionOp(Protocol):
    def __call__(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        sinks: torch.Tensor,
        start: torch.Tensor,
        sliding_window: int,
        sm_scale: float,
    ) -> torch.Tensor:
        """Causal GQA attention with learned sinks over one layer's KV ring buffer.

        q [T, Hq, D] bf16: queries at positions start .. start+T-1, rotary already applied.
        k_cache, v_cache [S, Hkv, D] bf16: the position-p entry lives in slot p % S; the T new
            keys/values are already written. Full layers have S >= start+T (no wrap); sliding
            layers have S >= sliding_window + T - 1 so the chunk never overwrites a key its own
            queries still need.
        sinks [Hq] float32: one extra logit per head that joins the softmax and is then dropped.
        start [] int64 on q.device (0-dim): position of q[0].
        sliding_window: 0 for full attention, else the query at p sees keys p-W+1 .. p.
        sm_scale: 1/sqrt(D).
        Query head h reads kv head h // (Hq // Hkv).
        Returns [T, Hq * D] bf16. Scores and softmax in float32.
        `attention_decode` is called with T == 1, `attention_prefill` with any T >= 1.
        """
        ...


class MoeOp(Protocol):
    def __call__(
        self, x: torch.Tensor, weights: ExpertWeights, experts_per_token: int, swiglu_limit: float
    ) -> torch.Tensor:
        """x [T, H] bf16 (already normed) -> [T, H] bf16, the experts' weighted sum (no residual).

        Router: logits = x @ gate_weight.T + gate_bias; top-k (k = experts_per_token); weights =
        softmax over the k selected logits. Expert e: h = W1_e x + b1_e with W1_e decoded from
        MXFP4 [2I, H]; glu = h[0::2].clamp(max=limit), lin = h[1::2].clamp(-limit, limit);
        a = glu * sigmoid(1.702 * glu) * (lin + 1); y = W2_e a + b2_e with W2_e [H, I].
        Only the selected experts are decoded.
        """
        ...


class UnembeddingOp(Protocol):
    def __call__(self, x: torch.Tensor, weight: torch.Tensor | PreparedLinear) -> torch.Tensor:
        """x [T, H] bf16 (already normed), weight [V, H] bf16 (or what `prepare_linear` made of
        it) -> logits [T, V] float32."""
        ...


class LinearOp(Protocol):
    def __call__(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """x [T, K] bf16, weight [N, K] bf16, bias [N] bf16 or None -> [T, N] bf16 (F.linear).

        The attention projections; at decode (T = 1) a pure read of the weight."""
        ...


class NormLinearOp(Protocol):
    def __call__(
        self,
        x: torch.Tensor,
        norm_scale: torch.Tensor,
        eps: float,
        weight: torch.Tensor | PreparedLinear,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """linear(rms_norm(x, norm_scale, eps), weight, bias): x [T, K] bf16 -> [T, N] bf16.

        The normed x is rounded to x's dtype before the product, exactly as the two ops do."""
        ...


class LinearResidualOp(Protocol):
    def __call__(
        self,
        x: torch.Tensor,
        weight: torch.Tensor | PreparedLinear,
        bias: torch.Tensor | None,
        residual: torch.Tensor,
    ) -> torch.Tensor:
        """residual [T, N] + linear(x, weight, bias) -> [T, N], the linear's output rounded to
        the activation dtype before the add (the add itself in that dtype, as torch does)."""
        ...


class MoeBlockOp(Protocol):
    def __call__(
        self,
        x: torch.Tensor,
        norm_scale: torch.Tensor,
        eps: float,
        weights: ExpertWeights,
        experts_per_token: int,
        swiglu_limit: float,
    ) -> torch.Tensor:
        """The MoE half of a layer with its residual: x + moe(rms_norm(x)), x [T, H] bf16."""
        ...


class OutProjMoeBlockOp(Protocol):
    def __call__(
        self,
        attn: torch.Tensor,
        out_weight: torch.Tensor | PreparedLinear,
        out_bias: torch.Tensor | None,
        x: torch.Tensor,
        norm_scale: torch.Tensor,
        eps: float,
        weights: ExpertWeights,
        experts_per_token: int,
        swiglu_limit: float,
    ) -> torch.Tensor:
        """The attention's out projection and the MoE half: with mid = linear_residual(attn,
        out_weight, out_bias, x), returns moe_block(mid, norm_scale, eps, weights, ...).
        attn [T, Hq D] bf16, x [T, H] bf16 (the block's input) -> [T, H] bf16."""
        ...


class RopeCacheOp(Protocol):
    def __call__(
        self,
        qkv: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        offset: torch.Tensor,
        n_heads: int,
    ) -> torch.Tensor:
        """Rotary embedding + KV write for one layer; returns q [T, Hq, D] bf16.

        qkv [T, (Hq + 2 Hkv) D] bf16 (the projection's output: q heads, k heads, v heads);
        cos, sin [T, D/2] bf16 for positions offset .. offset+T-1; k_cache, v_cache [S, Hkv, D];
        offset [] int64 on the device. Rotates the two halves of each q and k head in bf16
        arithmetic and writes k, v to slots (offset + t) % S.
        """
        ...


class RopeAttentionDecodeOp(Protocol):
    def __call__(
        self,
        qkv: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        sinks: torch.Tensor,
        offset: torch.Tensor,
        sliding_window: int,
        sm_scale: float,
        n_heads: int,
    ) -> torch.Tensor:
        """One decode token's attention from the qkv projection: `rope_cache` (rotates q and k,
        writes k, v at slot offset % S) then `attention_decode`, as one entry so a kernel can do
        both in one launch. qkv [1, (Hq + 2 Hkv) D] bf16; cos, sin: the whole rotary tables
        [P, D/2] bf16 (P > offset), whose row `offset` the op picks on the device; the rest as
        in `AttentionOp` (offset is `start`). Returns [1, Hq * D] bf16; the cache holds exactly
        what `rope_cache` writes."""
        ...


class SampleOp(Protocol):
    def __call__(
        self,
        logits: torch.Tensor,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """logits [V] float32 -> token id, a 0-dim int64 tensor on logits.device.

        temperature <= 0: argmax (greedy; the lowest id wins a tie). Else softmax(logits / T),
        keep the smallest set of most likely tokens whose mass reaches top_p (top_p >= 1 keeps
        all), renormalise, draw with `generator` (a torch.Generator on logits.device).
        Never syncs with the host: the decode step samples on the device inside its graph.
        """
        ...


class SampleIntoOp(Protocol):
    def __call__(
        self,
        logits: torch.Tensor,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
        token: torch.Tensor,
        table: torch.Tensor | None,
        row: torch.Tensor,
        host: torch.Tensor | None = None,
    ) -> None:
        """`sample`'s id written into `token` ([1] int64 on logits.device); with `table` (the
        embedding [V, H] on the same device) also table[id] into `row` [1, H]: the next decode
        step's input, gathered on the device (`decode_pipeline`); with `host` (int64 [1] in
        pinned host memory) also the id there, for the host to read once the work queued so far
        has finished. Never syncs with the host."""
        ...


class GreedyIntoOp(Protocol):
    def __call__(
        self,
        last: torch.Tensor,
        norm_scale: torch.Tensor,
        eps: float,
        weight: torch.Tensor,
        screen: object | None,
        token: torch.Tensor,
        table: torch.Tensor | None,
        row: torch.Tensor,
        host: torch.Tensor | None = None,
    ) -> None:
        """Greedy decoding's last step from the last layer's row [1, H]: the id of the largest
        logit of `unembedding(rms_norm(last, norm_scale, eps), weight)` (the lowest id on a tie,
        NaN the largest) into `token`, and, as `sample_into` does, table[id] into `row` and the
        id into `host`. `screen` is what `prepare_unembedding` made of `weight` (or None): a
        kernel may use it to skip rows that provably cannot win, but the id is always the full
        argmax's. Never syncs with the host."""
        ...


class PrepareUnembeddingOp(Protocol):
    def __call__(self, weight: torch.Tensor) -> object | None:
        """Called once after loading with the unembedding [V, H] on its device; returns the
        `screen` that `greedy_into` will receive (extra device memory), or None. Default: None."""
        ...


class PrepareLinearOp(Protocol):
    def __call__(self, weight: torch.Tensor) -> torch.Tensor | PreparedLinear:
        """Called once per attention projection (qkv, out) and for the unembedding after
        loading, with the bf16 [N, K] weight on its device; returns what `norm_linear`,
        `linear_residual`, `out_proj_moe_block` and `unembedding` will receive for it: the
        weight itself (the default), or a `PreparedLinear` that keeps it as `dense` (extra
        device memory)."""
        ...


class PrepareExpertsOp(Protocol):
    def __call__(self, weights: ExpertWeights) -> ExpertWeights:
        """Called once per layer right after loading, with the checkpoint-layout weights on the
        device; returns what `moe` will receive for that layer. A kernel that wants another
        layout (swizzled blocks, transposed scales) converts here and may return a subclass of
        ExpertWeights with extra fields. The loader drops the input afterwards. Default: identity.
        """
        ...


@dataclass(frozen=True)
class Ops:
    """The kernel table. Every entry follows the Protocol of the same name above."""

    name: str
    rms_norm: RmsNormOp
    attention_prefill: AttentionOp
    attention_decode: AttentionOp
    moe: MoeOp
    unembedding: UnembeddingOp
    sample: SampleOp
    sample_into: SampleIntoOp = lambda *args, **kwargs: sample_into_torch(*args, **kwargs)
    """Defaults to `sample_torch`'s draw: a table replacing `sample` replaces this too."""
    prepare_experts: PrepareExpertsOp = lambda weights: weights
    linear: LinearOp = F.linear
    rope_cache: RopeCacheOp = lambda *args: rope_cache_torch(*args)
    # Fused entries. Their defaults compose the torch references above, so a table that replaces
    # rms_norm / linear / moe but not these still computes the same thing (on the reference).
    norm_linear: NormLinearOp = lambda *args: norm_linear_torch(*args)
    linear_residual: LinearResidualOp = lambda *args: linear_residual_torch(*args)
    moe_block: MoeBlockOp = lambda *args: moe_block_torch(*args)
    out_proj_moe_block: OutProjMoeBlockOp = lambda *args: out_proj_moe_block_torch(*args)
    rope_attention_decode: RopeAttentionDecodeOp = lambda *args: rope_attention_decode_torch(*args)
    greedy_into: GreedyIntoOp = lambda *args, **kwargs: greedy_into_torch(*args, **kwargs)
    prepare_unembedding: PrepareUnembeddingOp = lambda weight: None
    prepare_linear: PrepareLinearOp = lambda weight: weight
    graph_safe_decode: bool = False
    """True when a T == 1 forward never syncs with the host, so decode can be a CUDA graph."""
    graph_safe_prefill: bool = False
    """True when a forward of 16 to 128 tokens never syncs with the host and launches the same
    kernels whatever the data, so short prefill chunks can be CUDA graphs (`prefill_graph`)."""


# --- torch reference implementations -----------------------------------------------------------


def rms_norm_torch(x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    t = x.float()  # [T, H]
    t = t * torch.rsqrt(t.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (t * scale).to(x.dtype)


ATTENTION_SCORE_BUDGET = 1 << 27
"""Float32 scores one reference attention step may hold (512 MiB): long prefills go in query
blocks so a 1024-token chunk against a 131072-token cache does not need 34 GB."""


def attention_torch(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    sinks: torch.Tensor,
    start: torch.Tensor,
    sliding_window: int,
    sm_scale: float,
) -> torch.Tensor:
    """Reference attention. It reads `start` on the host (one sync per call) to gather only the
    live slots; a kernel reads it on the device instead."""
    n_tokens, n_heads, head_dim = q.shape
    first_query = int(start)
    out = torch.empty((n_tokens, n_heads * head_dim), dtype=q.dtype, device=q.device)
    keys_seen = first_query + n_tokens
    if sliding_window:
        keys_seen = min(keys_seen, sliding_window + n_tokens)
    block = max(1, ATTENTION_SCORE_BUDGET // (n_heads * keys_seen))
    for i in range(0, n_tokens, block):
        out[i : i + block] = _attend(
            q[i : i + block], k_cache, v_cache, sinks, first_query + i, sliding_window, sm_scale
        )
    return out


def _attend(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    sinks: torch.Tensor,
    first_query: int,
    sliding_window: int,
    sm_scale: float,
) -> torch.Tensor:
    n_tokens, n_heads, head_dim = q.shape
    slots, n_kv_heads, _ = k_cache.shape
    end = first_query + n_tokens
    first_key = max(0, first_query - sliding_window + 1) if sliding_window else 0
    key_positions = torch.arange(first_key, end, device=q.device)  # [K]
    keys = k_cache[key_positions % slots].float()  # [K, Hkv, D]
    values = v_cache[key_positions % slots].float()  # [K, Hkv, D]
    group = n_heads // n_kv_heads
    queries = q.float().view(n_tokens, n_kv_heads, group, head_dim)  # [T, Hkv, G, D]
    scores = torch.einsum("tkgd,skd->kgts", queries, keys) * sm_scale  # [Hkv, G, T, K]
    query_positions = torch.arange(first_query, end, device=q.device)  # [T]
    distance = query_positions[:, None] - key_positions[None, :]  # [T, K]
    visible = distance >= 0
    if sliding_window:
        visible &= distance < sliding_window
    scores = scores.masked_fill(~visible, float("-inf"))
    sink = sinks.float().view(n_kv_heads, group, 1, 1).expand(-1, -1, n_tokens, 1)
    probs = torch.softmax(torch.cat([scores, sink], dim=-1), dim=-1)[..., :-1]  # [Hkv, G, T, K]
    out = torch.einsum("kgts,skd->tkgd", probs, values)  # [T, Hkv, G, D]
    return out.reshape(n_tokens, n_heads * head_dim).to(q.dtype)


def swiglu(h: torch.Tensor, limit: float) -> torch.Tensor:
    """h [..., 2I] with glu/linear interleaved -> [..., I]."""
    glu = h[..., 0::2].clamp(max=limit)
    linear = h[..., 1::2].clamp(min=-limit, max=limit)
    return glu * torch.sigmoid(SWIGLU_ALPHA * glu) * (linear + 1)


def route(
    x: torch.Tensor, weights: ExpertWeights, experts_per_token: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [T, H] -> (expert ids [T, k] int64, expert weights [T, k] bf16)."""
    logits = F.linear(x, weights.gate_weight, weights.gate_bias)  # [T, E]
    top = torch.topk(logits, experts_per_token, dim=-1, sorted=True)
    return top.indices, torch.softmax(top.values, dim=-1)


def moe_torch(
    x: torch.Tensor, weights: ExpertWeights, experts_per_token: int, swiglu_limit: float
) -> torch.Tensor:
    """Reference MoE. Few tokens (decode): gather and decode each token's k experts, with static
    shapes (graph-safe). Many tokens (prefill): decode each hit expert once, one at a time, so at
    most one expert's bf16 weights exist at a time. Both sum the k outputs in float32."""
    n_tokens = x.shape[0]
    expert_ids, expert_weights = route(x, weights, experts_per_token)  # [T, k], [T, k]
    if n_tokens * experts_per_token < weights.mlp1_blocks.shape[0]:
        w1 = dequantize_mxfp4(
            weights.mlp1_blocks[expert_ids], weights.mlp1_scales[expert_ids], x.dtype
        )
        h = torch.einsum("tkoh,th->tko", w1, x) + weights.mlp1_bias[expert_ids]  # [T, k, 2I]
        a = swiglu(h, swiglu_limit)  # [T, k, I]
        w2 = dequantize_mxfp4(
            weights.mlp2_blocks[expert_ids], weights.mlp2_scales[expert_ids], x.dtype
        )
        y = torch.einsum("tkhi,tki->tkh", w2, a) + weights.mlp2_bias[expert_ids]  # [T, k, H]
        return torch.einsum("tkh,tk->th", y.float(), expert_weights.float()).to(x.dtype)
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)  # [T, H]
    for expert in torch.unique(expert_ids).tolist():
        tokens, slot = torch.nonzero(expert_ids == expert, as_tuple=True)
        xe = x[tokens]  # [n, H]
        w1 = dequantize_mxfp4(weights.mlp1_blocks[expert], weights.mlp1_scales[expert], x.dtype)
        a = swiglu(F.linear(xe, w1, weights.mlp1_bias[expert]), swiglu_limit)  # [n, I]
        del w1
        w2 = dequantize_mxfp4(weights.mlp2_blocks[expert], weights.mlp2_scales[expert], x.dtype)
        y = F.linear(a, w2, weights.mlp2_bias[expert])  # [n, H]
        del w2
        out.index_add_(0, tokens, y.float() * expert_weights[tokens, slot, None].float())
    return out.to(x.dtype)


def rope_cache_torch(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    offset: torch.Tensor,
    n_heads: int,
) -> torch.Tensor:
    n_tokens = qkv.shape[0]
    slots, n_kv, head_dim = k_cache.shape
    q_dim, kv_dim = n_heads * head_dim, n_kv * head_dim
    q = qkv[:, :q_dim].reshape(n_tokens, n_heads, head_dim)
    k = qkv[:, q_dim : q_dim + kv_dim].reshape(n_tokens, n_kv, head_dim)
    v = qkv[:, q_dim + kv_dim :].reshape(n_tokens, n_kv, head_dim)
    cos, sin = cos[:, None, :], sin[:, None, :]

    def rotate(t: torch.Tensor) -> torch.Tensor:
        first, second = torch.chunk(t, 2, dim=-1)
        return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)

    index = (offset + torch.arange(n_tokens, device=qkv.device)) % slots  # [T]
    k_cache.index_copy_(0, index, rotate(k))
    v_cache.index_copy_(0, index, v)
    return rotate(q)


def rope_attention_decode_torch(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    sinks: torch.Tensor,
    offset: torch.Tensor,
    sliding_window: int,
    sm_scale: float,
    n_heads: int,
) -> torch.Tensor:
    row = offset.view(1)
    q = rope_cache_torch(
        qkv, cos.index_select(0, row), sin.index_select(0, row), k_cache, v_cache, offset, n_heads
    )
    return attention_torch(q, k_cache, v_cache, sinks, offset, sliding_window, sm_scale)


def norm_linear_torch(
    x: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weight: torch.Tensor | PreparedLinear,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    return F.linear(rms_norm_torch(x, norm_scale, eps), dense_weight(weight), bias)


def linear_residual_torch(
    x: torch.Tensor,
    weight: torch.Tensor | PreparedLinear,
    bias: torch.Tensor | None,
    residual: torch.Tensor,
) -> torch.Tensor:
    return residual + F.linear(x, dense_weight(weight), bias)


def moe_block_torch(
    x: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weights: ExpertWeights,
    experts_per_token: int,
    swiglu_limit: float,
) -> torch.Tensor:
    normed = rms_norm_torch(x, norm_scale, eps)
    return x + moe_torch(normed, weights, experts_per_token, swiglu_limit)


def out_proj_moe_block_torch(
    attn: torch.Tensor,
    out_weight: torch.Tensor | PreparedLinear,
    out_bias: torch.Tensor | None,
    x: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weights: ExpertWeights,
    experts_per_token: int,
    swiglu_limit: float,
) -> torch.Tensor:
    mid = linear_residual_torch(attn, out_weight, out_bias, x)
    return moe_block_torch(mid, norm_scale, eps, weights, experts_per_token, swiglu_limit)


def unembedding_torch(x: torch.Tensor, weight: torch.Tensor | PreparedLinear) -> torch.Tensor:
    return F.linear(x, dense_weight(weight)).float()  # [T, V]


def sample_torch(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Never syncs with the host, so it runs inside a CUDA graph (`decode_pipeline`); see
    `sample_with`."""
    return sample_with(torch.argmax, logits, temperature, top_p, generator)


def sample_into_torch(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    token: torch.Tensor,
    table: torch.Tensor | None,
    row: torch.Tensor,
    host: torch.Tensor | None = None,
    sample: SampleOp = sample_torch,
) -> None:
    """`SampleIntoOp` from a `SampleOp` (the reference's by default)."""
    token.copy_(sample(logits, temperature, top_p, generator))
    if table is not None:
        row.copy_(table.index_select(0, token))
    if host is not None:
        host.copy_(token, non_blocking=True)


def greedy_into_torch(
    last: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weight: torch.Tensor,
    screen: object | None,
    token: torch.Tensor,
    table: torch.Tensor | None,
    row: torch.Tensor,
    host: torch.Tensor | None = None,
) -> None:
    """`GreedyIntoOp` the plain way: every logit, then their argmax (`screen` unused)."""
    del screen
    logits = unembedding_torch(rms_norm_torch(last, norm_scale, eps), weight)
    sample_into_torch(logits[0], 0.0, 1.0, None, token, table, row, host)


def sample_with(
    argmax: Callable[[torch.Tensor], torch.Tensor],
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """`sample_torch` with another argmax of a float32 row (a kernel: kernels/argmax.py).

    The draw is `torch.multinomial(probs, 1)` spelled out: for one sample torch computes
    argmax(probs / q) with q ~ Exp(1) from `exponential_` (Gumbel-max: -log q is Gumbel noise),
    after checking the probabilities on the host (`.item()`, a sync). Doing the same ops here
    gives the very same ids from the same generator state, minus the check (NaN logits yield
    some id instead of an error). `tests/model/test_ops.py` pins the equality."""
    if temperature <= 0:
        return argmax(logits.float())
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # [V]
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Drop a token when the mass before it already reaches top_p; the first always stays.
        drop = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) >= top_p
        drop[:1].zero_()  # not `drop[0] = False`: on CUDA that copies a host scalar over
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        # gather, not order[choice]: indexing by a 0-dim tensor reads it on the host
        return order.gather(0, _gumbel_argmax(argmax, sorted_probs, generator).view(1))[0]
    return _gumbel_argmax(argmax, probs, generator)


def _gumbel_argmax(
    argmax: Callable[[torch.Tensor], torch.Tensor],
    probs: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """probs [V] -> a 0-dim id drawn with probability probs / probs.sum() (see sample_torch)."""
    noise = torch.empty_like(probs).exponential_(1, generator=generator)  # [V]
    return argmax(probs / noise)


TORCH_OPS = Ops(
    name="torch",
    rms_norm=rms_norm_torch,
    attention_prefill=attention_torch,
    attention_decode=attention_torch,
    moe=moe_torch,
    unembedding=unembedding_torch,
    sample=sample_torch,
)


class BackendUnavailableError(RuntimeError):
    """The requested kernel backend cannot run here."""


def select_ops(backend: str, device: torch.device) -> Ops:
    """'torch': the references. 'triton': the kernels package's table (CUDA only; an error if it
    cannot load). 'auto': triton on CUDA when the kernels package provides it, else torch."""
    if backend not in ("auto", "torch", "triton"):
        raise BackendUnavailableError(f"unknown engine backend {backend!r}")
    if backend == "torch" or (backend == "auto" and device.type != "cuda"):
        return TORCH_OPS
    if device.type != "cuda":
        raise BackendUnavailableError("the triton backend needs a CUDA device")
    try:
        kernels = importlib.import_module("gptoss_chat.kernels")
        build_ops = kernels.build_ops
    except (ImportError, AttributeError) as exc:
        if backend == "auto":
            return TORCH_OPS
        raise BackendUnavailableError(f"the triton kernels are not available: {exc}") from exc
    return build_ops(TORCH_OPS, device)
