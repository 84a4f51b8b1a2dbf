"""Greedy decoding without streaming the whole unembedding: an int8 screen with proven error
bounds, then the exact logits of the few rows the screen cannot rule out.

The unembedding is a fifth of a 20b decode step (1.16 GB of bf16 rows read at ~3 TB/s for one
argmax). Greedy decoding needs only the index of the largest logit, and almost every row is far
from it. So each row v also has int8 codes q_v with one float32 scale s_v (`build_screen`: 0.58
GB at 20b size), and the normed row x is cut into groups of 32 with int8 codes x^ (two a value,
14 bits: `_FINE_X`) and a float32 step t each (r = x - t x^ is what that rounding leaves). The
screen's proxy of a logit is

    proxy_v = s_v * sum_g t_g * (q_v . x^)_g        (int8 dot products: dp4a, exact in int32)

and the logit that gemv.py's unembedding computes (logit_v) lies within

    |logit_v - proxy_v| <= a_v * ||x||_2 + b_v * ||r||_2

by Cauchy-Schwarz on the two quantisation errors (W_v - s_v q_v against x, s_v q_v against r),
with a_v, b_v also covering the worst-case float32 rounding of both computations (gamma_n of
Higham's Accuracy and Stability, 3.1), a relative margin, rounded up. Three launches:

1. `_final_norm_kernel`: the final RMSNorm of the last layer's row (rms_norm.py's own code, so
   the same bf16 row), its int8 groups, ||x|| and ||r|| (rounded up).
2. `_screen_kernel` streams the codes, stores every row's upper end proxy + bound and takes the
   largest lower end M (an atomic max). The row holding the largest logit has an upper end >= M
   (its logit is at least every lower end), so only rows whose upper end reaches M can win.
3. `_select_kernel` computes those rows' logits with gemv.py's own tile arithmetic (the same bf16
   products in the same [8, 512] tiles summed in the same order: the same float32 values) and
   reduces them as argmax.py does: the first index of the largest value, NaN the largest.

So the id is the one the full unembedding + argmax gives, in every case: ties, NaN and inf
included (a non-finite row or input makes its rows candidates). With random 20b weights about 60
of 201,088 rows pass the screen (a trained model's more peaked logits should leave fewer).
Sampling at a temperature needs every probability and keeps the full unembedding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.argmax import publish_winner, winner_outputs
from gptoss_chat.kernels.common import (
    arrival_counters,
    let_next_kernel_start,
    pdl_enabled,
    wait_for_previous_kernel,
)
from gptoss_chat.kernels.gemv import _H100_BEST
from gptoss_chat.kernels.mxfp4_int8 import _round
from gptoss_chat.kernels.rms_norm import norm_warps, normed_row, rms_norm_ref

_ROUND_UP = 1.0 + 2.0**-20
"""Relative margin on each bound: covers the float32 roundings of the bound's own arithmetic
(each at most 2^-24 relative) many times over."""

_GEMV_BLOCK_N = _H100_BEST[0].kwargs["BLOCK_N"]
_GEMV_BLOCK_K = _H100_BEST[0].kwargs["BLOCK_K"]
_GEMV_WARPS = _H100_BEST[0].num_warps
"""gemv.py's decode blocks on a GPU: the exact rows are computed in the same tiles so that their
float32 sums are the unembedding's."""

_SCREEN_BLOCK_N, _SCREEN_GROUPS, _SCREEN_WARPS, _SCREEN_STAGES = 4, 64, 2, 3
"""Rows and groups of 32 codes a screen step, on an H100 (`benchmarks/unembedding_screen.py`)."""
_FINE_X = True
"""x cut into two int8 codes a value (14 bits), so that its rounding barely widens the bounds:
63 rows of 201,088 reach the select with random 20b weights, against 553 with one code (screen
197 against 188 us, the whole 201 against 200 us on an H100: the narrower select wins the
screen's time back and leaves room for flatter logits)."""
_SELECT_PDL = True
"""The select launch comes up while the screen's last programs run (PDL) and waits for them."""
_SELECT_CHUNK = 512  # rows a select program scans: ~400 programs over gpt-oss's vocabulary


@dataclass(frozen=True)
class UnembeddingScreen:
    """Int8 codes of the unembedding and the numbers that bound their error (module docstring),
    built once at load (`build_screen`), and the kernels' workspace."""

    codes: torch.Tensor  # [V, K] int8: q_v
    scale: torch.Tensor  # [V] float32: s_v
    bound_x: torch.Tensor  # [V] float32: a_v (+inf for a row holding inf or NaN)
    bound_r: torch.Tensor  # [V] float32: b_v
    upper: torch.Tensor  # [V] float32 workspace: each row's upper end
    lower_max: torch.Tensor  # [1] float32: the largest lower end, -inf between launches
    normed: torch.Tensor  # [1, K] bf16 workspace: the normed row x
    words: torch.Tensor  # [K / 4] int32 workspace: x^, four int8 a word
    steps: torch.Tensor  # [K / 32] float32 workspace: t
    norms: torch.Tensor  # [2] float32 workspace: ||x|| and ||r||, rounded up

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in vars(self).values())


def summation_gamma(terms: int) -> float:
    """gamma_n = n u / (1 - n u) for float32 (u = 2^-24): the relative bound on the rounding of a
    sum of n products, in any order (Higham, Accuracy and Stability, section 3.1)."""
    nu = terms * 2.0**-24
    return nu / (1.0 - nu)


def build_screen(weight: torch.Tensor, rows_per_chunk: int = 2048) -> UnembeddingScreen:
    """The screen of a bf16 unembedding [V, K] (K a multiple of 32), built on its device in
    chunks of rows (float64 arithmetic: the error norms are exact to ~1e-16, far inside
    `_ROUND_UP`; a chunk's float64 temporaries stay near 0.2 GB at gpt-oss's width)."""
    if weight.dim() != 2 or weight.dtype != torch.bfloat16 or not weight.is_contiguous():
        raise ValueError("build_screen: a contiguous bf16 [V, K] unembedding")
    n_rows, k = weight.shape
    if k % 32:
        raise ValueError(f"build_screen: {k} columns, not a multiple of 32")
    device = weight.device
    codes = torch.empty(n_rows, k, dtype=torch.int8, device=device)
    scale = torch.empty(n_rows, dtype=torch.float32, device=device)
    bound_x = torch.empty(n_rows, dtype=torch.float32, device=device)
    bound_r = torch.empty(n_rows, dtype=torch.float32, device=device)
    # the proxy: K / 32 products t_g D_g summed, times s_v; the logit: K products summed
    gamma = summation_gamma(k + 2)
    for first in range(0, n_rows, rows_per_chunk):
        rows = slice(first, first + rows_per_chunk)
        w = weight[rows].double()
        s = (w.abs().amax(dim=1) / 127).float()  # float32, as the kernel multiplies by it
        s = torch.where(s > 0, s, torch.ones_like(s))  # an all-zero row: codes 0, error 0
        q = torch.round(w / s.double()[:, None]).clamp_(-127, 127)
        coded = s.double() * torch.linalg.vector_norm(q, dim=1)  # ||s_v q_v||
        error = torch.linalg.vector_norm(w - s.double()[:, None] * q, dim=1)
        a = (error + gamma * (coded + torch.linalg.vector_norm(w, dim=1))) * _ROUND_UP
        b = coded * (1 + gamma) * _ROUND_UP
        finite = torch.isfinite(w).all(dim=1)
        a = torch.where(finite, a, torch.full_like(a, math.inf))
        codes[rows] = torch.where(finite[:, None], q, torch.zeros_like(q)).to(torch.int8)
        scale[rows] = s
        bound_x[rows] = _rounded_up(a)
        bound_r[rows] = _rounded_up(b)
    upper = torch.empty(n_rows, dtype=torch.float32, device=device)
    lower_max = torch.full((1,), -math.inf, dtype=torch.float32, device=device)
    normed = torch.zeros(1, k, dtype=torch.bfloat16, device=device)
    words = torch.zeros(2 * k // 4, dtype=torch.int32, device=device)
    steps = torch.zeros(k // 32, dtype=torch.float32, device=device)
    norms = torch.zeros(2, dtype=torch.float32, device=device)
    return UnembeddingScreen(codes, scale, bound_x, bound_r, upper, lower_max, normed, words,
                             steps, norms)  # fmt: skip


def _rounded_up(values: torch.Tensor) -> torch.Tensor:
    """float64 -> the float32 values at or above them."""
    single = values.float()
    up = torch.nextafter(single, torch.full_like(single, math.inf))
    return torch.where(single.double() < values, up, single)


@triton.jit
def _final_norm_kernel(last_ptr, scale_ptr, normed_ptr, words_ptr, steps_ptr, norms_ptr, eps,
                       K: tl.constexpr, BLOCK: tl.constexpr, FINE: tl.constexpr,
                       PDL: tl.constexpr = False):  # fmt: skip
    """The final RMSNorm of the last layer's row as rms_norm.py computes it, the normed row's
    int8 groups, and ||x|| and ||r|| rounded up (module docstring)."""
    let_next_kernel_start(PDL)  # the screen's programs come up and request their first codes
    wait_for_previous_kernel(PDL)
    cols = tl.arange(0, BLOCK)
    normed = normed_row(last_ptr, scale_ptr, eps, normed_ptr.dtype.element_ty, K, BLOCK)
    tl.store(normed_ptr + cols, normed, mask=cols < K)
    x = normed.to(tl.float32)  # zero past K
    # ||x||: K exact squares summed in float32, at most gamma_K / 2 (< 2^-12 for K <= 8k)
    # relative below the true norm
    norm = tl.sqrt(tl.sum(x * x, axis=0)) * 1.000244140625
    grouped = tl.reshape(x, [BLOCK // 32, 32])
    peak = tl.max(tl.abs(grouped), axis=1)
    step = tl.where(peak > 0, peak / 127.0, 1.0)
    coded = tl.minimum(tl.maximum(_round(grouped / step[:, None]), -127.0), 127.0)
    rest = grouped - coded * step[:, None]
    if FINE:  # a second int8 code of what is left, in steps 254 times finer
        fine = tl.minimum(tl.maximum(_round(rest * (254.0 / step[:, None])), -127.0), 127.0)
        step = step / 254.0
        rest = grouped - (coded * 254.0 + fine) * step[:, None]
    # r in float32 is within 2^-23 (|x| + |r|) of the exact x - t x^ (one product, one
    # difference rounded), hence the relative and the absolute margins
    rest_norm = tl.sqrt(tl.sum(tl.sum(rest * rest, axis=1), axis=0))
    rest_norm = rest_norm * 1.000244140625 + norm * 9.5367431640625e-07
    groups = tl.arange(0, BLOCK // 32)
    tl.store(steps_ptr + groups, step, mask=groups < K // 32)
    at = tl.arange(0, BLOCK // 4)
    tl.store(words_ptr + at, _packed(coded, BLOCK), mask=at < K // 4)
    if FINE:
        tl.store(words_ptr + K // 4 + at, _packed(fine, BLOCK), mask=at < K // 4)
    tl.store(norms_ptr, norm)
    tl.store(norms_ptr + 1, rest_norm)


@triton.jit
def _packed(coded, BLOCK: tl.constexpr):
    """float32 int8 values [BLOCK // 32, 32] -> int32 words [BLOCK // 4], four bytes each."""
    quads = tl.reshape(coded.to(tl.int32) & 255, [BLOCK // 4, 4])
    return tl.sum(quads << (tl.arange(0, 4) * 8)[None, :], axis=1)  # disjoint bytes: sum is OR


@triton.jit
def _dp4a(a, b, USE_ASM: tl.constexpr):
    """The sum of the four int8 products of two int32 words (PTX dp4a; the interpreter, which
    runs no PTX, computes it with shifts)."""
    if USE_ASM:
        return tl.inline_asm_elementwise("dp4a.s32.s32 $0, $1, $2, 0;", "=r,r,r", [a, b],
                                         dtype=tl.int32, is_pure=True, pack=1)  # fmt: skip
    else:
        total = ((a << 24) >> 24) * ((b << 24) >> 24)
        total += ((a << 16) >> 24) * ((b << 16) >> 24)
        total += ((a << 8) >> 24) * ((b << 8) >> 24)
        return total + (a >> 24) * (b >> 24)


@triton.jit
def _group_sums(codes, words, fine_words, steps, BLOCK_N: tl.constexpr, GROUPS: tl.constexpr,
                USE_ASM: tl.constexpr, FINE: tl.constexpr):  # fmt: skip
    """t_g * (q . x^)_g [BLOCK_N, GROUPS] of a step: codes [BLOCK_N, GROUPS, 8] int32 words,
    words (and fine_words) [GROUPS, 8] of x^, steps [GROUPS] float32."""
    x_words = tl.broadcast_to(words[None, :, :], [BLOCK_N, GROUPS, 8])
    dots = tl.sum(_dp4a(codes, x_words, USE_ASM), axis=2)  # exact: |dot| <= 32 * 127^2
    if FINE:
        fine = tl.broadcast_to(fine_words[None, :, :], [BLOCK_N, GROUPS, 8])
        dots = dots * 254 + tl.sum(_dp4a(codes, fine, USE_ASM), axis=2)
    return dots.to(tl.float32) * steps[None, :]


@triton.jit
def _screen_kernel(
    words_ptr,  # [K / 4] int32: x^
    steps_ptr,  # [K / 32] float32: t
    norms_ptr,  # [2] float32: ||x||, ||r||
    codes_ptr,  # [V, K / 4] int32: the codes, four a word
    scale_ptr,  # [V] float32
    bound_x_ptr,  # [V] float32
    bound_r_ptr,  # [V] float32
    upper_ptr,  # [V] float32, out
    lower_max_ptr,  # [1] float32, -inf on entry: atomic max of the lower ends
    V,
    K: tl.constexpr,
    BLOCK_N: tl.constexpr,
    GROUPS: tl.constexpr,  # groups of 32 codes (8 words) a step
    USE_ASM: tl.constexpr,
    FINE: tl.constexpr,
    PDL: tl.constexpr = False,
    EARLY_SELECT: tl.constexpr = False,  # the select launch comes up during the last wave
):
    W: tl.constexpr = K // 4  # words a row
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < V
    rows_safe = tl.where(row_ok, rows, 0)
    at = tl.arange(0, GROUPS)[:, None] * 8 + tl.arange(0, 8)[None, :]  # [GROUPS, 8] words
    groups = tl.arange(0, GROUPS)
    code_rows = codes_ptr + rows_safe.to(tl.int64)[:, None, None] * W
    # weights first (no launch of the step writes them), as the GEMVs do
    first = tl.load(code_rows + at[None, :, :], mask=(at < W)[None, :, :], other=0)
    scale = tl.load(scale_ptr + rows_safe)
    bound_x = tl.load(bound_x_ptr + rows_safe)
    bound_r = tl.load(bound_r_ptr + rows_safe)
    wait_for_previous_kernel(PDL)
    words = tl.load(words_ptr + at, mask=at < W, other=0)
    fine = words
    if FINE:
        fine = tl.load(words_ptr + W + at, mask=at < W, other=0)
    steps = tl.load(steps_ptr + groups, mask=groups < W // 8, other=0.0)
    acc = _group_sums(first, words, fine, steps, BLOCK_N, GROUPS, USE_ASM, FINE)
    for w0 in range(GROUPS * 8, W, GROUPS * 8):
        step_at = w0 + at
        codes = tl.load(code_rows + step_at[None, :, :], mask=(step_at < W)[None, :, :], other=0)
        words = tl.load(words_ptr + step_at, mask=step_at < W, other=0)
        if FINE:
            fine = tl.load(words_ptr + W + step_at, mask=step_at < W, other=0)
        g = w0 // 8 + groups
        steps = tl.load(steps_ptr + g, mask=g < W // 8, other=0.0)
        acc += _group_sums(codes, words, fine, steps, BLOCK_N, GROUPS, USE_ASM, FINE)
    proxy = tl.sum(acc, axis=1) * scale
    norm = tl.load(norms_ptr)
    rest_norm = tl.load(norms_ptr + 1)
    # the bound, with room for the roundings of this line and the two ends (2^-20 relative)
    slack = bound_x * norm + bound_r * rest_norm + tl.abs(proxy) * 9.5367431640625e-07
    slack = slack * 1.00000095367431640625
    upper = proxy + slack
    lower = proxy - slack
    # inf or NaN in x or the row: the ends are +-inf (an infinite bound) or NaN, and a NaN end
    # becomes infinite here, so such a row always stays a candidate
    broken = (upper != upper) | (lower != lower)
    upper = tl.where(broken, float("inf"), upper)
    lower = tl.where(broken | (rows >= V), float("-inf"), lower)
    tl.store(upper_ptr + rows, upper, mask=row_ok)
    tl.atomic_max(lower_max_ptr, tl.max(lower, axis=0), sem="relaxed", scope="gpu")
    let_next_kernel_start(EARLY_SELECT)


@triton.jit
def _exact_logits(w_ptr, x_ptr, rows, K: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_K: tl.constexpr):  # fmt: skip
    """The unembedding's float32 logits of `rows` [BLOCK_N], computed as gemv.py's `_gemv_kernel`
    computes a tile of BLOCK_N rows: bf16 products summed per column over the K steps, then
    across the tile's columns (each row's sum is independent of the others in its tile)."""
    cols = tl.arange(0, BLOCK_K)
    w_rows = w_ptr + rows.to(tl.int64)[:, None] * K
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    for k0 in tl.static_range(0, K, BLOCK_K):  # unrolled: every step's loads issued together
        ks = k0 + cols
        if K % BLOCK_K == 0:
            w = tl.load(w_rows + ks[None, :])
            x = tl.load(x_ptr + ks)
        else:
            w = tl.load(w_rows + ks[None, :], mask=(ks < K)[None, :], other=0.0)
            x = tl.load(x_ptr + ks, mask=ks < K, other=0.0)
        acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
    return tl.sum(acc, axis=1)


@triton.jit
def _select_kernel(
    x_ptr,  # [K] bf16
    w_ptr,  # [V, K] bf16: the unembedding
    upper_ptr,  # [V] float32: the screen's upper ends
    lower_max_ptr,  # [1] float32: the screen's largest lower end; reset to -inf here
    value_ptr,  # [PROGRAMS] float32 workspace
    index_ptr,  # [PROGRAMS] int32 workspace
    counter_ptr,  # [1] int32, zero between launches
    out_ptr,  # [1] int64: the id
    V,
    K: tl.constexpr,
    PROGRAMS: tl.constexpr,
    PROGRAMS_PAD: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    table_ptr=None,
    row_ptr=None,
    H: tl.constexpr = 0,
    H_PAD: tl.constexpr = 1,
    host_ptr=None,
    HOST: tl.constexpr = False,
    PDL: tl.constexpr = False,
):
    """The exact logits of the rows whose upper end reaches the largest lower end, reduced to
    the winner by argmax.py's `publish_winner` (which also writes the id's outputs)."""
    pid = tl.program_id(0)
    rows = pid * CHUNK + tl.arange(0, CHUNK)
    wait_for_previous_kernel(PDL)
    upper = tl.load(upper_ptr + rows, mask=rows < V, other=float("-inf"))
    threshold = tl.load(lower_max_ptr, cache_modifier=".cg")
    candidate = (upper >= threshold) & (rows < V)
    count = tl.sum(candidate.to(tl.int32), axis=0)
    rank = tl.cumsum(candidate.to(tl.int32), axis=0) - 1  # a candidate's place in row order
    slot = tl.arange(0, BLOCK_N)
    best_value = float("-inf")
    best_index = V  # none yet
    for first in range(0, count, BLOCK_N):  # BLOCK_N candidates a tile, in row order
        wanted = candidate[None, :] & (rank[None, :] == first + slot[:, None])  # [BLOCK_N, CHUNK]
        batch = tl.max(tl.where(wanted, rows[None, :], -1), axis=1)  # [BLOCK_N], -1: none
        value = _exact_logits(w_ptr, x_ptr, tl.maximum(batch, 0), K, BLOCK_N, BLOCK_K)
        value = tl.where(value != value, float("inf"), value)  # NaN is the largest, as argmax.py
        value = tl.where(batch >= 0, value, float("-inf"))
        top = tl.max(value, axis=0)
        row = tl.min(tl.where((value == top) & (batch >= 0), batch, V), axis=0)
        take = (top > best_value) | (best_index == V)  # a tie keeps the earlier (lower) row
        best_index = tl.where(take, row, best_index)
        best_value = tl.where(take, top, best_value)
    last = publish_winner(best_value, best_index, value_ptr, index_ptr, counter_ptr, out_ptr, V,
                          PROGRAMS, PROGRAMS_PAD, table_ptr, row_ptr, H, H_PAD, host_ptr,
                          HOST)  # fmt: skip
    if last:
        tl.store(lower_max_ptr, float("-inf"))  # for the next screen


def screened_argmax_into(
    last: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weight: torch.Tensor,
    screen: UnembeddingScreen,
    out: torch.Tensor,
    table: torch.Tensor | None = None,
    row_out: torch.Tensor | None = None,
    host: torch.Tensor | None = None,
) -> None:
    """out[0] = argmax(unembedding(rms_norm(last, norm_scale, eps), weight)[0]) for the last
    layer's row [1, K] bf16, read through `screen` (module docstring); with `table` also
    table[id] into `row_out`, with `host` also the id into that pinned int64 [1]. Three
    launches (the norm, the screen, the select), no host sync: graph-safe."""
    k = weight.shape[1]
    if last.shape != (1, k) or last.dtype != torch.bfloat16 or not last.is_contiguous():
        raise ValueError(f"screened_argmax_into: a bf16 row [1, {k}], not {tuple(last.shape)}")
    if screen.codes.shape != weight.shape or norm_scale.shape != (k,):
        raise ValueError("screened_argmax_into: the screen or the norm is for another model")
    block = triton.next_power_of_2(k)
    pdl = pdl_enabled(last)
    _final_norm_kernel[(1,)](
        last, norm_scale.contiguous(), screen.normed, screen.words, screen.steps, screen.norms,
        float(eps), K=k, BLOCK=block, FINE=_FINE_X, PDL=pdl, launch_pdl=pdl,
        **(dict(num_warps=norm_warps(block)) if last.is_cuda else {}),
    )  # fmt: skip
    _launch_screen(screen)
    _launch_select(weight, screen, out, table, row_out, host)


def _launch_screen(screen: UnembeddingScreen) -> None:
    n_rows, k = screen.codes.shape
    cuda = screen.codes.is_cuda
    if cuda:
        block_n, groups = _SCREEN_BLOCK_N, _SCREEN_GROUPS
        launch = dict(num_warps=_SCREEN_WARPS, num_stages=_SCREEN_STAGES)
    else:  # the interpreter runs programs one by one: few, large programs
        block_n, groups, launch = 256, 16, {}
    pdl = pdl_enabled(screen.codes)
    _screen_kernel[(triton.cdiv(n_rows, block_n),)](
        screen.words, screen.steps, screen.norms, screen.codes.view(torch.int32), screen.scale,
        screen.bound_x, screen.bound_r, screen.upper, screen.lower_max, n_rows, K=k,
        BLOCK_N=block_n, GROUPS=groups, USE_ASM=cuda, FINE=_FINE_X, PDL=pdl,
        EARLY_SELECT=pdl and _SELECT_PDL, launch_pdl=pdl, **launch,
    )  # fmt: skip


def _launch_select(
    weight: torch.Tensor,
    screen: UnembeddingScreen,
    out: torch.Tensor,
    table: torch.Tensor | None,
    row_out: torch.Tensor | None,
    host: torch.Tensor | None,
) -> None:
    n_rows, k = weight.shape
    x = screen.normed
    programs = triton.cdiv(n_rows, _SELECT_CHUNK)
    values = torch.empty(programs, dtype=torch.float32, device=x.device)
    indices = torch.empty(programs, dtype=torch.int32, device=x.device)
    outputs, direct = winner_outputs(x.device, out, table, row_out, host)
    counter = arrival_counters(x.device, screen.upper.data_ptr(), 1, "screened_argmax_into")
    pdl = pdl_enabled(x) and _SELECT_PDL
    _select_kernel[(programs,)](
        x, weight, screen.upper, screen.lower_max, values, indices, counter, out, n_rows, K=k,
        PROGRAMS=programs, PROGRAMS_PAD=triton.next_power_of_2(programs), CHUNK=_SELECT_CHUNK,
        BLOCK_N=_GEMV_BLOCK_N, BLOCK_K=_GEMV_BLOCK_K, PDL=pdl, launch_pdl=pdl,
        **outputs, **(dict(num_warps=_GEMV_WARPS) if x.is_cuda else {}),
    )  # fmt: skip
    if host is not None and not direct:
        host.copy_(out.reshape(host.shape), non_blocking=True)


def screened_argmax_ref(
    last: torch.Tensor, norm_scale: torch.Tensor, eps: float, weight: torch.Tensor
) -> torch.Tensor:
    """The reference: argmax of the full float32 logits of the normed row (0-dim int64)."""
    x = rms_norm_ref(last, norm_scale, eps)
    return torch.argmax(x.float() @ weight.float().T, dim=-1)[0]
