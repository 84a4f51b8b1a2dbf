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

    Every fp4 value times a power of two is exact in float32 and in bf16 (fp4 has one mantissa
    bit), so computing in float32 and casting once gives the same bits as decoding in bf16.
    """
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise TypeError(f"MXFP4 blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != BYTES_PER_BLOCK:
        raise ValueError(
            f"MXFP4 blocks {tuple(blocks.shape)} do not fit scales {tuple(scales.shape)}"
        )
    lut = torch.tensor(FP4_VALUES, dtype=torch.float32, device=blocks.device)
    low = lut[(blocks & 0x0F).long()]  # [..., G, 16]
    high = lut[(blocks >> 4).long()]  # [..., G, 16]
    values = torch.stack((low, high), dim=-1).flatten(-2)  # [..., G, 32]
    exponents = scales.to(torch.int32) - SCALE_BIAS  # [..., G]
    values = torch.ldexp(values, exponents.unsqueeze(-1))
    return values.flatten(-2).to(dtype)  # [..., G * 32]
