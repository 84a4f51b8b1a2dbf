"""Decode attention (one query token) with learned sinks, sliding window and GQA, split over keys.

Flash-decoding: the keys of one layer are cut into SPLITS contiguous ranges; program (kv head,
split) scores its range for all G = Hq/Hkv query heads that share the kv head (one [16, D] tile,
so K and V are read once per group, through `tl.dot`), and writes a partial (max, sum, weighted
values). A second launch merges the partials of each head with its sink logit. The position is
read on the device (`start`), and SPLITS depends only on the buffer size, so the launch shapes
are static and the step can be captured in a CUDA graph.

Keys live in a ring buffer: position p sits in slot p % S (sliding layers keep only the window).
Extends gpt-oss `triton/attention.py` (a prefill kernel) to one query with split-K.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import (
    check_attention_inputs,
    let_next_kernel_start,
    pdl_enabled,
    pdl_small_kernels,
    wait_for_previous_kernel,
)
from gptoss_chat.kernels.common import dot as _dot
from gptoss_chat.model.ops import attention_torch

_BLOCK_S = 64


@triton.jit
def attend_tile(q, k, v, ok, m, l_sum, acc, sm_scale, UPCAST: tl.constexpr):
    """One [BLOCK_S] tile of keys k, values v into the running (max m, sum l_sum, weighted
    values acc) of the G_PAD query rows q; `ok` masks keys outside the split."""
    scores = _dot(q, tl.trans(k), UPCAST) * sm_scale  # [G_PAD, BLOCK_S] float32
    scores = tl.where(ok[None, :], scores, float("-inf"))
    m_new = tl.maximum(m, tl.max(scores, axis=1))
    alpha = tl.exp(m - m_new)
    p = tl.exp(scores - m_new[:, None])
    l_sum = l_sum * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, UPCAST)
    return m_new, l_sum, acc


@triton.jit
def _per_split(first, end, SPLITS: tl.constexpr, BLOCK_S: tl.constexpr):
    """Keys a range of `split_range`: positions first .. end-1 in SPLITS whole-tile ranges."""
    return tl.cdiv(tl.cdiv(end - first, SPLITS), BLOCK_S) * BLOCK_S


@triton.jit
def split_range(first, end, split, SPLITS: tl.constexpr, BLOCK_S: tl.constexpr):
    """Keys [lo, hi) of `split` when positions first .. end-1 are cut into SPLITS ranges of
    whole BLOCK_S tiles (the last ranges may be empty)."""
    per_split = _per_split(first, end, SPLITS, BLOCK_S)
    lo = first + split * per_split
    return lo, tl.minimum(lo + per_split, end)


@triton.jit
def live_splits(first, end, SPLITS: tl.constexpr, BLOCK_S: tl.constexpr):
    """How many of `split_range`'s ranges hold keys (at least 1: split 0 always takes part)."""
    per_split = _per_split(first, end, SPLITS, BLOCK_S)
    return tl.maximum(tl.cdiv(end - first, tl.maximum(per_split, BLOCK_S)), 1)


@triton.jit
def _decode_partial_kernel(
    q_ptr,  # [Hq, D] bf16
    k_ptr,  # [S, Hkv, D] bf16
    v_ptr,  # [S, Hkv, D] bf16
    start_ptr,  # [] int64: position of the query
    m_ptr,  # [Hq, SPLITS] float32
    l_ptr,  # [Hq, SPLITS] float32
    acc_ptr,  # [Hq, SPLITS, D] float32
    sm_scale,
    S,
    HKV: tl.constexpr,
    G: tl.constexpr,
    G_PAD: tl.constexpr,
    D: tl.constexpr,
    WINDOW: tl.constexpr,
    SPLITS: tl.constexpr,
    BLOCK_S: tl.constexpr,
    UPCAST: tl.constexpr,
    PDL: tl.constexpr = False,
):
    wait_for_previous_kernel(PDL)  # q and the new key come from the RoPE launch
    let_next_kernel_start(PDL)  # the combine may come up (it waits for our partials)
    kv_head = tl.program_id(0)
    split = tl.program_id(1)
    end = tl.load(start_ptr) + 1  # keys at positions < end
    if WINDOW > 0:  # noqa: SIM108 (a constexpr branch)
        first = tl.maximum(end - WINDOW, 0)
    else:
        first = end * 0
    lo, hi = split_range(first, end, split, SPLITS, BLOCK_S)

    g = tl.arange(0, G_PAD)
    d = tl.arange(0, D)
    heads = kv_head * G + g  # [G_PAD]
    q = tl.load(q_ptr + heads[:, None] * D + d[None, :], mask=(g < G)[:, None], other=0.0)
    m = tl.full([G_PAD], float("-inf"), dtype=tl.float32)
    l_sum = tl.zeros([G_PAD], dtype=tl.float32)
    acc = tl.zeros([G_PAD, D], dtype=tl.float32)
    offs = tl.arange(0, BLOCK_S)
    for s0 in range(lo, hi, BLOCK_S):
        pos = s0 + offs
        ok = pos < hi
        slot = (pos % S).to(tl.int64)
        kv_offs = slot[:, None] * (HKV * D) + kv_head * D + d[None, :]  # [BLOCK_S, D]
        k = tl.load(k_ptr + kv_offs, mask=ok[:, None], other=0.0)
        v = tl.load(v_ptr + kv_offs, mask=ok[:, None], other=0.0)
        m, l_sum, acc = attend_tile(q, k, v, ok, m, l_sum, acc, sm_scale, UPCAST)
    out = heads * SPLITS + split
    tl.store(m_ptr + out, m, mask=g < G)
    tl.store(l_ptr + out, l_sum, mask=g < G)
    tl.store(acc_ptr + out[:, None] * D + d[None, :], acc, mask=(g < G)[:, None])


@triton.jit
def _decode_combine_kernel(
    m_ptr,
    l_ptr,
    acc_ptr,
    sinks_ptr,
    out_ptr,
    D: tl.constexpr,
    SPLITS: tl.constexpr,
    PDL: tl.constexpr = False,
    WAIT: tl.constexpr = False,
):
    wait_for_previous_kernel(WAIT)  # launched with PDL: the partials come from the last launch
    let_next_kernel_start(PDL)  # the out projection may start streaming its weights
    head = tl.program_id(0)
    sp = tl.arange(0, SPLITS)
    d = tl.arange(0, D)
    m = tl.load(m_ptr + head * SPLITS + sp)  # [SPLITS], -inf where a split had no keys
    l_sum = tl.load(l_ptr + head * SPLITS + sp)
    acc = tl.load(acc_ptr + (head * SPLITS + sp)[:, None] * D + d[None, :])  # [SPLITS, D]
    sink = tl.load(sinks_ptr + head)
    m_all = tl.maximum(tl.max(m, axis=0), sink)
    w = tl.exp(m - m_all)  # 0 for empty splits
    denom = tl.sum(l_sum * w, axis=0) + tl.exp(sink - m_all)
    o = tl.sum(acc * w[:, None], axis=0) / denom
    tl.store(out_ptr + head * D + d, o.to(out_ptr.dtype.element_ty))


FULL_SPLIT_KEYS = _BLOCK_S
"""A full layer's buffer capacity per key range (`decode_splits`): one tile, so that up to 64
ranges every live range of a short context is one tile whatever the buffer's size. Against 512
on an H100 (2026-11-22, greedy decode, tok/s): a 4,096-slot buffer 590.6 / 591.1 against
575.8 / 573.5 after a 1k prompt and 589.9 / 590.4 against 549.9 / 546.8 after 3k; a 16,384-slot
one the same at 1k, 588.9 / 590.0 against 578.2 / 579.7 at 3k; 131,072 slots had 64 ranges
either way."""
_WINDOW_SPLIT_KEYS = 512


def decode_splits(slots: int, sliding_window: int) -> int:
    """Static number of key ranges, at most 64: a full layer one per `FULL_SPLIT_KEYS` slots of
    its buffer, a sliding layer one per ~512 keys of its window (gpt-oss's 128: one range).

    The ranges split the keys cached so far into whole tiles (`split_range`), so a short context
    uses as many ranges as it has tiles, up to this number. Sized by 512 slots a range, a 4,096-slot
    buffer had 8 ranges, and a 1k context took two tiles a range in turn where a 131k buffer's
    64 ranges took one each."""
    if sliding_window:
        span, per_range = min(slots, sliding_window), _WINDOW_SPLIT_KEYS
    else:
        span, per_range = slots, FULL_SPLIT_KEYS
    return max(1, min(64, triton.next_power_of_2(triton.cdiv(span, per_range))))


def attention_decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    sinks: torch.Tensor,
    start: torch.Tensor,
    sliding_window: int,
    sm_scale: float,
) -> torch.Tensor:
    """The `Ops.attention_decode` entry (T == 1); see `AttentionOp` in model/ops.py."""
    n_tokens, n_heads, head_dim = q.shape
    slots, n_kv, _ = k_cache.shape
    if n_tokens != 1:
        raise ValueError(f"attention_decode takes one query token, got {n_tokens}")
    check_attention_inputs("attention_decode", q, k_cache, v_cache)
    group = n_heads // n_kv
    splits = decode_splits(slots, sliding_window)
    dev = q.device
    small = pdl_small_kernels(q)
    part_m = torch.empty(n_heads, splits, dtype=torch.float32, device=dev)
    part_l = torch.empty(n_heads, splits, dtype=torch.float32, device=dev)
    part_acc = torch.empty(n_heads, splits, head_dim, dtype=torch.float32, device=dev)
    _decode_partial_kernel[(n_kv, splits)](
        q, k_cache, v_cache, start, part_m, part_l, part_acc, float(sm_scale), slots,
        HKV=n_kv, G=group, G_PAD=max(16, triton.next_power_of_2(group)), D=head_dim,
        WINDOW=int(sliding_window), SPLITS=splits, BLOCK_S=_BLOCK_S, UPCAST=not q.is_cuda,
        num_warps=4, PDL=small, launch_pdl=small,
    )  # fmt: skip
    out = torch.empty(n_heads * head_dim, dtype=q.dtype, device=dev)
    _decode_combine_kernel[(n_heads,)](
        part_m,
        part_l,
        part_acc,
        sinks,
        out,
        D=head_dim,
        SPLITS=splits,
        num_warps=1,
        PDL=pdl_enabled(q),
        WAIT=small,
        launch_pdl=small,
    )
    return out.view(1, n_heads * head_dim)


attention_decode_ref = attention_torch
