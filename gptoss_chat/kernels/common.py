"""Small helpers shared by the kernels."""

from __future__ import annotations

import os

import triton
import triton.language as tl


@triton.jit
def dot(a, b, UPCAST: tl.constexpr):
    """tl.dot, or a float32 dot when UPCAST: Triton's CPU interpreter multiplies bf16 operands as
    their raw 16-bit patterns, so the interpreter path upcasts first."""
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32))
    else:
        return tl.dot(a, b)


def tuning_sweep() -> bool:
    """GPTOSS_TRITON_AUTOTUNE=1 makes the autotuned kernels time their whole config lists at
    first use (about a minute of compiling; for tuning a new GPU). Otherwise each uses the one
    config that won on an H100 (benchmarks/engine.py reports the winners as `tuning` lines)."""
    return os.environ.get("GPTOSS_TRITON_AUTOTUNE") == "1"


def check_attention_inputs(name: str, q, k_cache, v_cache) -> None:
    """The shape and layout every attention launcher needs: q [T, Hq, D] against a cache
    [S, Hkv, D] with Hq a multiple of Hkv, contiguous, D a power of two."""
    _, n_heads, head_dim = q.shape
    _, n_kv, kv_dim = k_cache.shape
    if kv_dim != head_dim or v_cache.shape != k_cache.shape or n_heads % n_kv:
        raise ValueError(f"{name}: q {tuple(q.shape)} does not fit cache {tuple(k_cache.shape)}")
    if head_dim & (head_dim - 1) or not (q.is_contiguous() and k_cache.is_contiguous()):
        raise ValueError(f"{name} needs contiguous tensors and a power-of-two head_dim")
