"""Small helpers shared by the kernels."""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait


@triton.jit
def dot(a, b, UPCAST: tl.constexpr):
    """tl.dot, or a float32 dot when UPCAST: Triton's CPU interpreter multiplies bf16 operands as
    their raw 16-bit patterns, so the interpreter path upcasts first."""
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32))
    else:
        return tl.dot(a, b)


def pdl_enabled(x: torch.Tensor) -> bool:
    """Programmatic dependent launch on this tensor's device: Hopper or newer CUDA GPUs, unless
    GPTOSS_PDL=0 (to measure without it)."""
    if not x.is_cuda or os.environ.get("GPTOSS_PDL") == "0":
        return False
    return torch.cuda.get_device_capability(x.device)[0] >= 9


def pdl_small_kernels(x: torch.Tensor) -> bool:
    """PDL for the short launches between the GEMVs (RoPE, attention, router): they come up
    while the kernel before them runs and start the moment it ends. GPTOSS_PDL_SMALL=0 turns
    only these off (to measure them)."""
    return pdl_enabled(x) and os.environ.get("GPTOSS_PDL_SMALL") != "0"


@functools.cache
def arrival_counters(device: torch.device, site: int, n: int, kernel: str) -> torch.Tensor:
    """The zeroed int32 [n] arrival counters of one call site of `kernel` (`site`: the address
    of a buffer only that site uses: its weight, its KV buffer), made at the first (eager) call
    and kept for as long as the process runs: a captured CUDA graph holds their address, and
    every launch leaves them at zero (the last program resets them). One set per site, so
    launches that overlap under PDL never share one. Made during a capture they would live in
    the graph's pool and be zeroed only when it replays: that is refused."""
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        raise RuntimeError(f"{kernel} must run once before a CUDA graph captures it")
    return torch.zeros(n, dtype=torch.int32, device=device)


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


@triton.jit
def let_next_kernel_start(PDL: tl.constexpr):
    """Programmatic dependent launch: the kernel after this one (if launched with `launch_pdl`)
    may start its programs now; they wait in `wait_for_previous_kernel` before touching our
    outputs. Lets a GEMV request its first weights while this kernel finishes.

    Where it is called decides who streams when: once every program of this kernel has called
    it, the next kernel comes up, and if that one calls it at its own start, the kernel after it
    comes up too, so three launches can hold SM slots and DRAM at once. A kernel whose next
    launch would only compete with the one still streaming should call it after its wait (the
    decode attention does: the out projection then streams during the attention, not against
    the qkv projection; docs/BENCHMARKS.md, 17:13 UTC run)."""
    if PDL:
        gdc_launch_dependents()


@triton.jit
def wait_for_previous_kernel(PDL: tl.constexpr):
    """Programmatic dependent launch: block until the previous kernel has finished and its
    writes are visible. Everything before this call may read only what no earlier kernel of the
    step writes (weights), and nothing may be written before it."""
    if PDL:
        gdc_wait()
