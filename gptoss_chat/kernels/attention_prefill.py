"""Flash-style prefill attention with learned sinks, sliding window and GQA over a KV ring buffer.

Program (query block, head) streams the keys its queries can see, BLOCK_N at a time, with an
online softmax in float32 (`tl.dot` for both products, so tensor cores do the work); the sink
joins the softmax at the end as one more logit. Keys of a sliding layer are read only from the
window: the loop starts at the first key the block's first query sees. Position p lives in slot
p % S, as in `AttentionOp`. Extends gpt-oss `triton/attention.py` (same online-softmax + sink
structure) to the ring buffer and a device-side start position.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import check_attention_inputs
from gptoss_chat.kernels.common import dot as _dot
from gptoss_chat.model.ops import attention_torch


@triton.jit
def _prefill_kernel(
    q_ptr,  # [T, Hq, D] bf16
    k_ptr,  # [S, Hkv, D] bf16
    v_ptr,  # [S, Hkv, D] bf16
    sinks_ptr,  # [Hq] float32
    start_ptr,  # [] int64
    out_ptr,  # [T, Hq, D] bf16
    sm_scale,
    T,
    S,
    HQ: tl.constexpr,
    HKV: tl.constexpr,
    D: tl.constexpr,
    WINDOW: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    UPCAST: tl.constexpr,
):
    block = tl.program_id(0)
    head = tl.program_id(1)
    kv_head = head // (HQ // HKV)
    start = tl.load(start_ptr)
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)  # token index within this call
    row_ok = rows < T
    q_pos = start + rows  # [BLOCK_M] absolute positions
    d = tl.arange(0, D)
    q = tl.load(
        q_ptr + (rows[:, None] * HQ + head) * D + d[None, :], mask=row_ok[:, None], other=0.0
    )
    hi = start + tl.minimum(block * BLOCK_M + BLOCK_M, T)  # keys < hi
    if WINDOW > 0:  # noqa: SIM108 (a constexpr branch)
        lo = tl.maximum(start + block * BLOCK_M - WINDOW + 1, 0)
    else:
        lo = start * 0
    m = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    offs = tl.arange(0, BLOCK_N)
    for k0 in range(lo, hi, BLOCK_N):
        k_pos = k0 + offs
        k_ok = k_pos < hi
        slot = (k_pos % S).to(tl.int64)
        kv_offs = slot[:, None] * (HKV * D) + kv_head * D + d[None, :]
        k = tl.load(k_ptr + kv_offs, mask=k_ok[:, None], other=0.0)
        scores = _dot(q, tl.trans(k), UPCAST) * sm_scale  # [BLOCK_M, BLOCK_N]
        visible = (k_pos[None, :] <= q_pos[:, None]) & k_ok[None, :]
        if WINDOW > 0:
            visible = visible & (q_pos[:, None] - k_pos[None, :] < WINDOW)
        scores = tl.where(visible, scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows that saw no key yet
        alpha = tl.exp(m - m_safe)
        p = tl.exp(scores - m_safe[:, None])
        l_sum = l_sum * alpha + tl.sum(p, axis=1)
        v = tl.load(v_ptr + kv_offs, mask=k_ok[:, None], other=0.0)
        acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, UPCAST)
        m = m_new
    sink = tl.load(sinks_ptr + head)
    m_all = tl.maximum(m, sink)
    scale = tl.exp(m - m_all)
    denom = l_sum * scale + tl.exp(sink - m_all)
    o = acc * (scale / denom)[:, None]
    tl.store(
        out_ptr + (rows[:, None] * HQ + head) * D + d[None, :],
        o.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, None],
    )


def attention_prefill(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    sinks: torch.Tensor,
    start: torch.Tensor,
    sliding_window: int,
    sm_scale: float,
) -> torch.Tensor:
    """The `Ops.attention_prefill` entry (any T >= 1); see `AttentionOp` in model/ops.py."""
    n_tokens, n_heads, head_dim = q.shape
    slots, n_kv, _ = k_cache.shape
    check_attention_inputs("attention_prefill", q, k_cache, v_cache)
    out = torch.empty_like(q)
    if q.is_cuda:
        block_m, block_n, warps = (64, 64, 4) if n_tokens >= 64 else (16, 64, 4)
    else:
        block_m, block_n, warps = 32, 32, 1
    grid = (triton.cdiv(n_tokens, block_m), n_heads)
    _prefill_kernel[grid](
        q, k_cache, v_cache, sinks, start, out, float(sm_scale), n_tokens, slots,
        HQ=n_heads, HKV=n_kv, D=head_dim, WINDOW=int(sliding_window), BLOCK_M=block_m,
        BLOCK_N=block_n, UPCAST=not q.is_cuda, num_warps=warps,
    )  # fmt: skip
    return out.view(n_tokens, n_heads * head_dim)


attention_prefill_ref = attention_torch
