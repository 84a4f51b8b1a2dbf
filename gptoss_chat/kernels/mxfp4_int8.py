"""MXFP4 rows times a fixed-point activation, in integer arithmetic (the decode GEMVs' core).

Decoding fp4 into floats costs ~14 instructions a value in the float kernel (decode, convert,
multiply, add, cross-thread sums), which made the expert GEMVs instruction-bound at ~1.2 TB/s.
Here the products are integers:

- Weights: an e2m1 code doubled is a small integer (0, 1, 2, 3, 4, 6, 8, 12 and negatives), so
  two byte permutes (`prmt`) through a 16-entry table give four int8 weights, and a third picks
  each byte's sign from the code's top bit. One 32-bit word of codes (8 values) becomes two
  int8x4 words in about 11 integer instructions.
- Activations: each group of 32 is stored as 16-bit fixed point split into two int8 halves,
  x ~= step * (254 * hi + lo) with step = max|x| / (127 * 254). The error is at most
  max|x| / 64,516 per value, below bf16's own rounding for all but values ~250x under the
  group's largest, so this is not the fidelity loss of 8-bit activations (llama.cpp's q8_1).
- Products: `dp4a` multiplies four int8 pairs and adds them to an int32: four per word (two
  halves x two activation parts), exact, then one multiply-add joins hi and lo. A group's sum
  is exact in int32 (|sum| <= 32 * 12 * 32,385 < 2^24), then scaled once in float32 by
  step * 2^(e-128) (the e8m0 scale, halved for the doubled codes).

About 2 instructions a value for decoding and products; with loads, addresses and reductions
the compiled loop takes 3.3-4.0 (benchmarks/sass_count.py). The interpreter path (CI) computes
the same integers with plain tensor ops. Ideas from llama.cpp's CUDA `get_int_from_table_16` +
`dp4a` dot products and from Marlin's byte-permute dequantizers (no code taken).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import wait_for_previous_kernel

FIXED_POINT_HI = 254
"""x ~= step * (254 * hi + lo): lo holds what hi's rounding left, to 1/254 of hi's step."""
FIXED_HI = tl.constexpr(FIXED_POINT_HI)

_DECODE_DOT = tl.constexpr("""
{
.reg .b32 m, s, m2, s2, p, n, a, b, lo, hi;
and.b32 m, $1, 0x77777777;
shr.b32 s, $1, 1;
and.b32 s, s, 0x44444444;
or.b32 s, s, 0x32103210;
shr.b32 m2, m, 16;
shr.b32 s2, s, 16;
prmt.b32 p, $6, $7, m;
prmt.b32 n, $8, $9, m;
prmt.b32 a, p, n, s;
prmt.b32 p, $6, $7, m2;
prmt.b32 n, $8, $9, m2;
prmt.b32 b, p, n, s2;
dp4a.s32.s32 lo, a, $4, 0;
dp4a.s32.s32 lo, b, $5, lo;
dp4a.s32.s32 hi, a, $2, 0;
dp4a.s32.s32 hi, b, $3, hi;
mad.lo.s32 $0, hi, 254, lo;
}
""")


DECODE_TABLE = (0x03020100, 0x0C080604, 0xFDFEFF00 - 2**32, 0xF4F8FAFC - 2**32)
"""Doubled e2m1 values as int8 bytes: codes 0-3, 4-7 (0 1 2 3 4 6 8 12), then 8-15 negated."""


@functools.cache
def decode_table(device: torch.device) -> torch.Tensor:
    """`DECODE_TABLE` on `device` (int32 [4]). Kernels load it rather than take it as constants:
    ptxas would re-materialise constant table words before every permute (+4 instructions a
    word); loaded ones stay in registers. Built before any graph capture (the eager first step)."""
    return torch.tensor(DECODE_TABLE, dtype=torch.int32, device=device)


@triton.jit
def load_decode_table(table_ptr, shape):
    """The four table words, each as a tensor of `shape` (one register per thread)."""
    zero = tl.zeros(shape, dtype=tl.int32)
    return (zero + tl.load(table_ptr), zero + tl.load(table_ptr + 1),
            zero + tl.load(table_ptr + 2), zero + tl.load(table_ptr + 3))  # fmt: skip


@triton.jit
def fp4_word_dot_asm(words, hi_a, hi_b, lo_a, lo_b, pos_lo, pos_hi, neg_lo, neg_hi):
    """int32 words of 8 fp4 codes (low nibble first) . fixed-point x -> int32 sums (GPU).

    hi_a/hi_b, lo_a/lo_b: the int8x4 words of x's hi and lo parts for the word's first and last
    four values; pos_*/neg_*: `DECODE_TABLE`. Returns the sum over the 8 values of
    (2 * w) * (254 * hi + lo)."""
    return tl.inline_asm_elementwise(
        asm=_DECODE_DOT,
        constraints="=r,r,r,r,r,r,r,r,r,r",
        args=[words, hi_a, hi_b, lo_a, lo_b, pos_lo, pos_hi, neg_lo, neg_hi],
        dtype=tl.int32,
        is_pure=True,
        pack=1,
    )


@triton.jit
def fp4_doubled(codes):
    """e2m1 codes (int32, 0..15) -> twice their value, as int32 (exact)."""
    mag = codes & 7
    value = tl.where(mag < 4, mag, tl.where(mag < 6, 2 * mag - 4, 4 * mag - 16))
    return tl.where(codes >= 8, -value, value)


@triton.jit
def e8m0_half_scale(s):
    """uint8 e8m0 exponent -> float32 2^(s-128): the scale of a doubled code (0 for s <= 1)."""
    return (tl.maximum(s.to(tl.int32) - 1, 0) << 23).to(tl.float32, bitcast=True)


@triton.jit
def mxfp4_fixed_row_dot(
    w_rows,  # pointer tensor [R, 1] (int32 view): first word of each row
    s_rows,  # pointer tensor [R, 1] (uint8): first scale of each row
    row_mask,  # [R] bool
    xq_ptr,  # int32 [K / 2]: x in fixed point, interleaved per code word (`fixed_x_offsets`)
    xs_ptr,  # float32 [K / XG]: the step of each group of XG activations (32 or 16)
    table_ptr,  # int32 [4]: `decode_table` (read only by the GPU path)
    K: tl.constexpr,
    R: tl.constexpr,
    BLOCK_G: tl.constexpr,
    USE_ASM: tl.constexpr,
    PIPE: tl.constexpr = 0,
    PDL: tl.constexpr = False,
    XG: tl.constexpr = 32,
    TILED: tl.constexpr = False,
    w_tail=None,
    s_tail=None,
):
    """Sum over k of W[r, k] * x[k] for R rows of one MXFP4 matrix, float32 [R].

    A step covers BLOCK_G groups of 32 as an [R, 4 * BLOCK_G] tile of int32 code words,
    contiguous along each row (coalesced 16-byte loads, four words = one group per thread), and
    every activation word a thread loads serves all the rows it holds. Whole groups left over
    go through narrower tiles.

    The weight's layout: w_rows / s_rows point at each row's first code word / scale. TILED
    (expert_layout.py, R rows and BLOCK_G groups a step as tiled): w_rows / s_rows point at each
    row's piece of the block's first step (steps are R times a row's piece apart) and w_tail /
    s_tail at its piece of the tail."""
    n_groups: tl.constexpr = K // 32
    MAIN: tl.constexpr = n_groups - n_groups % BLOCK_G  # groups covered by full steps
    SS: tl.constexpr = R if TILED else 1  # a step's stride over a row's piece of it
    acc = tl.zeros([R], dtype=tl.float32)
    if PIPE == 1 and MAIN > 0:
        # The next step's codes, scales and activations are all requested before this step's
        # arithmetic, so a step waits for nothing it asked for itself (Triton pipelines only
        # loads that feed tl.dot by itself). With the codes alone requested ahead, each step
        # still waited a memory round trip for its own scales: the MoE decoded 552 against 559
        # tok/s at 1k on an H100 (2026-11-22). Two steps ahead: 557 (mlp1), 544 (mlp2).
        packed = _load_codes(w_rows, row_mask, 0, BLOCK_G, SS)
        scale = _load_scales(s_rows, row_mask, 0, BLOCK_G, SS)
        wait_for_previous_kernel(PDL)  # x comes from it; the first weights are on the way
        xv, steps = _load_x(xq_ptr, xs_ptr, 0, BLOCK_G, USE_ASM, XG)
        for g0 in range(0, MAIN, BLOCK_G):
            ahead = tl.minimum(g0 + BLOCK_G, MAIN - BLOCK_G)
            next_packed = _load_codes(w_rows, row_mask, ahead, BLOCK_G, SS)
            next_scale = _load_scales(s_rows, row_mask, ahead, BLOCK_G, SS)
            next_xv, next_steps = _load_x(xq_ptr, xs_ptr, ahead, BLOCK_G, USE_ASM, XG)
            acc += _step_sums(packed, scale, xv, steps, table_ptr, R, BLOCK_G, USE_ASM, XG)
            packed, scale, xv, steps = next_packed, next_scale, next_xv, next_steps
    elif PIPE > 1 and MAIN > 0:
        wait_for_previous_kernel(PDL)
        for g0 in tl.range(0, MAIN, BLOCK_G, num_stages=PIPE):
            packed = _load_codes(w_rows, row_mask, g0, BLOCK_G, SS)
            acc += _group_sums(packed, s_rows, row_mask, xq_ptr, xs_ptr, table_ptr, g0, K, R,
                               BLOCK_G, USE_ASM, XG, SS)  # fmt: skip
    else:
        wait_for_previous_kernel(PDL)
        for g0 in range(0, MAIN, BLOCK_G):
            packed = _load_codes(w_rows, row_mask, g0, BLOCK_G, SS)
            acc += _group_sums(packed, s_rows, row_mask, xq_ptr, xs_ptr, table_ptr, g0, K, R,
                               BLOCK_G, USE_ASM, XG, SS)  # fmt: skip
    # Whole groups left over, in one narrower step per set bit of their count (2880 = 90
    # groups: with 16-group steps the 10 left go as 8 + 2, not as five steps of 2).
    TAIL: tl.constexpr = n_groups - MAIN
    # A tiled weight's tails are contiguous rows of their own: groups counted from their start
    # (the activations' still from MAIN).
    TAIL_FROM: tl.constexpr = 0 if TILED else MAIN
    if not TILED:
        w_tail, s_tail = w_rows, s_rows
    for bit in tl.static_range(6, -1, -1):
        if (TAIL >> bit) & 1:  # (no named constexprs here: each would be assigned per bit)
            tail_codes = _load_codes(
                w_tail, row_mask, TAIL_FROM + ((TAIL >> (bit + 1)) << (bit + 1)), 1 << bit
            )
            acc += _group_sums(tail_codes, s_tail, row_mask, xq_ptr, xs_ptr, table_ptr,
                               TAIL_FROM + ((TAIL >> (bit + 1)) << (bit + 1)), K, R, 1 << bit,
                               USE_ASM, XG, X_FROM=MAIN - TAIL_FROM)  # fmt: skip
    return acc


@triton.jit
def _load_codes(w_rows, row_mask, g0, BG: tl.constexpr, SS: tl.constexpr = 1):
    """int32 [R, 4 BG]: the code words of groups g0 .. g0+BG-1 of every row (SS: how many rows'
    pieces a step holds in a tiled weight, else 1)."""
    words = g0 * 4 * SS + tl.arange(0, 4 * BG)
    return tl.load(w_rows + words[None, :], mask=row_mask[:, None], other=0)


@triton.jit
def _load_scales(s_rows, row_mask, g0, BG: tl.constexpr, SS: tl.constexpr = 1):
    """uint8 [R, BG]: the e8m0 scales of groups g0 .. g0+BG-1 of every row (SS: `_load_codes`)."""
    groups = g0 * SS + tl.arange(0, BG)
    return tl.load(s_rows + groups[None, :], mask=row_mask[:, None], other=0)


@triton.jit
def _load_x(xq_ptr, xs_ptr, g0, BG: tl.constexpr, USE_ASM: tl.constexpr, XG: tl.constexpr):
    """The fixed-point activations of groups g0 .. g0+BG-1 as `_step_sums` takes them (GPU:
    int32 [4BG, 4], the words each code word's dp4a's read; interpreter: int32 [4BG, 8] values)
    and their steps (float32 [BG], or [BG, 2] with two steps a group when XG == 16)."""
    words = g0 * 4 + tl.arange(0, 4 * BG)  # code word index along the row
    groups = g0 + tl.arange(0, BG)
    if USE_ASM:
        xv = tl.load(xq_ptr + (4 * words)[:, None] + tl.arange(0, 4)[None, :])  # [4BG, 4]
    else:
        nib = tl.arange(0, 8)
        xb = xq_ptr.to(tl.pointer_type(tl.int8), bitcast=True)
        at = (16 * words)[:, None] + nib[None, :]  # [4BG, 8]: hi bytes (`fixed_x_offsets`)
        xv = FIXED_HI * tl.load(xb + at).to(tl.int32) + tl.load(xb + at + 8).to(tl.int32)
    if XG == 32:
        steps = tl.load(xs_ptr + groups)  # [BG]
    else:
        steps = tl.load(xs_ptr + (2 * groups)[:, None] + tl.arange(0, 2)[None, :])  # [BG, 2]
    return xv, steps


@triton.jit
def _step_sums(packed, scale, xv, steps, table_ptr, R: tl.constexpr, BG: tl.constexpr,
               USE_ASM: tl.constexpr, XG: tl.constexpr):  # fmt: skip
    """float32 [R]: each row's products over one step's groups, scaled (what `_load_codes`,
    `_load_scales` and `_load_x` loaded for it)."""
    if USE_ASM:
        hi, lo = tl.split(tl.reshape(xv, [4 * BG, 2, 2]).permute(0, 2, 1))
        hi_a, hi_b = tl.split(hi)
        lo_a, lo_b = tl.split(lo)
        pos_lo, pos_hi, neg_lo, neg_hi = load_decode_table(table_ptr, [R, 4 * BG])
        sums = fp4_word_dot_asm(packed, hi_a[None, :], hi_b[None, :], lo_a[None, :], lo_b[None, :],
                                pos_lo, pos_hi, neg_lo, neg_hi)  # fmt: skip
    else:
        nib = tl.arange(0, 8)
        codes = (packed[:, :, None] >> (4 * nib)[None, None, :]) & 15  # [R, 4BG, 8]
        sums = tl.sum(fp4_doubled(codes) * xv[None, :, :], axis=2)  # [R, 4BG]
    if XG == 32:
        isum = tl.sum(tl.reshape(sums, [R, BG, 4]), axis=2)  # [R, BG], exact
        return tl.sum(isum.to(tl.float32) * (e8m0_half_scale(scale) * steps[None, :]), axis=1)
    else:  # two activation steps per weight group: halves of two words each
        halves = tl.sum(tl.reshape(sums, [R, BG, 2, 2]), axis=3)  # [R, BG, 2], exact
        part = tl.sum(halves.to(tl.float32) * steps[None, :, :], axis=2)  # [R, BG]
        return tl.sum(part * e8m0_half_scale(scale), axis=1)


@triton.jit
def _group_sums(packed, s_rows, row_mask, xq_ptr, xs_ptr, table_ptr, g0, K: tl.constexpr,
                R: tl.constexpr, BG: tl.constexpr, USE_ASM: tl.constexpr,
                XG: tl.constexpr = 32, SS: tl.constexpr = 1, X_FROM: tl.constexpr = 0):  # fmt: skip
    """float32 [R]: each row's products over groups g0 .. g0+BG-1 (codes `packed`), scaled;
    the activations are those of groups X_FROM + g0 .. (a tiled weight's tail counts its groups
    from the tail's start)."""
    xv, steps = _load_x(xq_ptr, xs_ptr, X_FROM + g0, BG, USE_ASM, XG)
    scale = _load_scales(s_rows, row_mask, g0, BG, SS)
    return _step_sums(packed, scale, xv, steps, table_ptr, R, BG, USE_ASM, XG)


@triton.jit
def fixed_x_offsets(k):
    """Where value k's hi byte goes in the interleaved layout (its lo byte is 8 further on):
    code word j = k // 8 reads x words 4j .. 4j+3 = (hi of values 8j..8j+3, hi of 8j+4..8j+7,
    lo of 8j..8j+3, lo of 8j+4..8j+7), so one 16-byte load per code word feeds its dp4a's."""
    return 16 * (k // 8) + k % 8


@triton.jit
def store_fixed(values, xq_ptr, xs_ptr, G_PAD: tl.constexpr, K: tl.constexpr):
    """Quantise one row's values [G_PAD, 32] float32 (groups past K / 32 are padding) and store
    them: hi/lo bytes into xq [2K] int8 (interleaved, `fixed_x_offsets`), steps into xs [K/32]."""
    groups = tl.arange(0, G_PAD)
    g_ok = groups < K // 32
    hi, lo, step = quantize_fixed(values, g_ok)
    at = xq_ptr + fixed_x_offsets(groups[:, None] * 32 + tl.arange(0, 32)[None, :])
    tl.store(at, hi, mask=g_ok[:, None])
    tl.store(at + 8, lo, mask=g_ok[:, None])
    tl.store(xs_ptr + groups, step, mask=g_ok)


@triton.jit
def store_normed_groups(x_row, norm_ptr, inv_rms, normed_row, xq_row, xs_row, first,
                        GROUPS: tl.constexpr, GROUPS_PAD: tl.constexpr, K: tl.constexpr,
                        CACHE: tl.constexpr):  # fmt: skip
    """Groups first .. first+GROUPS-1 (of 32 values; past K / 32 none) of rms_norm(x row)
    (1/rms `inv_rms`, scale `norm_ptr`): rounded to x's dtype into `normed_row`, and in fixed
    point (`store_fixed`'s arithmetic and layout) into `xq_row`, `xs_row`. Lets the programs of
    a launch share one row's quantisation. CACHE: the x loads' cache modifier (".cg" where other
    programs of the same launch wrote x)."""
    own = tl.arange(0, GROUPS_PAD)
    groups = first + own
    g_ok = (groups < K // 32) & (own < GROUPS)
    idx = groups[:, None] * 32 + tl.arange(0, 32)[None, :]  # [GROUPS_PAD, 32]
    part = tl.load(x_row + idx, mask=g_ok[:, None], other=0.0, cache_modifier=CACHE)
    scale = tl.load(norm_ptr + idx, mask=g_ok[:, None], other=0.0)
    normed = (part.to(tl.float32) * inv_rms * scale).to(x_row.dtype.element_ty)
    tl.store(normed_row + idx, normed, mask=g_ok[:, None])
    hi, lo, step = quantize_fixed(normed.to(tl.float32), g_ok)
    at = xq_row + fixed_x_offsets(idx)
    tl.store(at, hi, mask=g_ok[:, None])
    tl.store(at + 8, lo, mask=g_ok[:, None])
    tl.store(xs_row + groups, step, mask=g_ok)


@triton.jit
def quantize_fixed(values, group_ok):
    """float32 [G, 32] -> (hi int8 [G, 32], lo int8 [G, 32], step float32 [G]) with
    values ~= step * (254 * hi + lo); `group_ok` [G] masks groups out (step 1, zeros)."""
    amax = tl.max(tl.abs(values), axis=1)  # [G]
    unit = tl.where(group_ok & (amax > 0), amax / 127.0, 1.0)  # hi's step
    hi = _round(values / unit[:, None])
    rest = values - hi * unit[:, None]
    lo = _round(rest * (FIXED_HI / unit[:, None]))
    return hi.to(tl.int8), lo.to(tl.int8), unit / FIXED_HI


@triton.jit
def _round(v):
    """Round half away from zero (the interpreter and the GPU agree on it)."""
    return tl.where(v >= 0, tl.floor(v + 0.5), -tl.floor(-v + 0.5))
