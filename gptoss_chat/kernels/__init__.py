"""Triton kernels, each beside a plain-torch reference of the same signature.

One op per file: mxfp4.py (fp4 decoders, MXFP4 row dot), moe_decode.py (expert GEMVs, SwiGLU,
gate-weighted combine), moe_prefill.py (grouped GEMM with fp4 decoded inside tl.dot), router.py,
moe.py (the `Ops.moe`, `Ops.moe_block` and `Ops.out_proj_moe_block` entries), gemv.py (bf16
GEMV: projections with the RMSNorm or the residual add fused, the out projection with the router
in its epilogue, unembedding), attention_decode.py (split-K, sinks, window, GQA),
attention_prefill.py (flash-style), rope_cache.py (RoPE + KV write), rope_attention_decode.py
(RoPE, KV write and decode attention in one launch), rms_norm.py, dequant.py (one expert to
bf16), argmax.py (the sampler's argmax in one launch), unembedding_screen.py (greedy decoding's
argmax through an int8 screen of the unembedding), compact_bf16.py (the attention projections
in 12 bits a value, losslessly, and their decode GEMV). Tests: tests/kernels (interpreter on
CPU, full shapes on a GPU); numbers: docs/BENCHMARKS.md.

`build_ops` is the hook `gptoss_chat.model.ops.select_ops` looks for: it returns the torch table
with the entries these kernels implement replaced. Every replaced entry is graph-safe at T == 1
(no host sync, static launch shapes), so the generator may capture decode as a CUDA graph; so is
every entry at 16 to 128 tokens (short prefill chunks, `model/prefill_graph.py`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from gptoss_chat.model.ops import ExpertWeights, Ops, PreparedLinear, dense_weight


def build_ops(base: Ops, device: torch.device) -> Ops:
    # Imported here so that importing the package never compiles or touches a GPU.
    from gptoss_chat.kernels.attention_decode import attention_decode
    from gptoss_chat.kernels.attention_prefill import attention_prefill
    from gptoss_chat.kernels.expert_layout import tile_experts
    from gptoss_chat.kernels.gemv import linear, linear_residual, norm_linear, unembedding
    from gptoss_chat.kernels.moe import moe, moe_block, out_proj_moe_block
    from gptoss_chat.kernels.rms_norm import rms_norm
    from gptoss_chat.kernels.rope_attention_decode import rope_attention_decode
    from gptoss_chat.kernels.rope_cache import rope_cache

    del device  # one table for every CUDA device
    kernels = {
        "rms_norm": rms_norm,
        "attention_prefill": attention_prefill,
        "attention_decode": attention_decode,
        "moe": moe,
        "unembedding": unembedding,
        "linear": linear,
        "rope_cache": rope_cache,
        "norm_linear": norm_linear,
        "linear_residual": linear_residual,
        "moe_block": moe_block,
        "out_proj_moe_block": out_proj_moe_block,
        "rope_attention_decode": rope_attention_decode,
    }
    guarded = {name: _bf16_only(fn, getattr(base, name)) for name, fn in kernels.items()}
    return replace(base, name="triton", graph_safe_decode=True, graph_safe_prefill=True,
                   sample=_sample, sample_into=_sample_into, prepare_experts=tile_experts,
                   greedy_into=greedy_into, prepare_unembedding=prepare_unembedding,
                   prepare_linear=prepare_linear, **guarded)  # fmt: skip


SCREEN_ENV = "GPTOSS_SCREEN"
COMPACT_ENV = "GPTOSS_COMPACT"


def _switched_off(env: str) -> bool:
    return os.environ.get(env, "1").strip().lower() in ("0", "false", "no", "off")


def prepare_linear(weight: torch.Tensor) -> torch.Tensor | PreparedLinear:
    """The 12-bit lossless copy of a bf16 attention projection on a GPU
    (`compact_bf16.compact`), which decode's GEMVs read instead of the dense weight, unless
    GPTOSS_COMPACT=0 (to measure without it); the weight itself elsewhere, when its values do
    not compact (`compact` returns None), or when the GPU has no room left for the copy."""
    from gptoss_chat.kernels.compact_bf16 import compact

    return _built_on_gpu(COMPACT_ENV, weight, lambda w: compact(w) or w, otherwise=weight)


def prepare_unembedding(weight: torch.Tensor) -> object | None:
    """The int8 screen of a bf16 unembedding on a GPU (`unembedding_screen.build_screen`), unless
    GPTOSS_SCREEN=0 (to measure without it); None elsewhere, and when the GPU has no room left
    for it (greedy decoding then reads the whole unembedding, as before)."""
    from gptoss_chat.kernels.unembedding_screen import build_screen

    return _built_on_gpu(SCREEN_ENV, weight, build_screen, otherwise=None)


def _built_on_gpu(env: str, weight: torch.Tensor, build: Callable[[torch.Tensor], Any],
                  otherwise: Any) -> Any:  # fmt: skip
    """build(weight) for a bf16 weight on a GPU unless `env` switches it off; `otherwise` then,
    elsewhere, and when building runs out of GPU memory (the aid is extra memory, never needed)."""
    if _switched_off(env) or not weight.is_cuda or weight.dtype != torch.bfloat16:
        return otherwise
    try:
        return build(weight)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return otherwise


def greedy_into(
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
    """`Ops.greedy_into`: through the screen when there is one (three launches: the final norm,
    the int8 codes, the few rows they cannot rule out), else the norm, the unembedding and the
    argmax."""
    from gptoss_chat.kernels.gemv import unembedding
    from gptoss_chat.kernels.rms_norm import rms_norm
    from gptoss_chat.kernels.unembedding_screen import UnembeddingScreen, screened_argmax_into
    from gptoss_chat.model.ops import rms_norm_torch, unembedding_torch

    if isinstance(screen, UnembeddingScreen) and last.dtype == torch.bfloat16:
        screened_argmax_into(last, norm_scale, eps, weight, screen, token, table,
                             row if table is not None else None, host)  # fmt: skip
        return
    if last.dtype == torch.bfloat16:
        logits = unembedding(rms_norm(last, norm_scale, eps), weight)
    else:
        logits = unembedding_torch(rms_norm_torch(last, norm_scale, eps), weight)
    _sample_into(logits[0], 0.0, 1.0, None, token, table, row, host)


def _sample(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """The reference sampler (`ops.sample_torch`) with the one-launch argmax on CUDA."""
    from gptoss_chat.kernels.argmax import argmax
    from gptoss_chat.model.ops import sample_with

    pick = argmax if logits.is_cuda else torch.argmax
    return sample_with(pick, logits, temperature, top_p, generator)


def _sample_into(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    token: torch.Tensor,
    table: torch.Tensor | None,
    row: torch.Tensor,
    host: torch.Tensor | None = None,
) -> None:
    """`ops.sample_into_torch` with `_sample`; greedy on CUDA is one launch: the argmax's last
    program writes the id (also into the pinned `host` slot) and copies its embedded row (four
    operations before: three launches and a copy to the host)."""
    from gptoss_chat.kernels.argmax import argmax_into
    from gptoss_chat.model.ops import sample_into_torch

    if logits.is_cuda and temperature <= 0 and logits.dtype == torch.float32:
        argmax_into(logits, token, table, row if table is not None else None, host)
    else:
        sample_into_torch(logits, temperature, top_p, generator, token, table, row, host, _sample)


def _bf16_only(kernel: Callable[..., Any], fallback: Callable[..., Any]) -> Callable[..., Any]:
    """The kernels take bf16 activations (the engine's default); a float32 model (a debugging
    option) runs the torch reference instead, so every dtype the loader accepts still works."""

    def op(*args: Any) -> Any:
        if args[0].dtype == torch.bfloat16:
            return kernel(*args)
        from gptoss_chat.kernels.expert_layout import untiled_experts

        # the references read experts in the checkpoint's layout (only bf16 ones get tiled) and
        # dense linear weights
        return fallback(*(untiled_experts(a) if isinstance(a, ExpertWeights) else
                          dense_weight(a) if isinstance(a, PreparedLinear) else a
                          for a in args))  # fmt: skip

    op.__name__ = getattr(kernel, "__name__", "op")
    return op
