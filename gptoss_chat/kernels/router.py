"""MoE router in one launch: logits = x W^T + b, top-k, softmax over the k (decode sizes).

torch spends four launches on this (a cuBLAS GEMV plus its split-K reduction, a top-k that
sorts, a softmax), about 25 us a layer at batch 1, for a [32, 2880] matrix of 184 KB. Here one
program per token streams the matrix in [E, BLOCK_H] tiles, keeps the E logits in registers and
picks the top k by k rounds of max (ties go to the lowest expert id). Logits and weights are
rounded to bf16 where the torch reference rounds them, so both choose the same experts.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.model.ops import route as route_ref  # noqa: F401  (the reference, re-exported)


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
