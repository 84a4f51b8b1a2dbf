"""MoE router in one launch: logits = x W^T + b, top-k, softmax over the k (decode sizes).

torch spends four launches on this (a cuBLAS GEMV plus its split-K reduction, a top-k that
sorts, a softmax), about 25 us a layer at batch 1, for a [32, 2880] matrix of 184 KB. Here one
program per token streams the matrix in [E, BLOCK_H] tiles, keeps the E logits in registers and
picks the top k by k rounds of max (ties go to the lowest expert id). Logits and weights are
rounded to bf16 where the torch reference rounds them, so both choose the same experts.

The decode path uses `router_logits` (logits only; each expert program picks its own experts
with `select_expert`) or, for the `Ops.moe_block` entry, `norm_router_logits`, which also does
the MoE half's RMSNorm: one launch instead of two, the normed row written once for the experts.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import (
    let_next_kernel_start,
    pdl_enabled,
    pdl_small_kernels,
    wait_for_previous_kernel,
)
from gptoss_chat.kernels.mxfp4_int8 import store_normed_groups
from gptoss_chat.model.ops import route as route_ref  # noqa: F401  (the reference, re-exported)

_DECODE_WARPS = 4
"""Warps of a decode router program (one expert, its whole row in one step). 2 or 8 decode at
the same speed on an H100 (563.5 / 564.7 against 564.0 tok/s after a 1k prompt, 2026-11-22)."""


@triton.jit
def _router_kernel(
    x_ptr,  # [T, H] bf16
    w_ptr,  # [E, H] bf16
    b_ptr,  # [E] bf16
    ids_ptr,  # [T, K] int64
    weights_ptr,  # [T, K] bf16
    H: tl.constexpr,
    E: tl.constexpr,
    E_PAD: tl.constexpr,
    K: tl.constexpr,
    K_PAD: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    token = tl.program_id(0)
    experts = tl.arange(0, E_PAD)
    e_ok = experts < E
    cols = tl.arange(0, BLOCK_H)
    acc = tl.zeros([E_PAD, BLOCK_H], dtype=tl.float32)
    for h0 in range(0, H, BLOCK_H):
        hs = h0 + cols
        h_ok = hs < H
        w = tl.load(w_ptr + experts[:, None] * H + hs[None, :], mask=e_ok[:, None] & h_ok[None, :],
                    other=0.0)  # fmt: skip
        x = tl.load(x_ptr + token * H + hs, mask=h_ok, other=0.0)
        acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
    logits = tl.sum(acc, axis=1) + tl.load(b_ptr + experts, mask=e_ok, other=0.0).to(tl.float32)
    logits = logits.to(tl.bfloat16).to(tl.float32)  # F.linear returns bf16 logits
    logits = tl.where(e_ok, logits, float("-inf"))
    slots = tl.arange(0, K_PAD)
    top_vals = tl.full([K_PAD], float("-inf"), dtype=tl.float32)
    top_ids = tl.zeros([K_PAD], dtype=tl.int64)
    for slot in tl.static_range(K):
        best = tl.max(logits, axis=0)
        pick = tl.min(tl.where(logits == best, experts, E_PAD), axis=0)
        top_vals = tl.where(slots == slot, best, top_vals)
        top_ids = tl.where(slots == slot, pick.to(tl.int64), top_ids)
        logits = tl.where(experts == pick, float("-inf"), logits)
    p = tl.exp(top_vals - tl.max(top_vals, axis=0))
    p = p / tl.sum(p, axis=0)
    tl.store(ids_ptr + token * K + slots, top_ids, mask=slots < K)
    tl.store(weights_ptr + token * K + slots, p.to(tl.bfloat16), mask=slots < K)


def route(
    x: torch.Tensor, gate_weight: torch.Tensor, gate_bias: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [T, H] bf16 -> (expert ids [T, k] int64, routing weights [T, k] bf16), like ops.route."""
    n_tokens, hidden = x.shape
    n_experts = gate_weight.shape[0]
    if gate_weight.shape != (n_experts, hidden) or gate_bias.shape != (n_experts,) or k > n_experts:
        raise ValueError(f"route: gate {tuple(gate_weight.shape)} does not fit x {tuple(x.shape)}")
    ids = torch.empty(n_tokens, k, dtype=torch.int64, device=x.device)
    weights = torch.empty(n_tokens, k, dtype=torch.bfloat16, device=x.device)
    block_h = 256 if x.is_cuda else min(256, triton.next_power_of_2(hidden))
    _router_kernel[(n_tokens,)](
        x, gate_weight, gate_bias, ids, weights, H=hidden, E=n_experts,
        E_PAD=triton.next_power_of_2(n_experts), K=k, K_PAD=triton.next_power_of_2(k),
        BLOCK_H=block_h, num_warps=8 if x.is_cuda else 1,
    )  # fmt: skip
    return ids, weights


@triton.jit
def _router_logits_kernel(
    x_ptr,  # [T, H] bf16
    w_ptr,  # [E, H] bf16
    b_ptr,  # [E] bf16
    logits_ptr,  # [T, E] float32 (bf16-rounded values)
    norm_ptr,  # [H] float32 RMSNorm scale, or unused
    normed_ptr,  # [T, H] bf16 normed x (written by the token's first program), or unused
    eps,
    H: tl.constexpr,
    E: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_H: tl.constexpr,
    NORM: tl.constexpr = False,
    H_PAD: tl.constexpr = 1,
    xq_ptr=None,  # [T, 2H] int8: the normed row in fixed point for the experts (QUANT)
    xs_ptr=None,  # [T, H/32] float32: its steps (QUANT)
    QUANT: tl.constexpr = False,
    PDL: tl.constexpr = False,
    WAIT: tl.constexpr = False,
    GROUPS_PER: tl.constexpr = 1,
    GROUPS_PAD: tl.constexpr = 1,
):
    """ROWS router logits of one token per program: E / ROWS programs share the 184 KB matrix,
    so it streams at many SMs' bandwidth instead of one's. With NORM the logits are those of
    rms_norm(x): every program finds the row's rms itself (as in gemv.py) and the first one
    also writes the normed row for the experts, which saves the norm's launch. QUANT (with
    NORM only) spreads that row, in fixed point too, over all the programs."""
    token = tl.program_id(0)
    experts = tl.program_id(1) * ROWS + tl.arange(0, ROWS)
    e_ok = experts < E
    cols = tl.arange(0, BLOCK_H)
    # The first step's weights (and norm scales) are requested before the PDL wait: no launch
    # of the step writes them, and at decode the whole row is that one step.
    w_first = tl.load(w_ptr + experts[:, None] * H + cols[None, :],
                      mask=e_ok[:, None] & (cols < H)[None, :], other=0.0)  # fmt: skip
    if NORM:
        scale_first = tl.load(norm_ptr + cols, mask=cols < H, other=0.0)
    wait_for_previous_kernel(WAIT)  # launched with PDL: x comes from the out projection
    let_next_kernel_start(PDL)  # mlp1's programs may come up (they wait for our logits)
    if NORM:  # the same single float32 sum over the padded row as rms_norm.py
        all_h = tl.arange(0, H_PAD)
        row = tl.load(x_ptr + token * H + all_h, mask=all_h < H, other=0.0).to(tl.float32)
        inv_rms = tl.rsqrt(tl.sum(row * row, axis=0) / H + eps)
        # [BLOCK_H]: the first program writes the normed row (with QUANT every program writes
        # its own groups of it, below)
        writer = (cols * 0 + tl.program_id(1)) == 0
    x = tl.load(x_ptr + token * H + cols, mask=cols < H, other=0.0)
    if NORM:
        x = (x.to(tl.float32) * inv_rms * scale_first).to(x_ptr.dtype.element_ty)
        if not QUANT:
            tl.store(normed_ptr + token * H + cols, x, mask=(cols < H) & writer)
    acc = w_first.to(tl.float32) * x.to(tl.float32)[None, :]
    for h0 in range(BLOCK_H, H, BLOCK_H):
        hs = h0 + cols
        h_ok = hs < H
        w = tl.load(w_ptr + experts[:, None] * H + hs[None, :], mask=e_ok[:, None] & h_ok[None, :],
                    other=0.0)  # fmt: skip
        x = tl.load(x_ptr + token * H + hs, mask=h_ok, other=0.0)
        if NORM:
            scale = tl.load(norm_ptr + hs, mask=h_ok, other=0.0)
            x = (x.to(tl.float32) * inv_rms * scale).to(x_ptr.dtype.element_ty)
            if not QUANT:
                tl.store(normed_ptr + token * H + hs, x, mask=h_ok & writer)
        acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
    logits = tl.sum(acc, axis=1) + tl.load(b_ptr + experts, mask=e_ok, other=0.0).to(tl.float32)
    tl.store(logits_ptr + token * E + experts, logits.to(tl.bfloat16).to(tl.float32), mask=e_ok)
    # Each program also writes and quantises GROUPS_PER groups of 32 of the normed row (moe_
    # decode's input format): spread over the programs, so no one of them holds up the experts.
    if QUANT:
        first = tl.program_id(1) * GROUPS_PER
        store_normed_groups(x_ptr + token * H, norm_ptr, inv_rms, normed_ptr + token * H,
                            xq_ptr + token * 2 * H, xs_ptr + token * (H // 32), first,
                            GROUPS_PER, GROUPS_PAD, H, "")  # fmt: skip


@triton.jit
def select_expert(logits_ptr, token, slot, E: tl.constexpr, E_PAD: tl.constexpr,
                  K: tl.constexpr, K_PAD: tl.constexpr):  # fmt: skip
    """(expert id, routing weight) of `slot` among the token's top K logits: the same choice and
    bf16-rounded softmax weight as `_router_kernel`, recomputed by each program that needs it
    (E values), which saves a launch per layer.

    It sits on the critical path of every expert program (mlp1 can request no weight before it
    knows its expert), so K <= 4 takes the top K in one reduction: each logit (bf16-exact) packed
    with its id into one int32 key that orders like (logit, -id), reduced by merging sorted
    4-lists. Against K rounds of max and min (two reductions each, across warps at E = 128):
    decode after a 1k prompt 565.5 / 566.5 against 559.8 / 557.7 tok/s (20b), 400.1 / 399.8
    against 383.0 / 382.8 (120b) on an H100 (2026-11-22)."""
    experts = tl.arange(0, E_PAD)
    logits = tl.load(logits_ptr + token * E + experts, mask=experts < E, other=float("-inf"))
    slots = tl.arange(0, K_PAD)
    if K_PAD <= 4:
        tl.static_assert(E_PAD <= 65536)  # ids fit the keys' low 16 bits
        keys = _packed_keys(logits, experts)
        none = tl.full([E_PAD], -(2**31), dtype=tl.int32)
        c0, c1, c2, c3 = tl.reduce((keys, none, none, none), 0, _top4_merge)
        top = tl.where(slots == 0, c0, tl.where(slots == 1, c1, tl.where(slots == 2, c2, c3)))
        top_vals = tl.where(slots < K, _key_logit(top), float("-inf"))
        pick = tl.where(slot == 0, c0, tl.where(slot == 1, c1, tl.where(slot == 2, c2, c3)))
        chosen = 65535 - (pick & 0xFFFF)
    else:
        top_vals = tl.full([K_PAD], float("-inf"), dtype=tl.float32)
        chosen = slot * 0
        for s in tl.static_range(K):
            best = tl.max(logits, axis=0)
            pick = tl.min(tl.where(logits == best, experts, E_PAD), axis=0)
            top_vals = tl.where(slots == s, best, top_vals)
            chosen = tl.where(slot == s, pick, chosen)
            logits = tl.where(experts == pick, float("-inf"), logits)
    p = tl.exp(top_vals - tl.max(top_vals, axis=0))
    p = p / tl.sum(p, axis=0)
    gate = tl.sum(tl.where(slots == slot, p, 0.0), axis=0)
    return chosen, gate.to(tl.bfloat16).to(tl.float32)


@triton.jit
def _packed_keys(logits, experts):
    """int32 keys that order like (logit, -expert) for bf16-exact float32 logits: the bf16 bits,
    mapped so that signed order is float order, in the high half; 65535 - id in the low half
    (a tie goes to the lower id, as `_router_kernel`'s rounds of max and min)."""
    logits = tl.where(logits == 0.0, 0.0, logits)  # -0.0 ties +0.0, as in a float max
    bits = logits.to(tl.int32, bitcast=True) >> 16  # the bf16 pattern, sign-extended
    ordered = tl.where(bits < 0, bits ^ 0x7FFF, bits)  # negatives: larger magnitude, lower
    return (ordered << 16) | (65535 - experts)


@triton.jit
def _key_logit(key):
    """The float32 logit of a `_packed_keys` key."""
    ordered = key >> 16
    bits = tl.where(ordered < 0, ordered ^ 0x7FFF, ordered)
    return (bits << 16).to(tl.float32, bitcast=True)


@triton.jit
def _top4_merge(a0, a1, a2, a3, b0, b1, b2, b3):
    """The 4 largest of two descending 4-lists, descending (keys are distinct): the elementwise
    max of a and b reversed holds them as a bitonic sequence, which two compare-exchange stages
    sort (Batcher's bitonic merge)."""
    d0 = tl.maximum(a0, b3)
    d1 = tl.maximum(a1, b2)
    d2 = tl.maximum(a2, b1)
    d3 = tl.maximum(a3, b0)
    e0 = tl.maximum(d0, d2)
    e2 = tl.minimum(d0, d2)
    e1 = tl.maximum(d1, d3)
    e3 = tl.minimum(d1, d3)
    return tl.maximum(e0, e1), tl.minimum(e0, e1), tl.maximum(e2, e3), tl.minimum(e2, e3)


def router_logits(
    x: torch.Tensor, gate_weight: torch.Tensor, gate_bias: torch.Tensor
) -> torch.Tensor:
    """x [T, H] bf16 -> router logits [T, E] float32 holding bf16 values (as F.linear returns)."""
    return _launch_logits(x, gate_weight, gate_bias, None, None)


def norm_router_logits(
    x: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    gate_weight: torch.Tensor,
    gate_bias: torch.Tensor,
    *,
    blocks: tuple[int, int, int] | None = None,
    quantized: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [T, H] bf16 -> (rms_norm(x) [T, H] bf16, router_logits(rms_norm(x)) [T, E]) in one
    launch (decode sizes). `quantized` ([T, 2H] int8, [T, H/32] float32): also fill these with
    the normed rows in moe_decode's fixed point (saves its quantising launch). `blocks`
    (experts per program, BLOCK_H, warps) overrides the GPU launch shape, for
    benchmarks/kernels.py to compare."""
    if norm_scale.shape != (x.shape[1],) or norm_scale.dtype != torch.float32:
        raise ValueError(f"norm_router_logits: scale {tuple(norm_scale.shape)} does not fit x")
    if quantized is not None and x.shape[1] % 32:
        raise ValueError("fixed-point rows need a hidden size that is a multiple of 32")
    normed = torch.empty_like(x)
    norm = (norm_scale.contiguous(), eps)
    logits = _launch_logits(x, gate_weight, gate_bias, norm, normed, blocks, quantized)
    return normed, logits


def _launch_logits(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    gate_bias: torch.Tensor,
    norm: tuple[torch.Tensor, float] | None,
    normed: torch.Tensor | None,
    blocks: tuple[int, int, int] | None = None,
    quantized: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Router logits [T, E], of rms_norm(x) when `norm` is given (written to `normed`)."""
    n_tokens, hidden = x.shape
    n_experts = gate_weight.shape[0]
    if gate_weight.shape != (n_experts, hidden) or not x.is_contiguous():
        raise ValueError(f"router: gate {tuple(gate_weight.shape)} does not fit x {tuple(x.shape)}")
    logits = torch.empty(n_tokens, n_experts, dtype=torch.float32, device=x.device)
    norm_scale, eps = norm if norm is not None else (gate_weight, 0.0)  # unread without NORM
    # One expert a program, its whole row in one step: 2.21 us on an H100 against 4.04 us for
    # (2, 512, 4) (benchmarks/kernels.py --only fused, 2026-11-22): latency, not bytes, decides.
    rows, block_h, warps = 1, triton.next_power_of_2(hidden), _DECODE_WARPS
    if not x.is_cuda:  # the interpreter runs programs one by one: few, large programs
        rows, warps = triton.next_power_of_2(n_experts), 1
        block_h = min(256, triton.next_power_of_2(hidden))
    rows, block_h, warps = blocks or (rows, block_h, warps)
    groups_per = triton.cdiv(hidden // 32, triton.cdiv(n_experts, rows))  # of the fixed-point row
    _router_logits_kernel[(n_tokens, triton.cdiv(n_experts, rows))](
        x, gate_weight, gate_bias, logits, norm_scale, normed if normed is not None else x,
        float(eps), H=hidden, E=n_experts, ROWS=rows, BLOCK_H=block_h, NORM=norm is not None,
        H_PAD=triton.next_power_of_2(hidden), num_warps=warps,
        xq_ptr=quantized[0] if quantized else None, xs_ptr=quantized[1] if quantized else None,
        QUANT=quantized is not None, PDL=pdl_enabled(x), WAIT=pdl_small_kernels(x),
        launch_pdl=pdl_small_kernels(x), GROUPS_PER=groups_per,
        GROUPS_PAD=triton.next_power_of_2(groups_per),
    )  # fmt: skip
    return logits
