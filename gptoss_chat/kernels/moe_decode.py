"""MXFP4 mixture-of-experts for decode: expert GEMVs straight from packed fp4, in integers.

At batch 1 each token reads 4 of 32 experts: 3 x 2880 x 2880 fp4 values per expert (mlp1 is
[2I, H], mlp2 [H, I]), 12.4 MB of codes and 0.8 MB of scales, a third of the bytes a decode step
moves. No launch writes a bf16 copy of any weight; the products are exact integer dot products
of doubled fp4 codes with 16-bit fixed-point activations (mxfp4_int8.py explains the numbers).
The launches after the router's:

1. `_quantize_kernel`: each token's normed x [H] -> fixed point per group of 32 (two int8
   halves, interleaved for the dot products, and a float32 step per group). Skipped when the
   norm-router kernel already wrote it (`quantized`, the decode path of `moe.moe_block`).
2. `_mlp1_kernel`: one program per (token, slot, MLP1_OUT outputs): the expert's interleaved
   glu/linear rows, + bias, clamped SwiGLU, and the outputs quantised as one group for mlp2.
3. `_mlp2_kernel`: one program per (token, slot, BLOCK_N rows): W2 a + b2, times the routing
   weight, float32 partials [T*k, H].
4. `_combine_kernel`: the k partials summed in slot order (no atomics, so the result does not
   depend on scheduling), plus the residual when given.

Layout: on a GPU the engine's experts, up to 32 a layer (gpt-oss-20b's), are tiled
(expert_layout.py): each program's block of rows stored step by step, so a step reads one 4 KB
piece instead of 16 or 32 row pieces (+1.8% decode on an H100); `tiled=True` says so, and the
programs' rows and steps are then the tiles'.

Routing: `moe_experts` takes ids and weights; `moe_experts_from_logits` takes the router's
logits (router.py) and lets every program pick its own expert (top-k of 32 values, softmax over
the k), which saves the top-k launch. With programmatic dependent launch (Hopper), mlp1 comes up
while the router runs, mlp2 requests its first codes while mlp1 finishes, and the combining
launch is already resident, waiting, when mlp2 ends.

Measured on an H100 (2026-11-22, 8 layers' experts in turn inside a CUDA graph): the whole MoE
32.9 us (mlp1 18.3 us at 1.93 TB/s, mlp2 11.4 us), against 45.5 us for the float kernels this
replaced (fp4 decoded to float, ~14 instructions a value, 1.2 TB/s). What limits it now is each
launch's ramp-up and tail at 18-35 MB, not arithmetic (3.3-4.0 instructions a value).
Extends the expert GEMV idea of gpt-oss `triton/moe.py` (there through triton_kernels' matmul_ogs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import (
    let_next_kernel_start,
    pdl_enabled,
    tuning_sweep,
    wait_for_previous_kernel,
)
from gptoss_chat.kernels.expert_layout import MLP1_TILE, MLP2_TILE
from gptoss_chat.kernels.mxfp4_int8 import (
    decode_table,
    fixed_x_offsets,
    mxfp4_fixed_row_dot,
    quantize_fixed,
    store_fixed,
)
from gptoss_chat.kernels.router import select_expert
from gptoss_chat.model.mxfp4 import dequantize_mxfp4

SWIGLU_ALPHA = 1.702  # written as a literal inside the kernels (Triton globals must be constexpr)
MLP1_OUT = 16
"""mlp1's outputs per program, quantised together as one group of mlp2's input (32 or 16).
16 gives twice the programs (720): the whole MoE 32.9 us against 34.4 with 32 on an H100
(2026-11-22, in a graph with PDL), although mlp2 then scales half-groups (11.4 against 11.2 us)."""


@triton.jit
def _quantize_kernel(x_ptr, xq_ptr, xs_ptr, K: tl.constexpr, G_PAD: tl.constexpr):
    """x [T, K] (any float) -> xq [T, 2K] int8 (interleaved, see `fixed_x_offsets`),
    xs [T, K/32] float32."""
    token = tl.program_id(0)
    idx = tl.arange(0, G_PAD)[:, None] * 32 + tl.arange(0, 32)[None, :]  # [G, 32]
    x = tl.load(x_ptr + token * K + idx, mask=idx < K, other=0.0).to(tl.float32)
    store_fixed(x, xq_ptr + token * 2 * K, xs_ptr + token * (K // 32), G_PAD, K)


@triton.jit
def _expert_of(ids_ptr, gate_ptr, pair, FROM_LOGITS: tl.constexpr, E: tl.constexpr,
               E_PAD: tl.constexpr, K_SEL: tl.constexpr, K_PAD: tl.constexpr):  # fmt: skip
    if FROM_LOGITS:  # ids_ptr holds router logits [T, E]
        expert, gate = select_expert(ids_ptr, pair // K_SEL, pair % K_SEL, E, E_PAD, K_SEL, K_PAD)
    else:
        expert = tl.load(ids_ptr + pair)
        gate = tl.load(gate_ptr + pair)
    return expert.to(tl.int64), gate


@triton.jit
def _mlp1_kernel(
    xq_ptr,  # [T, H/2] int32 view of the [T, 2H] int8 fixed-point x
    xs_ptr,  # [T, H/32] float32
    ids_ptr,  # [T*k] expert ids, or router logits [T, E] (FROM_LOGITS)
    blocks_ptr,  # [E, 2I, H/8] int32 view of [E, 2I, H/32, 16] uint8
    scales_ptr,  # [E, 2I, H/32] uint8
    bias_ptr,  # [E, 2I] bf16
    aq_ptr,  # [T*k, 2I] int8: the activations, fixed point
    as_ptr,  # [T*k, I/32] float32
    table_ptr,  # int32 [4]: mxfp4_int8.decode_table
    limit,
    H: tl.constexpr,
    INTER: tl.constexpr,
    K_SEL: tl.constexpr,
    BLOCK_G: tl.constexpr,
    USE_ASM: tl.constexpr,
    FROM_LOGITS: tl.constexpr = False,
    E: tl.constexpr = 1,
    E_PAD: tl.constexpr = 1,
    K_PAD: tl.constexpr = 1,
    PIPE: tl.constexpr = 0,
    PDL: tl.constexpr = False,
    OUT: tl.constexpr = 32,
    TILED: tl.constexpr = False,
):
    # With PDL this program may start while the router runs: it waits for the router's logits,
    # then lets mlp2 start (mlp2 reads those logits before its own wait, so not earlier).
    wait_for_previous_kernel(PDL)
    let_next_kernel_start(PDL)
    pair = tl.program_id(0)  # token * k + slot
    token = pair // K_SEL
    expert, _ = _expert_of(ids_ptr, ids_ptr, pair, FROM_LOGITS, E, E_PAD, K_SEL, K_PAD)
    # OUT glu/linear row pairs: one group of outputs, quantised together for mlp2 (OUT = 32 or 16)
    rows = tl.program_id(1) * 2 * OUT + tl.arange(0, 2 * OUT)
    w_rows, s_rows, w_tail, s_tail = _row_pointers(
        blocks_ptr + expert * (2 * INTER * H // 8), scales_ptr + expert * (2 * INTER * H // 32),
        tl.program_id(1), H, 2 * OUT, BLOCK_G, TILED,
    )  # fmt: skip
    h = mxfp4_fixed_row_dot(w_rows, s_rows, rows < 2 * INTER, xq_ptr + token * (H // 2),
                            xs_ptr + token * (H // 32), table_ptr, H, 2 * OUT, BLOCK_G,
                            USE_ASM, PIPE, TILED=TILED, w_tail=w_tail, s_tail=s_tail)  # fmt: skip
    h += tl.load(bias_ptr + expert * 2 * INTER + rows).to(tl.float32)
    glu, lin = tl.split(tl.reshape(h, [OUT, 2]))
    glu = tl.minimum(glu, limit)
    lin = tl.minimum(tl.maximum(lin, -limit), limit)
    act = glu * tl.sigmoid(1.702 * glu) * (lin + 1.0)  # [OUT]
    hi, lo, step = quantize_fixed(tl.reshape(act, [1, OUT]), tl.full([1], True, tl.int1))
    at = aq_ptr + pair * 2 * INTER + fixed_x_offsets(tl.program_id(1) * OUT + tl.arange(0, OUT))
    tl.store(at, tl.reshape(hi, [OUT]))
    tl.store(at + 8, tl.reshape(lo, [OUT]))
    tl.store(as_ptr + pair * (INTER // OUT) + tl.program_id(1) + tl.arange(0, 1), step)


@triton.jit
def _row_pointers(w_expert, s_expert, block, K: tl.constexpr, R: tl.constexpr,
                  BG: tl.constexpr, TILED: tl.constexpr):  # fmt: skip
    """`mxfp4_fixed_row_dot`'s pointers to rows block * R .. + R - 1 of one expert's weight
    ([rows, K/8] int32 codes from w_expert, [rows, K/32] scales from s_expert): each row's start,
    or in a tiled weight (expert_layout.py) its piece of the first step and of the tail."""
    r = tl.arange(0, R)
    if TILED:
        n_groups: tl.constexpr = K // 32
        MAIN: tl.constexpr = n_groups - n_groups % BG
        w_block = w_expert + block * (R * K // 8)
        s_block = s_expert + block * (R * K // 32)
        w_rows = w_block + r[:, None] * (4 * BG)
        s_rows = s_block + r[:, None] * BG
        w_tail = w_block + MAIN * 4 * R + r[:, None] * (4 * (n_groups - MAIN))
        s_tail = s_block + MAIN * R + r[:, None] * (n_groups - MAIN)
    else:
        w_rows = w_expert + (block * R + r)[:, None] * (K // 8)
        s_rows = s_expert + (block * R + r)[:, None] * (K // 32)
        w_tail, s_tail = w_rows, s_rows
    return w_rows, s_rows, w_tail, s_tail


@triton.jit
def _mlp2_kernel(
    aq_ptr32,  # [T*k, I/2] int32 view of the [T*k, 2I] int8 activations
    as_ptr,  # [T*k, I/XG] float32: a step per group of XG activations (mlp1's OUT)
    ids_ptr,  # [T*k] expert ids, or router logits [T, E] (FROM_LOGITS)
    gate_ptr,  # [T*k] float32 routing weights (unused with FROM_LOGITS)
    blocks_ptr,  # [E, H, I/8] int32 view
    scales_ptr,  # [E, H, I/32] uint8
    bias_ptr,  # [E, H] bf16
    part_ptr,  # [T*k, H] float32: gate * (W2 a + b2) per (token, slot)
    table_ptr,  # int32 [4]: mxfp4_int8.decode_table
    H: tl.constexpr,
    INTER: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_G: tl.constexpr,
    USE_ASM: tl.constexpr,
    FROM_LOGITS: tl.constexpr = False,
    E: tl.constexpr = 1,
    E_PAD: tl.constexpr = 1,
    K_SEL: tl.constexpr = 1,
    K_PAD: tl.constexpr = 1,
    PIPE: tl.constexpr = 0,
    PDL: tl.constexpr = False,
    XG: tl.constexpr = 32,
    TRIGGER: tl.constexpr = False,
    TILED: tl.constexpr = False,
):
    # The combining launch (PDL) may come up now and wait for us: its programs are resident
    # when mlp2 ends, and it lets the next layer's qkv projection come up too. Triggering
    # after the dot instead: 554 against 558-560 tok/s at 1k on an H100 (2026-11-22).
    if TRIGGER:
        let_next_kernel_start(PDL)
    # With PDL this program may run while mlp1 finishes: the routing (the router's logits, two
    # launches back and complete before mlp1 started) and the first codes come before the wait
    # in mxfp4_fixed_row_dot; mlp1's activations and every store come after it.
    pair = tl.program_id(0)
    expert, gate = _expert_of(ids_ptr, gate_ptr, pair, FROM_LOGITS, E, E_PAD, K_SEL, K_PAD)
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < H
    w_rows, s_rows, w_tail, s_tail = _row_pointers(
        blocks_ptr + expert * (H * INTER // 8), scales_ptr + expert * (H * INTER // 32),
        tl.program_id(1), INTER, BLOCK_N, BLOCK_G, TILED,
    )  # fmt: skip
    y = mxfp4_fixed_row_dot(w_rows, s_rows, row_ok, aq_ptr32 + pair * (INTER // 2),
                            as_ptr + pair * (INTER // XG), table_ptr, INTER, BLOCK_N, BLOCK_G,
                            USE_ASM, PIPE, PDL, XG, TILED, w_tail, s_tail)  # fmt: skip
    y += tl.load(bias_ptr + expert * H + rows, mask=row_ok, other=0.0).to(tl.float32)
    tl.store(part_ptr + pair * H + rows, gate * y, mask=row_ok)


@triton.jit
def _combine_kernel(part_ptr, out_ptr, H: tl.constexpr, K_SEL: tl.constexpr, BLOCK: tl.constexpr,
                    residual_ptr=None, RESIDUAL: tl.constexpr = False,
                    PDL: tl.constexpr = False, WAIT: tl.constexpr = False):  # fmt: skip
    """out[t] = sum over the k slots of part[t*k + slot], in slot order (deterministic), rounded
    to bf16; with RESIDUAL, + residual[t] rounded again (what `x + moe(x)` in bf16 gives)."""
    let_next_kernel_start(PDL)  # the next layer's qkv projection may start streaming weights
    wait_for_previous_kernel(WAIT)  # launched as mlp2's dependent: the partials come after this
    token = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = cols < H
    total = tl.zeros([BLOCK], dtype=tl.float32)
    for slot in range(K_SEL):
        total += tl.load(part_ptr + (token * K_SEL + slot) * H + cols, mask=ok, other=0.0)
    out = total.to(tl.bfloat16)
    if RESIDUAL:
        res = tl.load(residual_ptr + token * H + cols, mask=ok, other=0.0)
        out = (out.to(tl.float32) + res.to(tl.float32)).to(tl.bfloat16)
    tl.store(out_ptr + token * H + cols, out, mask=ok)


def _configs(name: str) -> list[triton.Config]:
    """The H100 winners (sweep of 2026-11-22, .devtree-style: every config timed in a graph), or
    a sweep (`common.tuning_sweep`). mlp1's rows are fixed at 64 (one quantised output group)."""
    if not tuning_sweep():  # also the tiles of expert_layout.py (the experts' layout on a GPU)
        if name == "mlp1":
            return [triton.Config({"BLOCK_G": MLP1_TILE[1], "PIPE": 1}, num_warps=4)]
        # (32, 16, 8 warps, PIPE 0) times the same alone (11.2 us); PIPE 1 puts the first
        # codes' request before the wait for mlp1 (programmatic dependent launch).
        return [triton.Config({"BLOCK_N": MLP2_TILE[0], "BLOCK_G": MLP2_TILE[1], "PIPE": 1},
                              num_warps=4)]  # fmt: skip
    if name == "mlp1":
        return [triton.Config({"BLOCK_G": g, "PIPE": p}, num_warps=w)
                for g in (8, 16) for w in (4, 8) for p in (0, 1, 3)]  # fmt: skip
    return [
        triton.Config({"BLOCK_N": n, "BLOCK_G": g, "PIPE": p}, num_warps=w)
        for n in (8, 16, 32)
        for g in (8, 16)
        for w in (2, 4, 8)
        for p in (0, 1)
        if n * g >= 8 * w  # every thread holds at least one group
    ]


_mlp1_tuned = triton.autotune(_configs("mlp1"), key=["H", "INTER"])(_mlp1_kernel)
_mlp2_tuned = triton.autotune(_configs("mlp2"), key=["H", "INTER"])(_mlp2_kernel)


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
    if inter % 32:
        raise ValueError(f"the intermediate size {inter} must be a multiple of 32")
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
    use_asm: bool | None = None,
    *,
    tiled: bool = False,
) -> torch.Tensor:
    """x [T, H] bf16, expert_ids [T, k], expert_weights [T, k] -> [T, H] bf16 (no residual).

    use_asm: the PTX byte-permute + dp4a path (GPU only); None picks it on CUDA. The other path
    computes the same integers with plain tensor ops (the CPU interpreter). tiled: the blocks
    and scales are laid out by `expert_layout.tile` (MLP1_TILE, MLP2_TILE)."""
    return _launch(x, expert_ids, expert_weights, expert_ids.shape[1], mlp1_blocks, mlp1_scales,
                   mlp1_bias, mlp2_blocks, mlp2_scales, mlp2_bias, swiglu_limit,
                   use_asm, tiled=tiled)  # fmt: skip


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
    *,
    quantized: tuple[torch.Tensor, torch.Tensor] | None = None,
    residual: torch.Tensor | None = None,
    tiled: bool = False,
) -> torch.Tensor:
    """Like `moe_experts`, routing from router logits [T, E] float32: each program picks its
    expert (top-k, softmax over the k) itself, so routing costs no launch of its own.

    quantized: x already in fixed point ([T, 2H] int8, [T, H/32] float32, as the norm-router
    kernel writes it), which saves the quantising launch. residual [T, H] bf16: returned
    residual + moe(x), added in the combining launch. tiled: as in `moe_experts`."""
    return _launch(x, router_logits, None, k_sel, mlp1_blocks, mlp1_scales, mlp1_bias,
                   mlp2_blocks, mlp2_scales, mlp2_bias, swiglu_limit, None, quantized,
                   residual, tiled=tiled)  # fmt: skip


def _launch(
    x: torch.Tensor,
    ids: torch.Tensor,
    gates: torch.Tensor | None,
    k_sel: int,
    mlp1_blocks: torch.Tensor,
    mlp1_scales: torch.Tensor,
    mlp1_bias: torch.Tensor,
    mlp2_blocks: torch.Tensor,
    mlp2_scales: torch.Tensor,
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    use_asm: bool | None = None,
    quantized: tuple[torch.Tensor, torch.Tensor] | None = None,
    residual: torch.Tensor | None = None,
    out_group: int | None = None,
    tiled: bool = False,
) -> torch.Tensor:
    """`ids` [T, k] with `gates` [T, k], or (gates None) the router logits [T, E] float32.
    out_group: mlp1's outputs per program (32 or 16), also mlp2's activation group. tiled: the
    programs' rows and steps are the tiles' (`expert_layout`), on the GPU and in the
    interpreter alike."""
    out_group = out_group or MLP1_OUT
    if tiled and 2 * out_group != MLP1_TILE[0]:
        raise ValueError(f"tiled experts are read by programs of {MLP1_TILE[0] // 2} outputs")
    _, hidden, inter = _check_experts(x, mlp1_blocks, mlp1_scales, mlp2_blocks, mlp2_scales)
    if use_asm is None:
        use_asm = x.is_cuda
    n_tokens = x.shape[0]
    pairs = n_tokens * k_sel
    routing: dict = {}
    if gates is None:
        n_experts = ids.shape[1]
        routing = dict(FROM_LOGITS=True, E=n_experts, E_PAD=triton.next_power_of_2(n_experts),
                       K_PAD=triton.next_power_of_2(k_sel))  # fmt: skip
        gates = ids
    else:
        ids = ids.reshape(-1).contiguous()
        gates = gates.reshape(-1).float().contiguous()
    dev = x.device
    if quantized is None:
        xq = torch.empty(n_tokens, 2 * hidden, dtype=torch.int8, device=dev)
        xs = torch.empty(n_tokens, hidden // 32, dtype=torch.float32, device=dev)
        _quantize_kernel[(n_tokens,)](
            x, xq, xs, K=hidden, G_PAD=triton.next_power_of_2(hidden // 32), num_warps=4
        )
    else:
        xq, xs = quantized
    aq = torch.empty(pairs, 2 * inter, dtype=torch.int8, device=dev)
    as_ = torch.empty(pairs, inter // out_group, dtype=torch.float32, device=dev)
    part = torch.empty(pairs, hidden, dtype=torch.float32, device=dev)
    out = torch.empty_like(x)
    table = decode_table(dev)
    w1 = mlp1_blocks.view(torch.int32)
    w2 = mlp2_blocks.view(torch.int32)
    k_arg = {"K_SEL": k_sel} if routing else {}
    pdl = pdl_enabled(x) and use_asm  # False off CUDA
    if x.is_cuda:
        if tiled and tuning_sweep():
            raise ValueError("tiled experts fix the expert kernels' blocks: no sweep over them")
        # (with tiled experts the one config of each is the tile's: `expert_layout`)
        _mlp1_tuned[(pairs, inter // out_group)](
            xq.view(torch.int32), xs, ids, w1, mlp1_scales, mlp1_bias, aq, as_, table,
            float(swiglu_limit), H=hidden, INTER=inter, K_SEL=k_sel, USE_ASM=use_asm, **routing,
            PDL=pdl, launch_pdl=pdl, OUT=out_group, TILED=tiled,
        )  # fmt: skip
        grid2 = lambda meta: (pairs, triton.cdiv(hidden, meta["BLOCK_N"]))  # noqa: E731
        _mlp2_tuned[grid2](
            aq.view(torch.int32), as_, ids, gates, w2, mlp2_scales, mlp2_bias, part, table,
            H=hidden, INTER=inter, USE_ASM=use_asm, **routing, **k_arg, PDL=pdl, launch_pdl=pdl,
            XG=out_group, TRIGGER=pdl, TILED=tiled,
        )  # fmt: skip
    else:  # the interpreter runs programs one by one: few, large programs are fastest (and
        # with PIPE=1, the GPU's look-ahead loop)
        block_g = min(8, triton.next_power_of_2(min(hidden, inter) // 32))
        block_n = min(64, triton.next_power_of_2(hidden))
        block_g2 = block_g
        if tiled:
            block_g, (block_n, block_g2) = MLP1_TILE[1], MLP2_TILE
        _mlp1_kernel[(pairs, inter // out_group)](
            xq.view(torch.int32), xs, ids, w1, mlp1_scales, mlp1_bias, aq, as_, table,
            float(swiglu_limit), H=hidden, INTER=inter, K_SEL=k_sel, BLOCK_G=block_g,
            USE_ASM=use_asm, **routing, OUT=out_group, PIPE=1, TILED=tiled,
        )  # fmt: skip
        _mlp2_kernel[(pairs, triton.cdiv(hidden, block_n))](
            aq.view(torch.int32), as_, ids, gates, w2, mlp2_scales, mlp2_bias, part, table,
            H=hidden, INTER=inter, BLOCK_N=block_n, BLOCK_G=block_g2, USE_ASM=use_asm,
            **routing, **k_arg, XG=out_group, PIPE=1, TILED=tiled,
        )  # fmt: skip
    block = 1024 if x.is_cuda else triton.next_power_of_2(hidden)
    # mlp2's dependent (PDL, triggered at mlp2's start): on an H100 (2026-11-22) a plain launch
    # after mlp2 decoded 551-553 tok/s at 1k and 473-474 at 32k, this 558 and 479-481.
    _combine_kernel[(n_tokens, triton.cdiv(hidden, block))](
        part, out, H=hidden, K_SEL=k_sel, BLOCK=block, num_warps=4,
        residual_ptr=residual, RESIDUAL=residual is not None, PDL=pdl_enabled(x),
        WAIT=pdl, **({"launch_pdl": True} if pdl else {}),
    )  # fmt: skip
    return out


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
    use_asm: bool | None = None,
) -> torch.Tensor:
    """Plain torch, float32 throughout, same signature (use_asm is ignored)."""
    del use_asm
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
