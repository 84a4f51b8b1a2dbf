"""The gpt-oss transformer: embedding, N x (attention block, MoE block), norm, unembedding.

Each block is pre-norm with a residual: x += attn(rms_norm(x)); x += moe(rms_norm(x)). Heavy ops
go through the `Ops` table (`gptoss_chat.model.ops`) so Triton kernels can replace them; what
stays here is glue: the qkv projection, YaRN rotary embedding and the KV write.

Numerics follow OpenAI's torch reference (`gpt_oss/torch/model.py`) and transformers'
`modeling_gpt_oss.py`: bf16 weights and activations; norms, attention scores and the rotary
tables in float32; cos/sin cast to bf16 before rotating, as both references do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.profiler import record_function

from gptoss_chat.model.config import ModelConfig, yarn_bounds
from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.ops import Ops
from gptoss_chat.model.weights import LayerWeights, ModelWeights

EMBED_SLICE_ROWS = 1024
"""Rows gathered on the host per pinned block when the embedding table lives there."""


def rope_tables(
    config: ModelConfig, positions: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """YaRN cos/sin tables [positions, D/2] float32, scaled by the YaRN concentration.

    NTK-by-parts: rotary dims that turn fewer than `ntk_alpha` times over the original context
    are interpolated (frequency / factor), those that turn more than `ntk_beta` times keep their
    frequency, with a linear ramp between.
    """
    head_dim, factor = config.head_dim, config.rope_scaling_factor
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim
    freq = config.rope_theta**exponents  # [D/2]
    if factor > 1.0:
        concentration = 0.1 * math.log(factor) + 1.0
        low, high = yarn_bounds(config)
        ramp = (torch.arange(head_dim // 2, dtype=torch.float32, device=device) - low) / (
            high - low
        )
        keep = 1 - ramp.clamp(0, 1)  # 1: extrapolate (keep frequency), 0: interpolate
        inv_freq = 1.0 / (factor * freq) * (1 - keep) + 1.0 / freq * keep
    else:
        concentration = 1.0
        inv_freq = 1.0 / freq
    t = torch.arange(positions, dtype=torch.float32, device=device)
    angles = torch.outer(t, inv_freq)  # [positions, D/2]
    return angles.cos() * concentration, angles.sin() * concentration


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [T, heads, D]; cos, sin [T, D/2] in x's dtype. Rotates the two halves of each head."""
    cos, sin = cos[:, None, :], sin[:, None, :]
    first, second = torch.chunk(x, 2, dim=-1)
    return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)


def gather_host_rows(
    table: torch.Tensor, ids: torch.Tensor, out: torch.Tensor, *, pin: bool
) -> torch.Tensor:
    """out[i] = table[ids[i]] for a host table and host ids, staged EMBED_SLICE_ROWS rows at a
    time (in pinned memory when `pin`) and copied without blocking; returns out."""
    for first in range(0, ids.shape[0], EMBED_SLICE_ROWS):
        piece = ids[first : first + EMBED_SLICE_ROWS]
        staged = torch.empty((piece.shape[0], table.shape[1]), dtype=table.dtype, pin_memory=pin)
        torch.index_select(table, 0, piece, out=staged)
        out[first : first + piece.shape[0]].copy_(staged, non_blocking=True)
    return out


class Transformer:
    """Weights + ops + rotary tables; `forward` runs tokens through and fills the KV cache
    (`embed`, then `forward_hidden`)."""

    def __init__(self, config: ModelConfig, weights: ModelWeights, ops: Ops, context: int) -> None:
        self.config = config
        self.weights = weights
        self.ops = ops
        # The embedding table may live on the host (`embed`): the unembedding says where the
        # model runs and in which dtype.
        self.device = weights.unembedding.device
        self.dtype = weights.unembedding.dtype
        # Built on the host: the float32 tables at 131072 positions would be a 64 MB transient
        # on the GPU, kept by the allocator for the whole session.
        cos, sin = rope_tables(config, context, torch.device("cpu"))
        self.rope_cos = cos.to(self.device, self.dtype)  # [context, D/2]
        self.rope_sin = sin.to(self.device, self.dtype)  # [context, D/2]
        self.sm_scale = 1.0 / math.sqrt(config.head_dim)

    def embed(
        self, tokens: torch.Tensor | Sequence[int], out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token ids (a list, or an int64 tensor on any device) -> their rows [T, H] on the
        model's device; written into `out` (a CUDA graph's static input) when given.

        A CUDA engine keeps the table on the host by default (1.16 GB of GPU memory saved at 20b
        size): the rows are gathered there into pinned memory, at most EMBED_SLICE_ROWS at a
        time, each slice copied asynchronously while the next is gathered. The pinned blocks
        come from torch's caching host allocator, which hands a block out again only after its
        copy has finished; slices keep them small enough to be reused across calls instead of
        allocating (slowly) a new one for each long prompt."""
        table = self.weights.embedding
        ids = torch.as_tensor(tokens, dtype=torch.int64)
        if table.device == self.device:
            rows = table[ids.to(self.device)]
            return rows if out is None else out.copy_(rows)
        if out is None:
            out = torch.empty((ids.shape[0], table.shape[1]), dtype=table.dtype, device=self.device)
        return gather_host_rows(table, ids.cpu(), out, pin=self.device.type == "cuda")

    def forward(
        self, tokens: torch.Tensor | Sequence[int], cache: KVCache, *, all_logits: bool = False
    ) -> torch.Tensor:
        """tokens [T] int64 at positions cache.offset .. +T-1 -> logits float32, [T, V] with
        `all_logits`, else [1, V] for the last token. Writes K/V and advances cache.offset."""
        return self.forward_hidden(self.embed(tokens), cache, all_logits=all_logits)

    def forward_hidden(
        self,
        x: torch.Tensor,
        cache: KVCache,
        *,
        all_logits: bool = False,
        last_row: torch.Tensor | None = None,
        advance: bool = True,
    ) -> torch.Tensor:
        """`forward` from the embedded rows x [T, H] (what a CUDA graph captures: the host-side
        embedding lookup stays outside). `last_row` ([1] int64 on the device) picks the row
        whose logits [1, V] are returned, for a chunk padded past its last real token; with
        `advance=False` the caller moves cache.offset (by the real length of a padded chunk)."""
        last = self.forward_last(
            x, cache, all_logits=all_logits, last_row=last_row, advance=advance
        )
        return self.unembed(last)

    def unembed(self, last: torch.Tensor) -> torch.Tensor:
        """The last layer's rows [T, H] (`forward_last`) -> logits [T, V] float32: the final
        norm, then the unembedding."""
        weights = self.weights
        compact = weights.unembedding_compact
        with record_function("unembedding"):
            x = self.ops.rms_norm(last, weights.norm, self.config.rms_norm_eps)
            return self.ops.unembedding(x, compact if compact is not None else weights.unembedding)

    def forward_last(
        self,
        x: torch.Tensor,
        cache: KVCache,
        *,
        all_logits: bool = False,
        last_row: torch.Tensor | None = None,
        advance: bool = True,
    ) -> torch.Tensor:
        """`forward_hidden` without its last two steps (final norm, unembedding): the last
        layer's rows [T, H] (or [1, H]) whose logits it would return. Greedy decoding hands them
        to `Ops.greedy_into`, which need not compute every logit."""
        c = self.config
        n_tokens = x.shape[0]
        if n_tokens == 1:  # rope_attention_decode picks the row at cache.offset on the device
            cos, sin = self.rope_cos, self.rope_sin  # [context, D/2]
        else:
            positions = cache.offset + torch.arange(n_tokens, device=x.device)  # [T]
            cos, sin = self.rope_cos[positions], self.rope_sin[positions]  # [T, D/2]
        for index, layer in enumerate(self.weights.layers):
            with record_function(f"attention.{index}"):
                attn = self._attention_block(index, layer, x, cos, sin, cache)
            with record_function(f"moe.{index}"):  # x + out(attn), then its MoE half
                x = self.ops.out_proj_moe_block(
                    attn, layer.out_weight, layer.out_bias, x, layer.mlp_norm, c.rms_norm_eps,
                    layer.experts, c.experts_per_token, c.swiglu_limit,
                )  # fmt: skip
        if advance:
            cache.advance(n_tokens)
        if last_row is not None:
            x = x.index_select(0, last_row)
        elif not all_logits:
            x = x[-1:]
        return x

    def _attention_block(
        self,
        index: int,
        layer: LayerWeights,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache,
    ) -> torch.Tensor:
        """attention(rms_norm(x)) [T, Hq D] before its out projection (which `forward_hidden`
        runs with the residual add and the MoE half); the norm rides in the qkv projection."""
        c = self.config
        n_tokens = x.shape[0]
        qkv = self.ops.norm_linear(
            x, layer.attn_norm, c.rms_norm_eps, layer.qkv_weight, layer.qkv_bias
        )  # [T, (Hq + 2 Hkv) D]
        k_cache, v_cache = cache.k[index], cache.v[index]
        window = c.sliding_window if c.is_sliding(index) else 0
        if n_tokens == 1:  # RoPE, the KV write and attention in one entry (one launch)
            out = self.ops.rope_attention_decode(
                qkv, cos, sin, k_cache, v_cache, layer.sinks, cache.offset, window, self.sm_scale,
                c.num_attention_heads,
            )  # fmt: skip
        else:
            q = self.ops.rope_cache(
                qkv, cos, sin, k_cache, v_cache, cache.offset, c.num_attention_heads
            )  # [T, Hq, D]; k, v written at offset
            out = self.ops.attention_prefill(
                q, k_cache, v_cache, layer.sinks, cache.offset, window, self.sm_scale
            )  # [T, Hq D]
        return out
