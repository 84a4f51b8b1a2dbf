"""Decode attention in one launch: RoPE of q and k, the KV write, split-K attention, the combine.

At T == 1 this replaces three launches per layer (`rope_cache`, then attention_decode.py's split
partials and their combine). Program (kv head h, split s) of a (Hkv, SPLITS) grid:

1. before waiting for the qkv projection (PDL), loads its first K/V tile from the cache (at
   1k context that is all of a split's keys; a sliding layer's whole window is one tile);
2. reads the G = Hq/Hkv query heads of h straight from qkv and rotates them itself, rounding
   exactly as rope_cache.py does (the same `_bf16` steps, no FMA contraction on CUDA);
3. scores the cached keys of split s (flash-decoding, as in attention_decode.py) and keeps a
   partial (max, sum, weighted values) for each of the G heads;
4. SPLITS == 1 (sliding layers): merges its partial with the sink and the current token at once.
   Otherwise only the splits that hold keys take part (`live_splits`: 16 of 64 at a 1k
   context; the others return at once). Each writes its partial to scratch and takes a ticket
   from the kv head's arrival counter; the program that draws the last ticket merges the live
   partials in a fixed order (chunks of consecutive splits, in index order, each summed by the
   same reduction tree: the result does not depend on which program finished last), adds the
   sink and the current token, writes the output and resets the counter for the next call. No
   second launch. With more than `_MERGE_GROUP` live splits (a long context) the merge has two
   levels: the last program of each group of `_MERGE_GROUP` consecutive splits merges the
   group into one partial while other splits still stream, and the last group's merger merges
   those few (each group in split order, the groups in group order: still a fixed order).

Why this is race-free: the splits cover only the keys already in the cache, positions
max(offset - W + 1, 0) .. offset - 1 (all of 0 .. offset - 1 for full layers). The current
token's key and value never go through the cache inside this launch: every program that needs
them (split 0 writes them, the merging program scores them) rotates k and reads v from qkv. The
one slot written, offset % S, holds position offset - S, which no split reads: full layers have
S > offset, sliding rings have S >= W (or S > offset while the context is shorter than the
window), so offset - S < offset - W + 1. The arrival counters are persistent zeroed int32 tensors,
one set per KV buffer (per layer), so that neighbouring launches overlapped by PDL never share
one, and a CUDA graph replays with them zeroed. The offset and the keys of earlier positions are
read before the PDL wait: earlier forwards wrote them, and each forward ends with plain (non-PDL)
launches (the offset's advance); only qkv comes from the launch just before.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.attention_decode import (
    attend_tile,
    decode_splits,
    live_splits,
    split_range,
)
from gptoss_chat.kernels.common import (
    arrival_counters,
    let_next_kernel_start,
    pdl_enabled,
    wait_for_previous_kernel,
)
from gptoss_chat.kernels.rope_cache import _bf16

_BLOCK_S = 64
_STAGES = 2
"""Shared-memory stages of the loop over a split's later tiles: against Triton's default of 3,
decode at 32k went from 455 to 458-460 tok/s on an H100 (2026-11-22); 4 gave 445."""
_WINDOW_TILE = 128
"""Sliding windows up to this many keys are scored as one [window, D] tile by 8 warps, requested
whole before the PDL wait, instead of two dependent 64-key steps: on an H100 (2026-11-22)
decode went from 516-517 to 523-525 tok/s after a 1k prompt and 447 to 452-453 at 32k."""
_LATE_TRIGGER = True
"""Programs let the out projection's programs start (PDL) after their own wait for the qkv
projection, not at their start. At their start the out projection came up while the qkv
projection still streamed, two launches ahead, and took from it; now it comes up while this
launch runs and requests its first weight tiles then (gemv.py `_PRE_TILES`). On an H100
(2026-11-22): 570.0 / 572.4 against 563.5 / 564.9 tok/s after a 1k prompt with one tile
requested early, 576.2 / 576.1 with four; at 32k 501.7 / 501.7 against 489.7 / 492.0."""
_WINDOW_WARPS = 8
"""Warps of a sliding layer's program (one kv head, the whole window as one tile): 4 decoded
at 561.8 / 559.6 against 564.0 / 563.6 tok/s after a 1k prompt on an H100 (2026-11-22)."""
_COMBINE_ELEMENTS = 4096
"""Partial-accumulator values of one chunk of the final merge ([G_C, chunk, D] float32: 8 splits
at gpt-oss's shapes). Two chunks are in registers at once (the next one is requested before the
current is summed), 127 registers a thread: 4 programs an SM, as with one 16-split chunk before;
8192 (two 16-split chunks) takes 181."""
_MERGE_GROUP = 16
"""A kv head with more live splits than this merges them in two levels (module docstring, step
4). At 32k context (64 live splits, 4 groups) the launch alone went from 31.4 to 29.8 us on an H100
and decode from 480.4 / 481.1 to 484.9 / 484.7 tok/s (2026-11-22); groups of 8 split the same
29.9 us but cost ~1.4 us at 1k (16 live splits, two levels instead of one)."""


@triton.jit
def _rotated(row_ptr, mask, cos_ptr, sin_ptr, D: tl.constexpr):
    """Rotated heads [R, D] bf16 from rows of qkv (`row_ptr` [R, 1] points at each head).

    Element d < D/2 is first*cos - second*sin, element d >= D/2 is second*cos + first*sin, each
    product and the sum rounded to bf16 as in rope_cache.py (and as torch does in bf16)."""
    half: tl.constexpr = D // 2
    d = tl.arange(0, D)[None, :]
    x = tl.load(row_ptr + d, mask=mask, other=0.0).to(tl.float32)
    partner = tl.load(row_ptr + (d + half) % D, mask=mask, other=0.0).to(tl.float32)
    cos = tl.load(cos_ptr + d % half).to(tl.float32)
    sin = tl.load(sin_ptr + d % half).to(tl.float32)
    own = _bf16(x * cos).to(tl.float32)
    other = _bf16(partner * sin).to(tl.float32)
    return _bf16(tl.where(d < half, own - other, own + other))


@triton.jit
def _finish(acc, l_sum, m_max, sink, s_new, v_new, out_ptrs, mask):
    """Writes (acc + p_new v_new) / (l_sum + p_sink + p_new) for partials taken relative to
    m_max [G_PAD] (already >= sink and s_new, the current token's score)."""
    p_new = tl.exp(s_new - m_max)
    denom = l_sum + tl.exp(sink - m_max) + p_new
    o = (acc + p_new[:, None] * v_new) / denom[:, None]
    tl.store(out_ptrs, o.to(out_ptrs.dtype.element_ty), mask=mask)


@triton.jit
def _partials(m_ptr, l_ptr, acc_ptr, kv_head, s_first, live, g, g_ok, d,
              ROWS: tl.constexpr, BASE: tl.constexpr, G: tl.constexpr, D: tl.constexpr,
              CHUNK: tl.constexpr):  # fmt: skip
    """Splits s_first .. s_first + CHUNK - 1 (those < live) of one kv head: their maxima and sums
    [G_C, CHUNK] and weighted values [G_C, CHUNK, D], all requested at once (every live split
    stored all three). ".cg" loads skip L1, which is not coherent with the other SMs' stores."""
    c = tl.arange(0, CHUNK)
    at = (kv_head * ROWS + BASE + s_first + c[None, :]) * G + g[:, None]  # [G_C, CHUNK]
    taken = g_ok[:, None] & (s_first + c < live)[None, :]
    m_c = tl.load(m_ptr + at, mask=taken, other=float("-inf"), cache_modifier=".cg")
    l_c = tl.load(l_ptr + at, mask=taken, other=0.0, cache_modifier=".cg")
    acc_c = tl.load(acc_ptr + at[:, :, None] * D + d[None, None, :], mask=taken[:, :, None],
                    other=0.0, cache_modifier=".cg")  # fmt: skip
    return m_c, l_c, acc_c


@triton.jit
def _merge_group(m_ptr, l_ptr, acc_ptr, kv_head, group, live, G: tl.constexpr, G_C: tl.constexpr,
                 D: tl.constexpr, SPLITS: tl.constexpr, ROWS: tl.constexpr,
                 GROUP: tl.constexpr):  # fmt: skip
    """Splits group * GROUP .. + GROUP - 1 (those < live) of one kv head as one partial (max,
    sum, weighted values), stored in scratch row SPLITS + group for the final merge."""
    g = tl.arange(0, G_C)
    g_ok = g < G
    d = tl.arange(0, D)
    m_c, l_c, acc_c = _partials(m_ptr, l_ptr, acc_ptr, kv_head, group * GROUP, live, g, g_ok, d,
                                ROWS, 0, G, D, GROUP)  # fmt: skip
    m_g = tl.max(m_c, axis=1)  # [G_C]; -inf if no split of the group had keys
    w = tl.exp(m_c - tl.where(m_g > float("-inf"), m_g, 0.0)[:, None])
    row = (kv_head * ROWS + SPLITS + group) * G + g
    tl.store(m_ptr + row, m_g, mask=g_ok)
    tl.store(l_ptr + row, tl.sum(l_c * w, axis=1), mask=g_ok)
    tl.store(acc_ptr + row[:, None] * D + d[None, :], tl.sum(acc_c * w[:, :, None], axis=1),
             mask=g_ok[:, None])  # fmt: skip


@triton.jit
def _merge_splits(qkv_ptr, cos_ptr, sin_ptr, k_new, v_new, sinks_ptr, m_ptr, l_ptr, acc_ptr,
                  out_ptr, kv_head, sm_scale, live, HQ: tl.constexpr, G: tl.constexpr,
                  G_C: tl.constexpr, D: tl.constexpr, ROWS: tl.constexpr,
                  BASE: tl.constexpr, CHUNK: tl.constexpr):  # fmt: skip
    """The merge of one kv head's first `live` partials (scratch rows BASE .. BASE + live - 1 of
    the head's ROWS), in row order, with the sink and the current token, as an online softmax
    over chunks of CHUNK rows. A chunk's three loads go out together, and the next chunk's are
    requested before this one is summed. Before, the merge first loaded every split's max, then
    each chunk's maxima, then its sums and values masked by those maxima: three dependent round
    trips for one chunk (the launch alone at 1k, 16 splits: 5.3 against 5.7 us on an H100).
    A long flat merge stays one round trip per chunk (64 splits: 31.4 us as before), which is
    why long contexts merge in two levels. It works on G_C = next_power_of_2(G) rows rather than
    the 16 a tl.dot needs, so a chunk takes half the registers at gpt-oss's G = 8 (q is rotated
    again in that shape; the rounding is the same)."""
    g = tl.arange(0, G_C)
    g_ok = g < G
    heads = kv_head * G + g  # [G_C]
    d = tl.arange(0, D)
    m_c, l_c, acc_c = _partials(m_ptr, l_ptr, acc_ptr, kv_head, 0, live, g, g_ok, d, ROWS, BASE,
                                G, D, CHUNK)  # fmt: skip
    q = _rotated(qkv_ptr + heads[:, None] * D, g_ok[:, None], cos_ptr, sin_ptr, D)
    s_new = tl.sum(q.to(tl.float32) * k_new.to(tl.float32), axis=1) * sm_scale  # [G_C]
    sink = tl.load(sinks_ptr + heads, mask=g_ok, other=0.0)
    m_run = tl.maximum(sink, s_new)  # finite: an empty split's -inf weighs exp(-inf) = 0
    l_run = tl.zeros([G_C], dtype=tl.float32)
    acc_run = tl.zeros([G_C, D], dtype=tl.float32)
    for s_next in range(CHUNK, live + CHUNK, CHUNK):  # the last round requests nothing
        m_n, l_n, acc_n = _partials(m_ptr, l_ptr, acc_ptr, kv_head, s_next, live, g, g_ok, d,
                                    ROWS, BASE, G, D, CHUNK)  # fmt: skip
        m_new = tl.maximum(m_run, tl.max(m_c, axis=1))
        alpha = tl.exp(m_run - m_new)
        w = tl.exp(m_c - m_new[:, None])  # [G_C, CHUNK]
        l_run = l_run * alpha + tl.sum(l_c * w, axis=1)
        acc_run = acc_run * alpha[:, None] + tl.sum(acc_c * w[:, :, None], axis=1)
        m_run = m_new
        m_c, l_c, acc_c = m_n, l_n, acc_n
    out_ptrs = out_ptr + heads[:, None] * D + d[None, :]
    _finish(acc_run, l_run, m_run, sink, s_new, v_new, out_ptrs, g_ok[:, None])


@triton.jit
def _rope_attention_decode_kernel(
    qkv_ptr,  # [1, (HQ + 2 HKV) * D] bf16
    cos_ptr,  # [P, D/2] bf16: the rotary table, row = position (P > offset)
    sin_ptr,  # [P, D/2] bf16
    k_ptr,  # [S, HKV, D] bf16 cache
    v_ptr,  # [S, HKV, D] bf16 cache
    sinks_ptr,  # [HQ] float32
    offset_ptr,  # [] int64: position of the new token
    m_ptr,  # [HKV, SPLITS + SPLITS / GROUP, G] float32 scratch (splits, then groups)
    l_ptr,  # [HKV, SPLITS + SPLITS / GROUP, G] float32 scratch
    acc_ptr,  # [HKV, SPLITS + SPLITS / GROUP, G, D] float32 scratch
    counter_ptr,  # [HKV, 1 + SPLITS / GROUP] int32, zero between calls
    out_ptr,  # [HQ * D] bf16
    sm_scale,
    S,
    HQ: tl.constexpr,
    HKV: tl.constexpr,
    G: tl.constexpr,
    G_PAD: tl.constexpr,
    G_C: tl.constexpr,
    D: tl.constexpr,
    WINDOW: tl.constexpr,
    SPLITS: tl.constexpr,
    BLOCK_S: tl.constexpr,
    CHUNK: tl.constexpr,
    UPCAST: tl.constexpr,
    PDL: tl.constexpr = False,
    GROUP: tl.constexpr = 0,  # two-level merge groups (`_MERGE_GROUP`), 0: one level
    LATE_TRIGGER: tl.constexpr = False,
):
    kv_head = tl.program_id(0)
    split = tl.program_id(1)
    if not LATE_TRIGGER:  # see `_LATE_TRIGGER`
        let_next_kernel_start(PDL)  # the out projection may start streaming its weights
    end = tl.load(offset_ptr)  # the split keys: cached positions < offset
    # the new token's rotary row, picked here: a gather of it per step was 4 launches more
    cos_ptr += end * (D // 2)
    sin_ptr += end * (D // 2)
    if WINDOW > 0:  # noqa: SIM108 (a constexpr branch)
        first = tl.maximum(end + 1 - WINDOW, 0)
    else:
        first = end * 0
    lo, hi = split_range(first, end, split, SPLITS, BLOCK_S)
    # Splits past the keys (48 of 64 at a 1k context) have nothing to do: only the first
    # `live` ones take part, and the merge reads only theirs.
    live = live_splits(first, end, SPLITS, BLOCK_S)
    if LATE_TRIGGER and split >= live:  # no wait to pass: let the out projection come up
        let_next_kernel_start(PDL)
    if split < live:
        _attend_split(qkv_ptr, cos_ptr, sin_ptr, k_ptr, v_ptr, sinks_ptr, m_ptr, l_ptr, acc_ptr,
                      counter_ptr, out_ptr, sm_scale, S, end, lo, hi, live, kv_head, split, HQ,
                      HKV, G, G_PAD, G_C, D, SPLITS, BLOCK_S, CHUNK, UPCAST, PDL,
                      GROUP, LATE_TRIGGER)  # fmt: skip


@triton.jit
def _attend_rest(q, k_ptr, v_ptr, m, l_sum, acc, sm_scale, S, lo, hi, kv_head,
                 HKV: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr,
                 UPCAST: tl.constexpr):  # fmt: skip
    """The split's tiles after its first (Triton pipelines these loads through shared memory)."""
    offs = tl.arange(0, BLOCK_S)
    for s0 in range(lo + BLOCK_S, hi, BLOCK_S):
        pos = s0 + offs
        k, v = _kv_tile(k_ptr, v_ptr, pos, hi, S, kv_head, HKV, D)
        m, l_sum, acc = attend_tile(q, k, v, pos < hi, m, l_sum, acc, sm_scale, UPCAST)
    return m, l_sum, acc


@triton.jit
def _kv_tile(k_ptr, v_ptr, pos, hi, S, kv_head, HKV: tl.constexpr, D: tl.constexpr):
    """Keys and values [BLOCK_S, D] of kv head `kv_head` at positions `pos` (ring slots pos % S;
    positions from `hi` on read as zeros)."""
    d = tl.arange(0, D)
    kv_offs = (pos % S).to(tl.int64)[:, None] * (HKV * D) + kv_head * D + d[None, :]
    k = tl.load(k_ptr + kv_offs, mask=(pos < hi)[:, None], other=0.0)
    v = tl.load(v_ptr + kv_offs, mask=(pos < hi)[:, None], other=0.0)
    return k, v


@triton.jit
def _attend_split(qkv_ptr, cos_ptr, sin_ptr, k_ptr, v_ptr, sinks_ptr, m_ptr, l_ptr, acc_ptr,
                  counter_ptr, out_ptr, sm_scale, S, end, lo, hi, live, kv_head, split,
                  HQ: tl.constexpr, HKV: tl.constexpr, G: tl.constexpr, G_PAD: tl.constexpr,
                  G_C: tl.constexpr, D: tl.constexpr, SPLITS: tl.constexpr,
                  BLOCK_S: tl.constexpr, CHUNK: tl.constexpr, UPCAST: tl.constexpr,
                  PDL: tl.constexpr, GROUP: tl.constexpr,
                  LATE_TRIGGER: tl.constexpr):  # fmt: skip
    """Steps 1-4 of the module's docstring for one live split [lo, hi)."""
    d = tl.arange(0, D)
    offs = tl.arange(0, BLOCK_S)
    pos = lo + offs
    k_first, v_first = _kv_tile(k_ptr, v_ptr, pos, hi, S, kv_head, HKV, D)  # before the wait

    wait_for_previous_kernel(PDL)  # qkv comes from the projection launched just before
    if LATE_TRIGGER:
        let_next_kernel_start(PDL)  # the out projection may start streaming its weights
    g = tl.arange(0, G_PAD)
    g_ok = g < G
    heads = kv_head * G + g  # [G_PAD]
    q = _rotated(qkv_ptr + heads[:, None] * D, g_ok[:, None], cos_ptr, sin_ptr, D)
    one = tl.zeros([1, 1], dtype=tl.int32)  # k as a [1, D] tile
    k_new = _rotated(qkv_ptr + (HQ + kv_head) * D + one, one == 0, cos_ptr, sin_ptr, D)
    v_new = tl.load(qkv_ptr + (HQ + HKV + kv_head) * D + d)  # [D] bf16
    if split == 0:
        slot = (end % S).to(tl.int64)
        tl.store(k_ptr + slot * (HKV * D) + kv_head * D + d[None, :], k_new)
        tl.store(v_ptr + slot * (HKV * D) + kv_head * D + d, v_new)

    m = tl.full([G_PAD], float("-inf"), dtype=tl.float32)
    l_sum = tl.zeros([G_PAD], dtype=tl.float32)
    acc = tl.zeros([G_PAD, D], dtype=tl.float32)
    if lo < hi:  # an empty split would score nothing but -inf (exp(-inf - -inf) is NaN)
        m, l_sum, acc = attend_tile(q, k_first, v_first, pos < hi, m, l_sum, acc, sm_scale,
                                     UPCAST)  # fmt: skip
    # Behind a branch, so a split of one tile (every split at a 1k context) skips the set-up
    # and drain of the loop's shared-memory pipeline as well as the loop.
    if lo + BLOCK_S < hi:
        m, l_sum, acc = _attend_rest(q, k_ptr, v_ptr, m, l_sum, acc, sm_scale, S, lo, hi, kv_head,
                                     HKV, D, BLOCK_S, UPCAST)  # fmt: skip

    v_new32 = v_new.to(tl.float32)[None, :]
    if SPLITS == 1:
        s_new = tl.sum(q.to(tl.float32) * k_new.to(tl.float32), axis=1) * sm_scale  # [G_PAD]
        sink = tl.load(sinks_ptr + heads, mask=g_ok, other=0.0)
        out_ptrs = out_ptr + heads[:, None] * D + d[None, :]
        m_max = tl.maximum(tl.maximum(m, sink), s_new)
        w = tl.exp(m - m_max)  # 0 when the split had no keys (m = -inf)
        _finish(acc * w[:, None], l_sum * w, m_max, sink, s_new, v_new32, out_ptrs,
                g_ok[:, None])  # fmt: skip
    else:
        # All three, even for a split without keys (split 0 at position 0: m = -inf, l and acc
        # zero), so the merge requests them together instead of after each split's max.
        NG: tl.constexpr = SPLITS // GROUP if GROUP > 0 else 0
        ROWS: tl.constexpr = SPLITS + NG  # a kv head's rows of scratch: splits, then groups
        part = (kv_head * ROWS + split) * G + g  # [G_PAD]
        tl.store(m_ptr + part, m, mask=g_ok)
        tl.store(l_ptr + part, l_sum, mask=g_ok)
        tl.store(acc_ptr + part[:, None] * D + d[None, :], acc, mask=g_ok[:, None])
        tl.debug_barrier()  # every thread's partial stores are issued before the ticket
        # this kv head's counters: [0] counts live splits (one level) or merged groups (two),
        # [1 + group] the splits of each group
        arrivals = counter_ptr + kv_head * (1 + NG)
        if NG > 0 and live > GROUP:
            group = split // GROUP
            members = tl.minimum(live - group * GROUP, GROUP)
            ticket = tl.atomic_add(arrivals + 1 + group, 1, sem="acq_rel", scope="gpu")
            if ticket == members - 1:  # the last of its group
                tl.atomic_xchg(arrivals + 1 + group, 0)
                _merge_group(m_ptr, l_ptr, acc_ptr, kv_head, group, live, G, G_C, D, SPLITS,
                             ROWS, GROUP)  # fmt: skip
                tl.debug_barrier()  # the group's partial is stored before its ticket
                groups = tl.cdiv(live, GROUP)
                if tl.atomic_add(arrivals, 1, sem="acq_rel", scope="gpu") == groups - 1:
                    _merge_splits(qkv_ptr, cos_ptr, sin_ptr, k_new, v_new32, sinks_ptr, m_ptr,
                                  l_ptr, acc_ptr, out_ptr, kv_head, sm_scale, groups, HQ, G, G_C,
                                  D, ROWS, SPLITS, NG)  # fmt: skip
                    tl.atomic_xchg(arrivals, 0)
        else:
            ticket = tl.atomic_add(arrivals, 1, sem="acq_rel", scope="gpu")
            if ticket == live - 1:  # the last live program of this kv head
                _merge_splits(qkv_ptr, cos_ptr, sin_ptr, k_new, v_new32, sinks_ptr, m_ptr, l_ptr,
                              acc_ptr, out_ptr, kv_head, sm_scale, live, HQ, G, G_C, D, ROWS, 0,
                              CHUNK)  # fmt: skip
                tl.atomic_xchg(arrivals, 0)  # zero again for the next call / replay


def rope_attention_decode(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    sinks: torch.Tensor,
    offset: torch.Tensor,
    sliding_window: int,
    sm_scale: float,
    n_heads: int,
) -> torch.Tensor:
    """The `Ops.rope_attention_decode` entry (T == 1); see `RopeAttentionDecodeOp` in
    model/ops.py."""
    n_tokens, width = qkv.shape
    slots, n_kv, head_dim = k_cache.shape
    if n_tokens != 1:
        raise ValueError(f"rope_attention_decode takes one token, got {n_tokens}")
    if width != (n_heads + 2 * n_kv) * head_dim:
        raise ValueError(f"rope_attention_decode: qkv {tuple(qkv.shape)} does not fit "
                         f"{n_heads} heads over cache {tuple(k_cache.shape)}")  # fmt: skip
    if cos.dim() != 2 or cos.shape[1] != head_dim // 2 or sin.shape != cos.shape:
        raise ValueError(f"rope_attention_decode: the rotary tables {tuple(cos.shape)}, "
                         f"{tuple(sin.shape)} must be [positions, {head_dim // 2}]")  # fmt: skip
    if v_cache.shape != k_cache.shape or n_heads % n_kv or head_dim & (head_dim - 1):
        raise ValueError("rope_attention_decode needs matching caches, Hq a multiple of Hkv "
                         "and a power-of-two head_dim")  # fmt: skip
    tensors = (qkv, cos, sin, k_cache, v_cache, sinks)
    if not all(t.is_contiguous() for t in tensors):
        raise ValueError("rope_attention_decode needs contiguous tensors")
    group = n_heads // n_kv
    group_pad = max(16, triton.next_power_of_2(group))  # rows of the tl.dot tiles
    group_merge = triton.next_power_of_2(group)  # rows of the merge
    splits = decode_splits(slots, sliding_window)
    dev = qkv.device
    out = torch.empty(n_heads * head_dim, dtype=qkv.dtype, device=dev)
    if splits > 1:
        merge_group = _MERGE_GROUP if splits > _MERGE_GROUP else 0
        groups = splits // merge_group if merge_group else 0
        rows = splits + groups
        part_m = torch.empty(n_kv, rows, group, dtype=torch.float32, device=dev)
        part_l = torch.empty(n_kv, rows, group, dtype=torch.float32, device=dev)
        part_acc = torch.empty(n_kv, rows, group, head_dim, dtype=torch.float32, device=dev)
        counters = arrival_counters(dev, k_cache.data_ptr(), n_kv * (1 + groups),
                                    "rope_attention_decode")  # fmt: skip
    else:  # merged in registers: no scratch, no counter (these pointers are never used)
        merge_group = 0
        part_m = part_l = part_acc = sinks
        counters = offset
    chunk = max(1, min(splits, _COMBINE_ELEMENTS // (group_merge * head_dim)))
    pdl = pdl_enabled(qkv)
    block_s, warps = _BLOCK_S, 4
    if splits == 1 and _BLOCK_S < sliding_window <= _WINDOW_TILE:
        block_s, warps = triton.next_power_of_2(sliding_window), _WINDOW_WARPS  # one tile
    # Without fusion Triton keeps torch's two roundings in the rotation (rope_cache.py).
    options = {"num_warps": 4}
    if qkv.is_cuda:
        options = {"num_warps": warps, "num_stages": _STAGES, "enable_fp_fusion": False}
    _rope_attention_decode_kernel[(n_kv, splits)](
        qkv, cos, sin, k_cache, v_cache, sinks, offset, part_m, part_l, part_acc, counters, out,
        float(sm_scale), slots, HQ=n_heads, HKV=n_kv, G=group, G_PAD=group_pad, G_C=group_merge,
        D=head_dim, WINDOW=int(sliding_window), SPLITS=splits, BLOCK_S=block_s, CHUNK=chunk,
        UPCAST=not qkv.is_cuda, PDL=pdl, GROUP=merge_group, LATE_TRIGGER=_LATE_TRIGGER,
        launch_pdl=pdl, **options,
    )  # fmt: skip
    return out.view(1, n_heads * head_dim)
