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

import torch
from torch.profiler import record_function

from gptoss_chat.model.config import ModelConfig, yarn_bounds
from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.ops import Ops
from gptoss_chat.model.weights import LayerWeights, ModelWeights


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


class Transformer:
    """Weights + ops + rotary tables; `forward` runs tokens through and fills the KV cache."""

    def __init__(self, config: ModelConfig, weights: ModelWeights, ops: Ops, context: int) -> None:
        self.config = config
        self.weights = weights
        self.ops = ops
        self.device = weights.embedding.device
        cos, sin = rope_tables(config, context, self.device)
        dtype = weights.embedding.dtype
        self.rope_cos = cos.to(dtype)  # [context, D/2]
        self.rope_sin = sin.to(dtype)  # [context, D/2]
        self.sm_scale = 1.0 / math.sqrt(config.head_dim)

    def forward(
        self, tokens: torch.Tensor, cache: KVCache, *, all_logits: bool = False
    ) -> torch.Tensor:
        """tokens [T] int64 at positions cache.offset .. +T-1 -> logits float32, [T, V] with
        `all_logits`, else [1, V] for the last token. Writes K/V and advances cache.offset."""
        c = self.config
        positions = cache.offset + torch.arange(tokens.shape[0], device=tokens.device)  # [T]
        cos, sin = self.rope_cos[positions], self.rope_sin[positions]  # [T, D/2]
        x = self.weights.embedding[tokens]  # [T, H]
        for index, layer in enumerate(self.weights.layers):
            with record_function(f"attention.{index}"):
                x = self._attention_block(index, layer, x, cos, sin, cache)
            with record_function(f"moe.{index}"):
                x = self.ops.moe_block(
                    x, layer.mlp_norm, c.rms_norm_eps, layer.experts, c.experts_per_token,
                    c.swiglu_limit,
                )  # fmt: skip
        cache.advance(tokens.shape[0])
        if not all_logits:
            x = x[-1:]
        with record_function("unembedding"):
            x = self.ops.rms_norm(x, self.weights.norm, c.rms_norm_eps)
            return self.ops.unembedding(x, self.weights.unembedding)

    def _attention_block(
        self,
        index: int,
        layer: LayerWeights,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache,
    ) -> torch.Tensor:
        """x + attention(rms_norm(x)): the norm rides in the qkv projection, the residual add in
        the out projection (one launch each at decode with the Triton table)."""
        c = self.config
        n_tokens = x.shape[0]
        qkv = self.ops.norm_linear(
            x, layer.attn_norm, c.rms_norm_eps, layer.qkv_weight, layer.qkv_bias
        )  # [T, (Hq + 2 Hkv) D]
        q = self.ops.rope_cache(
            qkv, cos, sin, cache.k[index], cache.v[index], cache.offset, c.num_attention_heads
        )  # [T, Hq, D]; k, v written at offset
        attend = self.ops.attention_decode if n_tokens == 1 else self.ops.attention_prefill
        window = c.sliding_window if c.is_sliding(index) else 0
        out = attend(
            q, cache.k[index], cache.v[index], layer.sinks, cache.offset, window, self.sm_scale
        )  # [T, Hq D]
        return self.ops.linear_residual(out, layer.out_weight, layer.out_bias, x)
