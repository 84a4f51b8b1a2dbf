"""The layer loop through the fused `Ops` entries (norm_linear, linear_residual, moe_block).

With the torch table the fused entries are compositions of the reference ops, so the forward
must give exactly the logits of the unfused loop it replaced (written out below): prefill and
decode steps, bf16 and float32.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gptoss_chat.model.generator import load_generator
from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.transformer import Transformer

PROMPT = [5, 77, 300, 12, 9, 401, 64, 3, 250, 18, 7]
"""11 ids below the micro vocabulary (512), longer than the tiny sliding window (8)."""
PREFILL = 8


def unfused_forward(model: Transformer, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """The forward as it was before the fused entries: separate norm, linear, add and MoE."""
    c, ops = model.config, model.ops
    positions = cache.offset + torch.arange(tokens.shape[0], device=tokens.device)  # [T]
    cos, sin = model.rope_cos[positions], model.rope_sin[positions]  # [T, D/2]
    x = model.weights.embedding[tokens]  # [T, H]
    for index, layer in enumerate(model.weights.layers):
        t = ops.rms_norm(x, layer.attn_norm, c.rms_norm_eps)
        qkv = ops.linear(t, layer.qkv_weight, layer.qkv_bias)
        k_cache, v_cache = cache.k[index], cache.v[index]
        q = ops.rope_cache(qkv, cos, sin, k_cache, v_cache, cache.offset, c.num_attention_heads)
        attend = ops.attention_decode if tokens.shape[0] == 1 else ops.attention_prefill
        window = c.sliding_window if c.is_sliding(index) else 0
        out = attend(q, k_cache, v_cache, layer.sinks, cache.offset, window, model.sm_scale)
        x = x + ops.linear(out, layer.out_weight, layer.out_bias)
        t = ops.rms_norm(x, layer.mlp_norm, c.rms_norm_eps)
        x = x + ops.moe(t, layer.experts, c.experts_per_token, c.swiglu_limit)
    cache.advance(tokens.shape[0])
    x = ops.rms_norm(x[-1:], model.weights.norm, c.rms_norm_eps)
    return ops.unembedding(x, model.weights.unembedding)


def _prefill_then_decode(path: Path, dtype: torch.dtype, fused: bool) -> list[torch.Tensor]:
    gen = load_generator(path, device="cpu", context=64, backend="torch", dtype=dtype)
    model, cache = gen.model, gen.cache
    step = model.forward if fused else lambda t, c: unfused_forward(model, t, c)
    with torch.inference_mode():
        logits = [step(torch.tensor(PROMPT[:PREFILL]), cache)]
        logits += [step(torch.tensor([token]), cache) for token in PROMPT[PREFILL:]]
    return logits


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_torch_table_fused_loop_equals_unfused_loop(
    micro_checkpoint: Path, dtype: torch.dtype
) -> None:
    fused = _prefill_then_decode(micro_checkpoint, dtype, fused=True)
    unfused = _prefill_then_decode(micro_checkpoint, dtype, fused=False)
    assert len(fused) == 1 + len(PROMPT) - PREFILL
    for ours, ref in zip(fused, unfused, strict=True):
        assert ours.shape == (1, 512) and torch.isfinite(ours).all()
        assert torch.equal(ours, ref)
