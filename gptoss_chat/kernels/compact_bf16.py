"""bf16 weights in 12 bits a value, losslessly, and the decode GEMV that reads them.

At batch 1 the attention projections are pure reads of bf16 weights: 53 MB a layer, a third of
what a gpt-oss decode step moves; a sampled token's unembedding is 1.16 GB more. Their bits are
not all information: a bf16 value is a sign, an 8-bit exponent and 7 mantissa bits, and the
exponents of a weight matrix crowd into a few binades (in the random N(0, 1/fan_in) weights, 14
binades below the largest hold all but ~0.03% of them; trained weights are reported to be alike,
which DFloat11's lossless exponent coding rests on, though none are here to check; a matrix
wider than the code stays dense). So each value keeps its low byte as it is (the exponent's last
bit and the mantissa) and its high byte (sign and the exponent's upper 7 bits, `e7`) becomes a
4-bit code: the sign and an offset 1..7 into a per-matrix window `base + 1 .. base + 7` of e7,
or offset 0 for e7 = 0 (zeros and the tiniest values). Values outside the window, the
"exceptions", are coded as zero and kept exactly in a short list per block of 8 rows, whose
products the GEMV adds at the end. Every product is the exact bf16 x bf16 product of the dense
weight; only the order of the float32 sum differs from a plain GEMV's, as between any two GEMVs.

Layout, for one [N, K] matrix (K a multiple of 8, N of 8), with W = K / 4 words a row:
- `low` [N, W] int32: word w holds the low bytes of columns w, W + w, 2W + w, 3W + w (byte j is
  column jW + w). Interleaving columns a quarter-row apart lets a step of the GEMV read x as four
  contiguous slices, one per byte position, instead of shuffling it.
- `codes` [N, W] int16: words 2i and 2i + 1 share 32 bits of codes (`_pair_codes`): their
  offsets as byte-permute selectors, their signs where the high bytes want them.
- `exc_index` [N / 8, cap] int32 (row within the block << 16 | column, -1 for none) and
  `exc_value` [N / 8, cap] bf16.

The GEMV decodes a pair of words (8 values) with 25 integer instructions (`_DECODE_WORDS`),
then multiplies in float32 as the bf16 kernel (gemv.py) does, and reads 12 bits a value instead
of 16: on an H100 the qkv and out projections take 16.4 us a layer instead of 19.7, the
unembedding 291 us instead of 375 (docs/BENCHMARKS.md, 2026-11-23).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import let_next_kernel_start, wait_for_previous_kernel
from gptoss_chat.kernels.rms_norm import scale_tile, x_tile
from gptoss_chat.model.ops import PreparedLinear

EXC_ROWS = 8
"""Rows a list of exceptions covers: the GEMV's BLOCK_N is a multiple of it."""
MAX_CAP = 64
"""Most exceptions in one block of EXC_ROWS rows; a matrix that needs more stays dense."""
WINDOW = 7
"""Nonzero e7 values a matrix's codes cover (offsets 1..7; 0 is e7 = 0)."""


@dataclass(frozen=True)
class CompactLinear(PreparedLinear):
    """A bf16 [N, K] weight in the compact format (module docstring), with the dense weight it
    came from (`dense`: prefill's matrix products and the torch reference read it)."""

    low: torch.Tensor
    codes: torch.Tensor
    exc_index: torch.Tensor
    exc_value: torch.Tensor
    base: int
    table: torch.Tensor  # int32 [2]: `lut` on the weight's device

    @property
    def shape(self) -> torch.Size:
        return self.dense.shape

    def nbytes(self) -> int:
        """Bytes of the compact copy (the dense weight not counted)."""
        parts = (self.low, self.codes, self.exc_index, self.exc_value, self.table)
        return sum(t.numel() * t.element_size() for t in parts)


def _e7_by_offset(base: int) -> list[int]:
    """The e7 each offset 0..7 codes: 0, then base + 1 .. base + 7."""
    return [0] + [base + offset for offset in range(1, WINDOW + 1)]


def _lut(base: int) -> tuple[int, int]:
    """`_e7_by_offset` as two words of bytes: the byte permute's table."""
    e7 = _e7_by_offset(base)
    pack = lambda four: sum(v << (8 * i) for i, v in enumerate(four))  # noqa: E731
    return _signed(pack(e7[:4])), _signed(pack(e7[4:]))


def _signed(word: int) -> int:
    """A 32-bit pattern as the int32 Triton passes."""
    return word - (1 << 32) if word >= 1 << 31 else word


def compactable(weight: torch.Tensor) -> bool:
    """A 2-D bf16 weight whose shape the format covers."""
    return (weight.dim() == 2 and weight.dtype == torch.bfloat16
            and weight.shape[0] % EXC_ROWS == 0 and weight.shape[1] % 8 == 0
            and weight.shape[1] <= 1 << 16)  # fmt: skip


CHUNK_ROWS = 2048
"""Rows `compact` codes at a time: its int32/int64 temporaries stay near 0.2 GB for K = 2880
(the whole 201,088-row unembedding at once would need ~12 GB)."""


def compact(weight: torch.Tensor) -> CompactLinear | None:
    """The compact form of a bf16 [N, K] weight (on its device), or None when the shape does not
    fit the format or a block of 8 rows has more than MAX_CAP exceptions (then dense is better).
    Coded CHUNK_ROWS rows at a time, after one pass that picks the exponent window."""
    if not compactable(weight):
        return None
    weight = weight.contiguous()
    n, k = weight.shape
    device = weight.device
    counts = torch.zeros(128, dtype=torch.int64, device=device)
    for first in range(0, n, CHUNK_ROWS):
        counts += torch.bincount(_high_bytes(weight[first : first + CHUNK_ROWS]).flatten() & 0x7F,
                                 minlength=128)  # fmt: skip
    covered = torch.stack([counts[b + 1 : b + 1 + WINDOW].sum() for b in range(128 - WINDOW)])
    base = int(torch.argmax(covered))  # the first of the best windows
    low = torch.empty(n, k // 4, dtype=torch.int32, device=device)
    codes = torch.empty(n, k // 8, dtype=torch.int32, device=device)
    rows, cols = [], []
    for first in range(0, n, CHUNK_ROWS):
        chunk = weight[first : first + CHUNK_ROWS]
        low_chunk, codes_chunk, exception = _code_rows(chunk, base)
        low[first : first + CHUNK_ROWS] = low_chunk
        codes[first : first + CHUNK_ROWS] = codes_chunk
        r, c = torch.nonzero(exception, as_tuple=True)
        rows.append(r + first)
        cols.append(c)
    rows, cols = torch.cat(rows), torch.cat(cols)
    block = rows // EXC_ROWS
    per_block = torch.bincount(block, minlength=n // EXC_ROWS)
    most = int(per_block.max()) if rows.numel() else 0
    if most > MAX_CAP:
        return None
    cap = triton.next_power_of_2(max(most, 1))
    # the slot of each exception within its block (listed in row-major order)
    start = torch.cumsum(per_block, 0) - per_block
    slot = torch.arange(rows.numel(), device=device) - start[block]
    exc_index = torch.full((n // EXC_ROWS, cap), -1, dtype=torch.int32, device=device)
    exc_value = torch.zeros((n // EXC_ROWS, cap), dtype=torch.bfloat16, device=device)
    exc_index[block, slot] = ((rows % EXC_ROWS) << 16 | cols).to(torch.int32)
    exc_value[block, slot] = weight[rows, cols]
    return CompactLinear(
        dense=weight,
        low=low,
        codes=codes.view(torch.int16),
        exc_index=exc_index,
        exc_value=exc_value,
        base=base,
        table=torch.tensor(_lut(base), dtype=torch.int32, device=device),
    )


def _high_bytes(rows: torch.Tensor) -> torch.Tensor:
    """The high bytes (sign, e7) of bf16 values, as int32."""
    return (rows.view(torch.int16).to(torch.int32) >> 8) & 0xFF


def _code_rows(rows: torch.Tensor, base: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """bf16 [R, K] -> (low words [R, K/4] int32, paired codes [R, K/8] int32, exceptions [R, K]
    bool) for the window above `base`."""
    n, k = rows.shape
    bits = rows.view(torch.int16).to(torch.int32) & 0xFFFF
    e7 = (bits >> 8) & 0x7F
    offset = e7 - base
    inside = (offset >= 1) & (offset <= WINDOW)
    exception = ~(inside | (e7 == 0))
    offset = torch.where(inside, offset, 0)
    sign = torch.where(exception, 0, bits >> 15)
    low = torch.where(exception, 0, bits & 0xFF)
    words = k // 4
    # byte j of word w: column j * words + w
    low_q = low.view(n, 4, words)
    low_words = low_q[:, 0] | low_q[:, 1] << 8 | low_q[:, 2] << 16 | low_q[:, 3] << 24
    # a pair of words (2i, 2i + 1) shares 32 bits of codes (`_pair_codes`)
    pairs = _pair_codes(offset.view(n, 4, words // 2, 2), sign.view(n, 4, words // 2, 2))
    return low_words, _as_int32(pairs), exception  # (low_words: int32 already, wrapped)


def _as_int32(words: torch.Tensor) -> torch.Tensor:
    """int64 holding 32-bit patterns -> int32 with the same bits."""
    return (words - ((words >> 31 & 1) << 32)).to(torch.int32)


def _pair_codes(offset: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """[N, 4, W/2, 2] offsets (0..7) and signs (0, 1) of value j of words (2i, 2i + 1) -> [N, W/2]
    32-bit codes (int64): word 2i's offsets in nibbles 0-3 (bits 4j..4j+2), word 2i+1's in
    nibbles 4-7; word 2i's signs at bits 8j + 7 and word 2i+1's at 8j + 3. Each sign sits where
    its word's high byte wants it (for word 2i + 1 after a shift by 4), so the kernel places all
    8 with two logic ops."""
    code = torch.zeros(offset.shape[0], offset.shape[2], dtype=torch.int64, device=offset.device)
    for j in range(4):
        code |= offset[:, j, :, 0].long() << (4 * j) | offset[:, j, :, 1].long() << (16 + 4 * j)
        code |= sign[:, j, :, 0].long() << (8 * j + 7) | sign[:, j, :, 1].long() << (8 * j + 3)
    return code


def decompress(c: CompactLinear) -> torch.Tensor:
    """The dense bf16 weight back from its compact parts (the format's reference: tests check
    it gives `c.dense` bit for bit)."""
    n, words = c.low.shape
    low = c.low.to(torch.int64) & 0xFFFFFFFF
    pair = (c.codes.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF)[..., None]
    lut = torch.tensor(_e7_by_offset(c.base), device=low.device)
    quarters = []
    for j in range(4):
        offset = torch.cat([pair >> (4 * j), pair >> (16 + 4 * j)], dim=-1) & 7
        sign = torch.cat([pair >> (8 * j + 7), pair >> (8 * j + 3)], dim=-1) & 1
        high = (sign << 7 | lut[offset]).reshape(n, words)
        quarters.append(high << 8 | (low >> (8 * j) & 0xFF))
    bits = torch.stack(quarters, dim=1).reshape(n, 4 * words)  # columns j * words + w
    dense = (bits - ((bits >> 15) << 16)).to(torch.int16).view(torch.bfloat16)
    entries = c.exc_index.to(torch.int64)
    block, slot = torch.nonzero(entries >= 0, as_tuple=True)
    entry = entries[block, slot]
    rows, cols = block * EXC_ROWS + (entry >> 16), entry & 0xFFFF
    dense[rows, cols] = c.exc_value[block, slot]
    return dense


_DECODE_ONE = """
    prmt.b32 p0, {low}, {high}, 0x5140;
    prmt.b32 p1, {low}, {high}, 0x7362;
    shl.b32 {v0}, p0, 16;
    and.b32 {v1}, p0, 0xFFFF0000;
    shl.b32 {v2}, p1, 16;
    and.b32 {v3}, p1, 0xFFFF0000;"""
_DECODE_WORDS = tl.constexpr(
    """{ .reg .b32 s, s1, e0, e1, c4, h0, h1, p0, p1;
    and.b32 s, $10, 0x77777777;
    shr.b32 s1, s, 16;
    prmt.b32 e0, $11, $13, s;
    prmt.b32 e1, $11, $13, s1;
    lop3.b32 h0, e0, $10, 0x80808080, 0xF8;
    shl.b32 c4, $10, 4;
    lop3.b32 h1, e1, c4, 0x80808080, 0xF8;"""
    + _DECODE_ONE.format(low="$8", high="h0", v0="$0", v1="$2", v2="$4", v3="$6")
    + _DECODE_ONE.format(low="$9", high="h1", v0="$1", v1="$3", v2="$5", v3="$7")
    + "}"
)
"""A pair of words -> their 4 values each as float32 bit patterns (pack=2: $8 $9 the words,
$10 their 32 bits of codes (`_pair_codes`), $11-$14 the e7 table). s holds the 8 offsets as
byte-permute selectors (the first word's in its low half, the second's after the shift), e0 e1
their e7 from the table; the signs already sit at bit 7 of each byte of the codes (the second
word's after a shift by 4), so one 3-input logic op each makes the high bytes h0 h1. Then
[low, high] byte pairs are the bf16 values, shifted into float32: 25 instructions for 8 values."""


@triton.jit
def _decode_word(low, codes, partner, lut_a, lut_b, base, kw, USE_ASM: tl.constexpr):
    """[R, C] int32 words and their int16 codes -> the 4 values of each word as float32 (value
    j is column j * W + w). USE_ASM: byte permutes (`_DECODE_WORDS`, on consecutive pairs of a
    thread's words); otherwise the same integers with plain tensor ops (the CPU interpreter),
    where `partner` holds the codes of the other word of each pair (word column kw ^ 1)."""
    if USE_ASM:
        v0, v1, v2, v3 = tl.inline_asm_elementwise(
            asm=_DECODE_WORDS,
            constraints="=r,=r,=r,=r,=r,=r,=r,=r,r,r,r,r,r,r,r",
            args=[low, codes, lut_a + low * 0, lut_b + low * 0],
            dtype=(tl.int32, tl.int32, tl.int32, tl.int32),
            is_pure=True,
            pack=2,
        )
    else:
        second = (kw % 2 == 1)[None, :]  # the pair's second word
        mine = codes.to(tl.int32) & 0xFFFF
        other = partner.to(tl.int32) & 0xFFFF
        pair = tl.where(second, other | (mine << 16), mine | (other << 16))
        v0 = _plain_value(low, pair, second, base, 0)
        v1 = _plain_value(low, pair, second, base, 1)
        v2 = _plain_value(low, pair, second, base, 2)
        v3 = _plain_value(low, pair, second, base, 3)
    return (v0.to(tl.float32, bitcast=True), v1.to(tl.float32, bitcast=True),
            v2.to(tl.float32, bitcast=True), v3.to(tl.float32, bitcast=True))  # fmt: skip


@triton.jit
def _plain_value(low, pair, second, base, j: tl.constexpr):
    """Value j of each word as a float32 bit pattern, with shifts and masks (`_pair_codes`)."""
    offset = tl.where(second, pair >> (16 + 4 * j), pair >> (4 * j)) & 7
    sign = tl.where(second, pair >> (8 * j + 3), pair >> (8 * j + 7)) & 1
    e7 = tl.where(offset == 0, 0, base + offset)
    high = (sign << 7) | e7
    return (high << 24) | (((low >> (8 * j)) & 0xFF) << 16)


@triton.jit
def _word_tiles(low_rows, code_rows, kw, W: tl.constexpr, BLOCK_W: tl.constexpr,
                USE_ASM: tl.constexpr):  # fmt: skip
    """The [BLOCK_N, BLOCK_W] words and codes at word columns kw (masked past W), and for the
    interpreter's decoding the codes of each word's partner in its pair."""
    if W % BLOCK_W == 0:
        low = tl.load(low_rows + kw[None, :])
        codes = tl.load(code_rows + kw[None, :])
    else:
        ok = (kw < W)[None, :]
        low = tl.load(low_rows + kw[None, :], mask=ok, other=0)
        codes = tl.load(code_rows + kw[None, :], mask=ok, other=0)
    partner = codes
    if not USE_ASM:
        partner = tl.load(code_rows + (kw ^ 1)[None, :], mask=(kw < W)[None, :], other=0)
    return low, codes, partner


@triton.jit
def _scales(norm_ptr, kw, W: tl.constexpr, BLOCK_W: tl.constexpr, NORM: tl.constexpr):
    """The RMSNorm scales of a step's four quarters of x (columns j * W + kw), or 1.0 without
    NORM. Weights too: a program requests its first step's before the PDL wait."""
    if NORM:
        return (scale_tile(norm_ptr, kw, W, BLOCK_W),
                scale_tile(norm_ptr + W, kw, W, BLOCK_W),
                scale_tile(norm_ptr + 2 * W, kw, W, BLOCK_W),
                scale_tile(norm_ptr + 3 * W, kw, W, BLOCK_W))  # fmt: skip
    else:
        return 1.0, 1.0, 1.0, 1.0


@triton.jit
def _x_quarter(x_row, scale, j: tl.constexpr, kw, inv_rms, W: tl.constexpr,
               BLOCK_W: tl.constexpr, NORM: tl.constexpr):  # fmt: skip
    """x at columns j * W + kw as float32 (normed by `scale` like rms_norm.py when NORM)."""
    return x_tile(x_row + j * W, scale, kw, inv_rms, W, BLOCK_W, NORM).to(tl.float32)


@triton.jit
def _step(acc, tiles, scales, x_row, kw, inv_rms, lut_a, lut_b, base, W: tl.constexpr,
          BLOCK_W: tl.constexpr, NORM: tl.constexpr, USE_ASM: tl.constexpr):  # fmt: skip
    """acc + the products of one step's words (`_word_tiles`) with x (normed by `scales`)."""
    low, codes, partner = tiles
    s0, s1, s2, s3 = scales
    v0, v1, v2, v3 = _decode_word(low, codes, partner, lut_a, lut_b, base, kw, USE_ASM)
    acc += v0 * _x_quarter(x_row, s0, 0, kw, inv_rms, W, BLOCK_W, NORM)[None, :]
    acc += v1 * _x_quarter(x_row, s1, 1, kw, inv_rms, W, BLOCK_W, NORM)[None, :]
    acc += v2 * _x_quarter(x_row, s2, 2, kw, inv_rms, W, BLOCK_W, NORM)[None, :]
    acc += v3 * _x_quarter(x_row, s3, 3, kw, inv_rms, W, BLOCK_W, NORM)[None, :]
    return acc


@triton.jit
def _compact_gemv_kernel(
    x_ptr,  # [T, K] bf16
    low_ptr,  # [N, K/4] int32
    codes_ptr,  # [N, K/4] int16
    exc_index_ptr,  # [N/8, CAP] int32
    exc_value_ptr,  # [N/8, CAP] bf16
    b_ptr,  # [N] or unused
    out_ptr,  # [T, N]
    norm_ptr,  # [K] float32 RMSNorm scale (NORM), or unused
    res_ptr,  # [T, N] residual, or unused
    eps,
    table_ptr,  # int32 [2]: e7 by offset 0..7, as bytes (`CompactLinear.table`)
    base,
    N,
    K: tl.constexpr,
    K_PAD: tl.constexpr,
    CAP: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    NORM: tl.constexpr,
    RESIDUAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_W: tl.constexpr,
    USE_ASM: tl.constexpr,
    PDL: tl.constexpr = False,
    PRE: tl.constexpr = 1,
):
    """gemv.py's `_gemv_kernel` (plain, NORM or RESIDUAL; PRE weight steps requested before the
    PDL wait) over a compact weight: BLOCK_W words (4 BLOCK_W values) of BLOCK_N rows a step."""
    W: tl.constexpr = K // 4
    # the table from memory, not as kernel arguments: ptxas would keep those in uniform
    # registers, which a byte permute cannot read, and copy them before every use
    lut_a = tl.load(table_ptr)
    lut_b = tl.load(table_ptr + 1)
    token = tl.program_id(1)
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    rows_safe = tl.where(row_ok, rows, 0)
    # offsets whose contiguity the compiler sees as 4: the int32 words and the int16 codes then
    # load in the same register layout (16 and 8 bytes a thread), so decoding needs no shuffle
    cols = (tl.arange(0, BLOCK_W) // 4) * 4 + tl.arange(0, BLOCK_W) % 4
    low_rows = low_ptr + rows_safe.to(tl.int64)[:, None] * W
    code_rows = codes_ptr + rows_safe.to(tl.int64)[:, None] * W
    x_row = x_ptr + token * K
    acc = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
    let_next_kernel_start(PDL)
    # weights first (no launch of the step writes them), as in gemv.py
    # (and the RMSNorm scales of those steps)
    tiles0 = _word_tiles(low_rows, code_rows, cols, W, BLOCK_W, USE_ASM)
    scales0 = _scales(norm_ptr, cols, W, BLOCK_W, NORM)
    if PRE > 1 and BLOCK_W < W:
        tiles1 = _word_tiles(low_rows, code_rows, BLOCK_W + cols, W, BLOCK_W, USE_ASM)
        scales1 = _scales(norm_ptr, BLOCK_W + cols, W, BLOCK_W, NORM)
    if PRE > 2 and 2 * BLOCK_W < W:
        tiles2 = _word_tiles(low_rows, code_rows, 2 * BLOCK_W + cols, W, BLOCK_W, USE_ASM)
        scales2 = _scales(norm_ptr, 2 * BLOCK_W + cols, W, BLOCK_W, NORM)
    if PRE > 3 and 3 * BLOCK_W < W:
        tiles3 = _word_tiles(low_rows, code_rows, 3 * BLOCK_W + cols, W, BLOCK_W, USE_ASM)
        scales3 = _scales(norm_ptr, 3 * BLOCK_W + cols, W, BLOCK_W, NORM)
    # the exceptions of this program's rows (LISTS lists of CAP, from block first_list on),
    # their columns' norm scales, and the bias: weights too
    LISTS: tl.constexpr = (BLOCK_N + 7) // 8
    slots = tl.arange(0, LISTS * CAP)
    first_list = tl.program_id(0) * BLOCK_N // 8
    listed = first_list + slots // CAP < N // 8  # the last program's rows may end early
    entry = tl.load(exc_index_ptr + first_list * CAP + slots, mask=listed, other=-1)
    exc_w = tl.load(exc_value_ptr + first_list * CAP + slots, mask=listed, other=0.0)
    exc_w = exc_w.to(tl.float32)
    live = entry >= 0
    exc_col = tl.where(live, entry & 0xFFFF, 0)
    if NORM:
        exc_scale = tl.load(norm_ptr + exc_col)
    if HAS_BIAS:
        bias = tl.load(b_ptr + rows_safe).to(tl.float32)
    wait_for_previous_kernel(PDL)
    if RESIDUAL:
        residual = tl.load(res_ptr + token * N + rows_safe).to(tl.float32)
    inv_rms = 1.0
    if NORM:  # the same single float32 sum over the padded row as rms_norm.py
        all_k = tl.arange(0, K_PAD)
        row = tl.load(x_row + all_k, mask=all_k < K, other=0.0).to(tl.float32)
        inv_rms = tl.rsqrt(tl.sum(row * row, axis=0) / K + eps)
    # the exceptions' x, requested with the first step's
    exc_x = tl.load(x_row + exc_col)
    if NORM:
        exc_x = (exc_x.to(tl.float32) * inv_rms * exc_scale).to(x_row.dtype.element_ty)
    acc = _step(acc, tiles0, scales0, x_row, cols, inv_rms, lut_a, lut_b, base, W, BLOCK_W,
                NORM, USE_ASM)  # fmt: skip
    if PRE > 1 and BLOCK_W < W:
        acc = _step(acc, tiles1, scales1, x_row, BLOCK_W + cols, inv_rms, lut_a, lut_b, base,
                    W, BLOCK_W, NORM, USE_ASM)  # fmt: skip
    if PRE > 2 and 2 * BLOCK_W < W:
        acc = _step(acc, tiles2, scales2, x_row, 2 * BLOCK_W + cols, inv_rms, lut_a, lut_b,
                    base, W, BLOCK_W, NORM, USE_ASM)  # fmt: skip
    if PRE > 3 and 3 * BLOCK_W < W:
        acc = _step(acc, tiles3, scales3, x_row, 3 * BLOCK_W + cols, inv_rms, lut_a, lut_b,
                    base, W, BLOCK_W, NORM, USE_ASM)  # fmt: skip
    for w0 in range(PRE * BLOCK_W, W, BLOCK_W):
        kw = w0 + cols
        tiles = _word_tiles(low_rows, code_rows, kw, W, BLOCK_W, USE_ASM)
        scales = _scales(norm_ptr, kw, W, BLOCK_W, NORM)
        acc = _step(acc, tiles, scales, x_row, kw, inv_rms, lut_a, lut_b, base, W, BLOCK_W,
                    NORM, USE_ASM)  # fmt: skip
    y = tl.sum(acc, axis=1)  # [BLOCK_N]
    # the exceptions' exact products, each added to its row
    exc_row = (first_list + slots // CAP) * 8 + (entry >> 16) - tl.program_id(0) * BLOCK_N
    prod = tl.where(live, exc_w * exc_x.to(tl.float32), 0.0)
    hit = exc_row[None, :] == tl.arange(0, BLOCK_N)[:, None]
    y += tl.sum(tl.where(hit, prod[None, :], 0.0), axis=1)
    if HAS_BIAS:
        y += bias
    if RESIDUAL:  # round the product to the output dtype first, as linear-then-add does
        y = y.to(out_ptr.dtype.element_ty).to(tl.float32) + residual
    tl.store(out_ptr + token * N + rows, y.to(out_ptr.dtype.element_ty), mask=row_ok)


DECODE_BLOCKS = (4, 256, 2, 3)
"""(rows, words, warps, stages) of a GPU program: 4 rows x 1,024 columns a step, each warp its
own 512 columns, so x is read once a program and never shuffled between warps. On an H100
(2026-11-23, `benchmarks/compact_gemv.py --sweep`: 24 layers' qkv and out projections in a
graph) 16.5 us a layer against 20.1 for the bf16 GEMVs; (8, 256, 2, 2) 17.9,
(4, 512, 4, 3) 21.7, (2, 256, 2, 3) 22.2, (8, 128, 4, 3) 20.1."""
PRE_STEPS = {"norm": 1, "residual": 4}
"""Steps a program requests before its PDL wait (with their RMSNorm scales): the qkv projection
(`norm`, 3 steps of 256 words) 1, the out projection (4 steps) all 4, as gemv.py's
`_PRE_TILES`. On an H100 (2026-11-23, the 24-layer chain of `benchmarks/compact_gemv.py`):
16.5 us a layer with the qkv projection's first step and its scales before the wait, 19.6 with
two steps (205 registers: 4 programs an SM instead of 6), 19.0 with three; 17.8 before the
scales moved there."""


def compact_gemv(
    x: torch.Tensor,
    weight: CompactLinear,
    bias: torch.Tensor | None,
    *,
    norm: tuple[torch.Tensor, float] | None = None,
    residual: torch.Tensor | None = None,
    pdl: bool = False,
    out_dtype: torch.dtype | None = None,
    blocks: tuple[int, int, int, int] | None = None,
    pre: int | None = None,
) -> torch.Tensor:
    """x [T, K] bf16 (T small) @ dense.T (+ bias), rms_norm(x) first with `norm`, + residual
    after (rounded to bf16 first) with `residual`: gemv.py's decode entries on a compact weight.
    pdl: launched as a programmatic dependent (CUDA, Hopper). `blocks` and `pre` override
    DECODE_BLOCKS and PRE_STEPS (benchmarks)."""
    n, k = weight.shape
    n_tokens = x.shape[0]
    if x.dim() != 2 or x.shape[1] != k or x.dtype != torch.bfloat16 or not x.is_contiguous():
        raise ValueError(f"compact_gemv: x {tuple(x.shape)} does not fit {tuple(weight.shape)}")
    out = torch.empty(n_tokens, n, dtype=out_dtype or x.dtype, device=x.device)
    norm_scale, eps = norm if norm is not None else (x, 0.0)
    if x.is_cuda:
        block_n, block_w, warps, stages = blocks or DECODE_BLOCKS
        launch = dict(num_warps=warps, num_stages=stages, launch_pdl=pdl)
    else:  # the interpreter: few, large programs
        block_n, block_w, launch = 64, min(32, triton.next_power_of_2(k // 4)), {}
        while n % block_n:
            block_n //= 2
    if pre is None:
        pre = PRE_STEPS["residual" if residual is not None else "norm"] if pdl else 1
    _compact_gemv_kernel[(triton.cdiv(n, block_n), n_tokens)](
        x, weight.low, weight.codes, weight.exc_index, weight.exc_value,
        bias if bias is not None else x, out, norm_scale, residual if residual is not None else out,
        float(eps), weight.table, weight.base, n, K=k, K_PAD=triton.next_power_of_2(k),
        CAP=weight.exc_index.shape[1], HAS_BIAS=bias is not None, NORM=norm is not None,
        RESIDUAL=residual is not None, BLOCK_N=block_n, BLOCK_W=block_w, USE_ASM=x.is_cuda,
        PDL=pdl, PRE=pre, **launch,
    )  # fmt: skip
    return out
