"""MXFP4 mixture-of-experts for decode: matrix-vector products straight from packed fp4.

At batch 1 each token reads 4 of 32 experts: 3 x 2880 x 2880 fp4 values per expert (mlp1 is
[2I, H], mlp2 [H, I]), 12.4 MB of codes and 0.8 MB of scales, a third of the bytes a decode step
moves. Three launches (plus the router's), none writes a bf16 copy of any weight:

1. `_mlp1_swiglu_kernel`: one program per (token, slot, block of I outputs) computes the glu and
   linear rows (interleaved in the checkpoint, so one contiguous block of 2*BLOCK_I rows), adds
   the bias and applies the clamped SwiGLU, writing float32 activations [T*k, I].
2. `_mlp2_kernel`: one program per (token, slot, block of H outputs) adds the bias and scales by
   the routing weight, writing float32 partials [T*k, H]; `_combine_kernel` sums the k partials
   in slot order. No atomics, so the result does not depend on scheduling; splitting the slots
   over programs (rather than looping over them) gives 4x the programs in flight.

Block sizes: the H100's autotuning winners, or a full sweep (`common.tuning_sweep`).

Routing: `moe_experts` takes ids and weights; `moe_experts_from_logits` takes the router's
logits (router.py) and lets every program pick its own expert (top-k of 32 values, softmax over
the k), which saves the top-k launch. Measured on an H100 inside the decode graph: ~43 us a
layer, ~1.2 TB/s, 2.5x under bandwidth: decoding (~6 instructions a value) and latency limit it.
Extends the expert GEMV idea of gpt-oss `triton/moe.py` (there through triton_kernels' matmul_ogs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import tuning_sweep
from gptoss_chat.kernels.mxfp4 import mxfp4_row_dot
from gptoss_chat.kernels.router import select_expert
from gptoss_chat.model.mxfp4 import dequantize_mxfp4

SWIGLU_ALPHA = 1.702  # written as a literal inside the kernel (Triton globals must be constexpr)


@triton.jit
def _mlp1_swiglu_kernel(
    x_ptr,  # [T, H] bf16
    ids_ptr,  # [T*k] int32/int64 expert ids
    blocks_ptr,  # [E, 2I, H/32, 16] uint8
    scales_ptr,  # [E, 2I, H/32] uint8
    bias_ptr,  # [E, 2I] bf16
    out_ptr,  # [T*k, I] float32
    limit,
    H: tl.constexpr,
    INTER: tl.constexpr,
    K_SEL: tl.constexpr,
    BLOCK_I: tl.constexpr,
    BLOCK_G: tl.constexpr,
    USE_PRMT: tl.constexpr,
    FROM_LOGITS: tl.constexpr = False,
    E: tl.constexpr = 1,
    E_PAD: tl.constexpr = 1,
    K_PAD: tl.constexpr = 1,
    PREFETCH: tl.constexpr = False,
):
    pair = tl.program_id(0)  # token * k + slot
    token = pair // K_SEL
    if FROM_LOGITS:  # ids_ptr holds router logits [T, E]
        expert, _ = select_expert(ids_ptr, token, pair % K_SEL, E, E_PAD, K_SEL, K_PAD)
        expert = expert.to(tl.int64)
    else:
        expert = tl.load(ids_ptr + pair).to(tl.int64)
    rows = tl.program_id(1) * 2 * BLOCK_I + tl.arange(0, 2 * BLOCK_I)  # [2*BI] glu/lin interleaved
    row_ok = rows < 2 * INTER
    w_rows = blocks_ptr + expert * (2 * INTER * H // 2) + rows[:, None, None] * (H // 2)
    s_rows = scales_ptr + expert * (2 * INTER * H // 32) + rows[:, None] * (H // 32)
    h = mxfp4_row_dot(
        w_rows, s_rows, row_ok, x_ptr + token * H, H, 2 * BLOCK_I, BLOCK_G, USE_PRMT, PREFETCH
    )
    h += tl.load(bias_ptr + expert * 2 * INTER + rows, mask=row_ok, other=0.0).to(tl.float32)
    glu, lin = tl.split(tl.reshape(h, [BLOCK_I, 2]))
    glu = tl.minimum(glu, limit)
    lin = tl.minimum(tl.maximum(lin, -limit), limit)
    act = glu * tl.sigmoid(1.702 * glu) * (lin + 1.0)
    cols = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    tl.store(out_ptr + pair * INTER + cols, act, mask=cols < INTER)


@triton.jit
def _mlp2_kernel(
    act_ptr,  # [T*k, I] float32
    ids_ptr,  # [T*k] expert ids
    gate_ptr,  # [T*k] float32 routing weights
    blocks_ptr,  # [E, H, I/32, 16] uint8
    scales_ptr,  # [E, H, I/32] uint8
    bias_ptr,  # [E, H] bf16
    part_ptr,  # [T*k, H] float32: gate * (W2 a + b2) per (token, slot)
    H: tl.constexpr,
    INTER: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_G: tl.constexpr,
    USE_PRMT: tl.constexpr,
    FROM_LOGITS: tl.constexpr = False,
    E: tl.constexpr = 1,
    E_PAD: tl.constexpr = 1,
    K_SEL: tl.constexpr = 1,
    K_PAD: tl.constexpr = 1,
    PREFETCH: tl.constexpr = False,
):
    pair = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < H
    if FROM_LOGITS:  # ids_ptr holds router logits [T, E]; gate_ptr is unused
        expert, gate = select_expert(ids_ptr, pair // K_SEL, pair % K_SEL, E, E_PAD, K_SEL, K_PAD)
        expert = expert.to(tl.int64)
    else:
        expert = tl.load(ids_ptr + pair).to(tl.int64)
        gate = tl.load(gate_ptr + pair)
    w_rows = blocks_ptr + expert * (H * INTER // 2) + rows[:, None, None] * (INTER // 2)
    s_rows = scales_ptr + expert * (H * INTER // 32) + rows[:, None] * (INTER // 32)
    y = mxfp4_row_dot(
        w_rows, s_rows, row_ok, act_ptr + pair * INTER, INTER, BLOCK_N, BLOCK_G, USE_PRMT, PREFETCH
    )
    y += tl.load(bias_ptr + expert * H + rows, mask=row_ok, other=0.0).to(tl.float32)
    tl.store(part_ptr + pair * H + rows, gate * y, mask=row_ok)


@triton.jit
def _combine_kernel(part_ptr, out_ptr, H: tl.constexpr, K_SEL: tl.constexpr, BLOCK: tl.constexpr):
    """out[t] = sum over the k slots of part[t*k + slot], in slot order (deterministic)."""
    token = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = cols < H
    total = tl.zeros([BLOCK], dtype=tl.float32)
    for slot in range(K_SEL):
        total += tl.load(part_ptr + (token * K_SEL + slot) * H + cols, mask=ok, other=0.0)
    tl.store(out_ptr + token * H + cols, total.to(tl.bfloat16), mask=ok)


def _tuning(rows_name: str) -> list[triton.Config]:
    """Rows per program x groups per step x warps; every tile covers its threads' 16-byte loads
    (rows * groups >= 32 * warps), and small row blocks give the many programs that hide the
    latency of a 53 MB-per-layer stream."""
    if not tuning_sweep():  # the H100 winners (run of 2026-11-22): many small programs
        rows, groups, warps = (8, 8, 2) if rows_name == "BLOCK_I" else (16, 8, 4)
        meta = {rows_name: rows, "BLOCK_G": groups, "PREFETCH": False}
        return [triton.Config(meta, num_warps=warps)]
    configs = []
    for rows, groups, warps in [(8, 8, 2), (8, 16, 4), (16, 8, 4), (16, 16, 4), (32, 8, 4),
                                (4, 16, 2), (32, 16, 4), (16, 32, 4)]:  # fmt: skip
        for prefetch in (False, True):
            meta = {rows_name: rows, "BLOCK_G": groups, "PREFETCH": prefetch}
            configs.append(triton.Config(meta, num_warps=warps))
    return configs


_mlp1_tuned = triton.autotune(_tuning("BLOCK_I"), key=["H", "INTER"])(_mlp1_swiglu_kernel)
_mlp2_tuned = triton.autotune(_tuning("BLOCK_N"), key=["H", "INTER"])(_mlp2_kernel)


def _check_experts(
    x: torch.Tensor,
    mlp1_blocks: torch.Tensor,
    mlp1_scales: torch.Tensor,
    mlp2_blocks: torch.Tensor,
    mlp2_scales: torch.Tensor,
) -> tuple[int, int, int]:
    if x.dim() != 2 or x.dtype != torch.bfloat16 or not x.is_contiguous():
        raise ValueError(f"x must be contiguous bf16 [T, H], got {x.dtype} {tuple(x.shape)}")
    n_experts, two_i, h_groups, block = mlp1_blocks.shape
    hidden = x.shape[1]
    inter = two_i // 2
    if block != 16 or h_groups * 32 != hidden or mlp1_scales.shape != (n_experts, two_i, h_groups):
        raise ValueError(f"mlp1 blocks {tuple(mlp1_blocks.shape)} do not fit hidden size {hidden}")
    if mlp2_blocks.shape != (n_experts, hidden, inter // 32, 16) or mlp2_scales.shape != (
        n_experts,
        hidden,
        inter // 32,
    ):
        raise ValueError(f"mlp2 blocks {tuple(mlp2_blocks.shape)} do not fit [E, H, I/32, 16]")
    for t in (mlp1_blocks, mlp1_scales, mlp2_blocks, mlp2_scales):
        if t.dtype != torch.uint8 or not t.is_contiguous():
            raise ValueError("MXFP4 blocks and scales must be contiguous uint8")
    return n_experts, hidden, inter


def moe_experts(
    x: torch.Tensor,
    expert_ids: torch.Tensor,
    expert_weights: torch.Tensor,
    mlp1_blocks: torch.Tensor,
    mlp1_scales: torch.Tensor,
    mlp1_bias: torch.Tensor,
    mlp2_blocks: torch.Tensor,
    mlp2_scales: torch.Tensor,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    use_prmt: bool | None = None,
) -> torch.Tensor:
    """x [T, H] bf16, expert_ids [T, k], expert_weights [T, k] -> [T, H] bf16 (no residual).

    use_prmt: decode with PTX byte permutes (GPU only); None picks it on CUDA."""
    k_sel = expert_ids.shape[1]
    ids = expert_ids.reshape(-1).contiguous()  # [T*k]
    gates = expert_weights.reshape(-1).float().contiguous()  # [T*k]
    return _launch(x, ids, gates, k_sel, None, mlp1_blocks, mlp1_scales, mlp1_bias, mlp2_blocks,
                   mlp2_scales, mlp2_bias, swiglu_limit, use_prmt)  # fmt: skip


def moe_experts_from_logits(
    x: torch.Tensor,
    router_logits: torch.Tensor,
    k_sel: int,
    mlp1_blocks: torch.Tensor,
    mlp1_scales: torch.Tensor,
    mlp1_bias: torch.Tensor,
    mlp2_blocks: torch.Tensor,
    mlp2_scales: torch.Tensor,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
) -> torch.Tensor:
    """Like `moe_experts`, routing from router logits [T, E] float32: each program picks its
    expert (top-k, softmax over the k) itself, so routing costs no launch of its own."""
    return _launch(x, router_logits, router_logits, k_sel, router_logits.shape[1], mlp1_blocks,
                   mlp1_scales, mlp1_bias, mlp2_blocks, mlp2_scales, mlp2_bias, swiglu_limit,
                   None)  # fmt: skip


def _launch(
    x: torch.Tensor,
    ids: torch.Tensor,
    gates: torch.Tensor,
    k_sel: int,
    n_experts: int | None,
    mlp1_blocks: torch.Tensor,
    mlp1_scales: torch.Tensor,
    mlp1_bias: torch.Tensor,
    mlp2_blocks: torch.Tensor,
    mlp2_scales: torch.Tensor,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    use_prmt: bool | None,
) -> torch.Tensor:
    """ids/gates: [T*k] ids and weights, or (n_experts given) both the router logits [T, E]."""
    _, hidden, inter = _check_experts(x, mlp1_blocks, mlp1_scales, mlp2_blocks, mlp2_scales)
    n_tokens = x.shape[0]
    if use_prmt is None:
        use_prmt = x.is_cuda
    routing = {}
    if n_experts is not None:
        routing = dict(FROM_LOGITS=True, E=n_experts, E_PAD=triton.next_power_of_2(n_experts),
                       K_PAD=triton.next_power_of_2(k_sel))  # fmt: skip
    pairs = n_tokens * k_sel
    act = torch.empty(pairs, inter, dtype=torch.float32, device=x.device)
    part = torch.empty(pairs, hidden, dtype=torch.float32, device=x.device)
    out = torch.empty_like(x)
    if x.is_cuda:
        grid1 = lambda meta: (pairs, triton.cdiv(inter, meta["BLOCK_I"]))  # noqa: E731
        _mlp1_tuned[grid1](
            x, ids, mlp1_blocks, mlp1_scales, mlp1_bias, act, float(swiglu_limit),
            H=hidden, INTER=inter, K_SEL=k_sel, USE_PRMT=use_prmt, **routing,
        )  # fmt: skip
        grid2 = lambda meta: (pairs, triton.cdiv(hidden, meta["BLOCK_N"]))  # noqa: E731
        _mlp2_tuned[grid2](
            act, ids, gates, mlp2_blocks, mlp2_scales, mlp2_bias, part,
            H=hidden, INTER=inter, USE_PRMT=use_prmt, **routing, **_k(routing, k_sel),
        )  # fmt: skip
    else:  # the interpreter runs programs one by one: few, large programs are fastest
        block_i = min(64, triton.next_power_of_2(inter))
        block_n = min(64, triton.next_power_of_2(hidden))
        block_g = min(8, triton.next_power_of_2(max(hidden, inter) // 32))
        _mlp1_swiglu_kernel[(pairs, triton.cdiv(inter, block_i))](
            x, ids, mlp1_blocks, mlp1_scales, mlp1_bias, act, float(swiglu_limit),
            H=hidden, INTER=inter, K_SEL=k_sel, BLOCK_I=block_i, BLOCK_G=block_g,
            USE_PRMT=use_prmt, **routing,
        )  # fmt: skip
        _mlp2_kernel[(pairs, triton.cdiv(hidden, block_n))](
            act, ids, gates, mlp2_blocks, mlp2_scales, mlp2_bias, part,
            H=hidden, INTER=inter, BLOCK_N=block_n, BLOCK_G=block_g, USE_PRMT=use_prmt,
            **routing, **_k(routing, k_sel),
        )  # fmt: skip
    block = 1024 if x.is_cuda else triton.next_power_of_2(hidden)
    _combine_kernel[(n_tokens, triton.cdiv(hidden, block))](
        part, out, H=hidden, K_SEL=k_sel, BLOCK=block, num_warps=4
    )
    return out


def _k(routing: dict, k_sel: int) -> dict:
    return {"K_SEL": k_sel} if routing else {}


def moe_experts_ref(
    x: torch.Tensor,
    expert_ids: torch.Tensor,
    expert_weights: torch.Tensor,
    mlp1_blocks: torch.Tensor,
    mlp1_scales: torch.Tensor,
    mlp1_bias: torch.Tensor,
    mlp2_blocks: torch.Tensor,
    mlp2_scales: torch.Tensor,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    use_prmt: bool | None = None,
) -> torch.Tensor:
    """Plain torch, float32 throughout, same signature (use_prmt is ignored)."""
    del use_prmt
    w1 = dequantize_mxfp4(
        mlp1_blocks[expert_ids], mlp1_scales[expert_ids], torch.float32
    )  # [T, k, 2I, H]
    h = torch.einsum("tkoh,th->tko", w1, x.float()) + mlp1_bias[expert_ids].float()
    glu = h[..., 0::2].clamp(max=swiglu_limit)
    lin = h[..., 1::2].clamp(min=-swiglu_limit, max=swiglu_limit)
    act = glu * torch.sigmoid(SWIGLU_ALPHA * glu) * (lin + 1)  # [T, k, I]
    w2 = dequantize_mxfp4(
        mlp2_blocks[expert_ids], mlp2_scales[expert_ids], torch.float32
    )  # [T, k, H, I]
    y = torch.einsum("tkhi,tki->tkh", w2, act) + mlp2_bias[expert_ids].float()
    return torch.einsum("tkh,tk->th", y, expert_weights.float()).to(x.dtype)
