"""MXFP4: 32 fp4 (e2m1) values share one e8m0 scale byte.

A checkpoint stores a [rows, cols] weight as `blocks` uint8 [rows, cols/32, 16] (two fp4 values
per byte, the low nibble first) and `scales` uint8 [rows, cols/32] (a power of two, bias 127).
The engine keeps these bytes on the device and decodes only the experts a token selects.
"""

from __future__ import annotations

import torch

BYTES_PER_BLOCK = 16
VALUES_PER_BLOCK = 32
SCALE_BIAS = 127

# The 16 e2m1 codes in nibble order: sign bit 3, exponent bits 2-1, mantissa bit 0.
FP4_VALUES = (
    +0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
    -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
)  # fmt: skip


def dequantize_mxfp4(
    blocks: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype = torch.bfloat16
) -> torch.Tensor:
    """Decode `blocks` [..., G, 16] uint8 with `scales` [..., G] uint8 into [..., G * 32] `dtype`.

    One gather through a 256-entry table of (low, high) value pairs decodes a whole byte, then a
    multiply by the block's power of two. fp4 values have one mantissa bit, so every product is
    exact in bf16 and float32: the bits equal a decode in float32 with ldexp (as transformers
    does), in a fifth of the time and without int64 index tensors.
    """
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise TypeError(f"MXFP4 blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != BYTES_PER_BLOCK:
        raise ValueError(
            f"MXFP4 blocks {tuple(blocks.shape)} do not fit scales {tuple(scales.shape)}"
        )
    lut = torch.tensor(FP4_VALUES, dtype=dtype, device=blocks.device)
    codes = torch.arange(256, device=blocks.device)
    pairs = torch.stack((lut[codes & 0x0F], lut[codes >> 4]), dim=-1)  # [256, 2], low first
    values = pairs.index_select(0, blocks.reshape(-1).int())  # [N * 16, 2]
    values = values.view(*blocks.shape[:-1], VALUES_PER_BLOCK)  # [..., G, 32]
    factor = torch.exp2(scales.to(torch.float32) - SCALE_BIAS).to(dtype)  # [..., G]
    return (values * factor.unsqueeze(-1)).flatten(-2)  # [..., G * 32]
