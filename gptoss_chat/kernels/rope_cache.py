"""Rotary embedding of q and k plus the KV-cache write, in one launch.

In torch this step is about 17 small kernels a layer (slices, four multiplies, a subtraction,
an addition and a concatenation per rotated tensor, the slot arithmetic and two index_copy),
which at decode cost more GPU time than the attention itself. Here each program takes a block of
heads of one token straight from the qkv projection's output, rotates q and k (rounding to bf16
after each product and sum, exactly as torch's bf16 arithmetic does), returns q and writes k and v
to slot (offset + t) % S of the layer's ring buffers. The offset is read on the device.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import (
    let_next_kernel_start,
    pdl_small_kernels,
    wait_for_previous_kernel,
)


@triton.jit
def _bf16(x):
    """Round to bf16 to nearest even, as torch does (the interpreter would otherwise truncate)."""
    return x.to(tl.bfloat16, fp_downcast_rounding="rtne")


@triton.jit
def _rope_cache_kernel(
    qkv_ptr,  # [T, (HQ + 2 HKV) * D] bf16
    cos_ptr,  # [T, D/2] bf16
    sin_ptr,  # [T, D/2] bf16
    offset_ptr,  # [] int64
    q_ptr,  # [T, HQ, D] bf16 out
    k_ptr,  # [S, HKV, D] bf16 cache
    v_ptr,  # [S, HKV, D] bf16 cache
    S,
    HQ: tl.constexpr,
    HKV: tl.constexpr,
    D: tl.constexpr,
    BLOCK_H: tl.constexpr,
    PDL: tl.constexpr = False,
):
    # With PDL: up while the qkv projection runs; it waits for it before reading anything.
    wait_for_previous_kernel(PDL)
    let_next_kernel_start(PDL)  # the attention may come up (it waits for our writes)
    token = tl.program_id(0)
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)  # over q, k, v heads
    n_heads: tl.constexpr = HQ + 2 * HKV
    ok = heads < n_heads
    half: tl.constexpr = D // 2
    d = tl.arange(0, half)
    row = qkv_ptr + token * n_heads * D + heads[:, None] * D
    first = tl.load(row + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
    second = tl.load(row + half + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
    cos = tl.load(cos_ptr + token * half + d).to(tl.float32)[None, :]
    sin = tl.load(sin_ptr + token * half + d).to(tl.float32)[None, :]
    r1 = _bf16(_bf16(first * cos).to(tl.float32) - _bf16(second * sin).to(tl.float32))
    r2 = _bf16(_bf16(second * cos).to(tl.float32) + _bf16(first * sin).to(tl.float32))
    rotate = (heads < HQ + HKV)[:, None]  # q and k heads; v heads pass through
    out1 = tl.where(rotate, r1, first.to(tl.bfloat16))
    out2 = tl.where(rotate, r2, second.to(tl.bfloat16))
    slot = ((tl.load(offset_ptr) + token) % S).to(tl.int64)
    is_q = heads < HQ
    is_k = (heads >= HQ) & (heads < HQ + HKV)
    is_v = (heads >= HQ + HKV) & ok
    q_dst = q_ptr + (token * HQ + heads)[:, None] * D
    k_dst = k_ptr + (slot * HKV + heads - HQ)[:, None] * D
    v_dst = v_ptr + (slot * HKV + heads - HQ - HKV)[:, None] * D
    tl.store(q_dst + d[None, :], out1, mask=is_q[:, None])
    tl.store(q_dst + half + d[None, :], out2, mask=is_q[:, None])
    tl.store(k_dst + d[None, :], out1, mask=is_k[:, None])
    tl.store(k_dst + half + d[None, :], out2, mask=is_k[:, None])
    tl.store(v_dst + d[None, :], out1, mask=is_v[:, None])
    tl.store(v_dst + half + d[None, :], out2, mask=is_v[:, None])


def _pdl(x: torch.Tensor) -> dict[str, bool]:
    pdl = pdl_small_kernels(x)
    return {"PDL": pdl, "launch_pdl": pdl} if pdl else {}


def _launch_options(cuda: bool) -> dict[str, object]:
    # Without fusion Triton keeps torch's two roundings (product, then sum); with it, it emits a
    # bf16 FMA (one rounding), which is more accurate but not bit-equal to the reference.
    return {"num_warps": 4, "enable_fp_fusion": False} if cuda else {"num_warps": 1}


def rope_cache(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    offset: torch.Tensor,
    n_heads: int,
) -> torch.Tensor:
    """The `Ops.rope_cache` entry; see `RopeCacheOp` in model/ops.py."""
    n_tokens, width = qkv.shape
    slots, n_kv, head_dim = k_cache.shape
    if width != (n_heads + 2 * n_kv) * head_dim or cos.shape != (n_tokens, head_dim // 2):
        raise ValueError(f"rope_cache: qkv {tuple(qkv.shape)} does not fit {n_heads} heads")
    if not (qkv.is_contiguous() and cos.is_contiguous() and sin.is_contiguous()):
        raise ValueError("rope_cache: qkv, cos and sin must be contiguous")
    q = torch.empty(n_tokens, n_heads, head_dim, dtype=qkv.dtype, device=qkv.device)
    block_h = 16 if qkv.is_cuda else triton.next_power_of_2(n_heads + 2 * n_kv)
    grid = (n_tokens, triton.cdiv(n_heads + 2 * n_kv, block_h))
    _rope_cache_kernel[grid](
        qkv, cos, sin, offset, q, k_cache, v_cache, slots, HQ=n_heads, HKV=n_kv, D=head_dim,
        BLOCK_H=block_h, **_launch_options(qkv.is_cuda), **_pdl(qkv),
    )  # fmt: skip
    return q
