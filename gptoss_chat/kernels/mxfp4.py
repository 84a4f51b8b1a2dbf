"""Decoding MXFP4 (e2m1 values, e8m0 scales) to floats inside Triton kernels (prefill's grouped
GEMM and the one-expert dequantiser; decode's GEMVs use the integer path of mxfp4_int8.py).

Two decoders of one packed byte into its two values (low nibble first, as the checkpoint stores
them), both exact:

- `fp4_pair_arith`: plain integer/float ops that the CPU interpreter runs. Each value costs about
  eight instructions, which caps a GEMV near 0.6 TB/s on an H100: decoding, not memory, limits.
- `fp4_pair_prmt`: PTX byte permutes (`prmt`) used as 8-entry lookup tables, four bytes (eight
  values) per 32-bit register, giving bf16 pairs straight away: about 2.3 integer instructions a
  value. The table holds the bf16 bit patterns of 0, .5, 1, 1.5, 2, 3, 4, 6 split into low bytes
  (0x00 0x00 0x80 0xC0 0x00 0x40 0x80 0xC0) and high bytes (0x00 0x3F 0x3F 0x3F 0x40 0x40 0x40
  0x40); the sign bits are moved onto the high bytes with two more permutes. Idea from the
  byte-permute decoders of llama.cpp's CUDA backend and Marlin's dequantizers (no code taken).

`scale_from_e8m0` builds the per-32 scale 2^(s-127) from the exponent bits.
"""

from __future__ import annotations

import triton
import triton.language as tl

_PRMT_DECODE = tl.constexpr("""
{
.reg .b32 m, sb, t0, t1, h0, h1, la, ha, lb, hb, u, v, sg;
mov.b32 t0, 0xC0800000;
mov.b32 t1, 0xC0804000;
mov.b32 h0, 0x3F3F3F00;
mov.b32 h1, 0x40404040;
and.b32 m, $4, 0x77777777;
shr.b32 sb, m, 16;
prmt.b32 la, t0, t1, m;
prmt.b32 ha, h0, h1, m;
prmt.b32 lb, t0, t1, sb;
prmt.b32 hb, h0, h1, sb;
shl.b32 u, $4, 4;
and.b32 u, u, 0x80808080;
and.b32 v, $4, 0x80808080;
prmt.b32 sg, u, v, 0x5140;
or.b32 ha, ha, sg;
prmt.b32 sg, u, v, 0x7362;
or.b32 hb, hb, sg;
prmt.b32 $0, la, ha, 0x6240;
prmt.b32 $1, lb, hb, 0x6240;
prmt.b32 $2, la, ha, 0x7351;
prmt.b32 $3, lb, hb, 0x7351;
}
""")


@triton.jit
def fp4_value_arith(nibble):
    """e2m1 code (int32, 0..15) -> float32 value.

    (mag << 22) + 0x3F000000 is the float 2^(e-1) * (1 + m/2), right for exponents 1..3; for the
    two subnormal codes it gives 0.5 and 0.75, which 2v - 1 maps to 0 and 0.5."""
    mag = nibble & 7
    v = ((mag << 22) + 0x3F000000).to(tl.float32, bitcast=True)
    v = tl.where(mag < 2, v * 2.0 - 1.0, v)
    return tl.where(nibble >= 8, -v, v)


@triton.jit
def fp4_pair_arith(packed):
    """uint8 tensor -> (low-nibble values, high-nibble values), float32."""
    b = packed.to(tl.int32)
    return fp4_value_arith(b & 15), fp4_value_arith(b >> 4)


@triton.jit
def fp4_pair_prmt(packed):
    """uint8 tensor -> (low-nibble values, high-nibble values), float32, through `prmt` (GPU)."""
    lo, hi = tl.inline_asm_elementwise(
        asm=_PRMT_DECODE,
        constraints="=r,=r,=r,=r,r",
        args=[packed],
        dtype=(tl.bfloat16, tl.bfloat16),
        is_pure=True,
        pack=4,
    )
    return lo.to(tl.float32), hi.to(tl.float32)


@triton.jit
def fp4_pair(packed, USE_PRMT: tl.constexpr):
    if USE_PRMT:
        return fp4_pair_prmt(packed)
    else:
        return fp4_pair_arith(packed)


@triton.jit
def scale_from_e8m0(s):
    """uint8 e8m0 exponent -> float32 2^(s-127) (s = 0 gives 0, not 2^-127: never used)."""
    return (s.to(tl.int32) << 23).to(tl.float32, bitcast=True)
