"""MXFP4 -> bf16 for one expert at a time, the building block of the prefill MoE.

At prefill each expert sees many tokens, so its weight is worth decoding once into a bf16
scratch matrix and handing to cuBLAS; only one expert's bf16 copy exists at a time (33 MB at
20b shapes). Each program decodes a [ROWS, 16 groups] tile: 16-byte code loads, one scale per
32 values, exact (fp4 values times powers of two are representable in bf16).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.mxfp4 import fp4_pair, scale_from_e8m0
from gptoss_chat.model.mxfp4 import dequantize_mxfp4


@triton.jit
def _dequant_kernel(
    blocks_ptr,  # [R, G, 16] uint8
    scales_ptr,  # [R, G] uint8
    out_ptr,  # [R, G * 32] bf16
    R,
    G: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_G: tl.constexpr,
    USE_PRMT: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    groups = tl.program_id(1) * BLOCK_G + tl.arange(0, BLOCK_G)
    ok = (rows < R)[:, None] & (groups < G)[None, :]  # [ROWS, BG]
    b = tl.arange(0, 16)
    offs = rows.to(tl.int64)[:, None, None] * (G * 16) + groups[None, :, None] * 16 + b
    packed = tl.load(blocks_ptr + offs, mask=ok[:, :, None], other=0)  # [ROWS, BG, 16]
    s = tl.load(scales_ptr + rows.to(tl.int64)[:, None] * G + groups[None, :], mask=ok, other=0)
    scale = scale_from_e8m0(s)[:, :, None]
    lo, hi = fp4_pair(packed, USE_PRMT)
    values = tl.reshape(tl.join(lo * scale, hi * scale), [ROWS, BLOCK_G, 32])  # interleave
    out_offs = rows.to(tl.int64)[:, None, None] * (G * 32) + groups[None, :, None] * 32
    out_offs = out_offs + tl.arange(0, 32)
    tl.store(out_ptr + out_offs, values.to(tl.bfloat16), mask=ok[:, :, None])


def dequantize(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """blocks [R, G, 16] uint8, scales [R, G] uint8 -> [R, G * 32] bf16."""
    if blocks.dtype != torch.uint8 or blocks.dim() != 3 or blocks.shape[2] != 16:
        raise ValueError(f"dequantize: blocks must be uint8 [R, G, 16], got {tuple(blocks.shape)}")
    if scales.shape != blocks.shape[:2] or not (blocks.is_contiguous() and scales.is_contiguous()):
        raise ValueError("dequantize: scales must be contiguous [R, G] and fit the blocks")
    n_rows, n_groups, _ = blocks.shape
    out = torch.empty(n_rows, n_groups * 32, dtype=torch.bfloat16, device=blocks.device)
    if blocks.is_cuda:
        rows, block_g = 16, 16
    else:  # the interpreter runs programs one by one: few, large programs are fastest
        rows, block_g = min(128, triton.next_power_of_2(n_rows)), triton.next_power_of_2(n_groups)
    grid = (triton.cdiv(n_rows, rows), triton.cdiv(n_groups, block_g))
    _dequant_kernel[grid](
        blocks, scales, out, n_rows, G=n_groups, ROWS=rows, BLOCK_G=block_g,
        USE_PRMT=blocks.is_cuda, num_warps=4,
    )  # fmt: skip
    return out


def dequantize_ref(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    return dequantize_mxfp4(blocks, scales, torch.bfloat16).reshape(blocks.shape[0], -1)
