"""MXFP4 mixture-of-experts for prefill: tokens grouped by expert, fp4 decoded inside the GEMM.

The (token, slot) pairs are sorted by expert on the device (argsort, scatter_add, cumsum: no
host sync, so a chunk never waits for the CPU and short chunks can be CUDA graphs). Each
expert's pairs are cut into tiles of BLOCK_M rows; program (tile, column block) finds its expert
from the tile offsets, gathers its tokens' activations and multiplies them by the expert's
weight, decoding each [columns, BLOCK_K] slice of packed fp4 + e8m0 scales to bf16 in registers
just before `tl.dot`: no bf16 copy of any expert is ever written. The launch grid is static
(every possible tile; programs past the last tile return at once).

1. `_grouped_mlp1_kernel`: act = swiglu(x W1_e^T + b1_e) for a tile of pairs, bf16 [P, I] in
   sorted order.
2. `_grouped_mlp2_kernel`: part[pair] = gate * (act W2_e^T + b2_e), float32 [P, H] in pair
   order; `_combine_kernel` of moe_decode sums each token's k partials (deterministic).
Extends the grouped-GEMM idea of gpt-oss `triton/moe.py` (`matmul_ogs` with routing data).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import dot, tuning_sweep
from gptoss_chat.kernels.expert_layout import MLP1_TILE, MLP2_TILE
from gptoss_chat.kernels.moe_decode import _combine_kernel
from gptoss_chat.kernels.mxfp4 import fp4_pair, scale_from_e8m0


@triton.jit
def _tile_rows(tile, tile_end_ptr, starts_ptr, ends_ptr, E: tl.constexpr, E_PAD: tl.constexpr,
               BLOCK_M: tl.constexpr):  # fmt: skip
    """(expert, sorted row indices [BLOCK_M], row mask) of a tile; expert == E past the end."""
    experts = tl.arange(0, E_PAD)
    tile_end = tl.load(tile_end_ptr + experts, mask=experts < E, other=2**30)
    expert = tl.sum((tile_end <= tile).to(tl.int32), axis=0)  # tiles are ordered by expert
    e_safe = tl.minimum(expert, E - 1)
    first_tile = tl.load(tile_end_ptr + e_safe) - tl.cdiv(
        tl.load(ends_ptr + e_safe) - tl.load(starts_ptr + e_safe), BLOCK_M
    )
    rows = tl.load(starts_ptr + e_safe) + (tile - first_tile) * BLOCK_M + tl.arange(0, BLOCK_M)
    ok = rows < tl.load(ends_ptr + e_safe)  # callers skip the tile when expert == E
    return expert, rows, ok


@triton.jit
def _row_starts(rows, K: tl.constexpr, TILED: tl.constexpr, TILE_ROWS: tl.constexpr):
    """The per-row parts of `_decode_tile`'s addresses, computed once before the loop over K
    (int32, in groups of 16 code bytes or of scales): each row's first group within its expert
    and 0, or, TILED (expert_layout.py: each block of TILE_ROWS rows stored step by step, then
    the rows' tails), the first group of its block and its row within the block."""
    if TILED:
        return (rows // TILE_ROWS) * (TILE_ROWS * (K // 32)), rows % TILE_ROWS
    else:
        return rows * (K // 32), rows * 0


@triton.jit
def _decode_tile(blocks_ptr, scales_ptr, starts, k0, K: tl.constexpr, R: tl.constexpr,
                 BLOCK_K: tl.constexpr, USE_PRMT: tl.constexpr, TILED: tl.constexpr = False,
                 TILE_ROWS: tl.constexpr = 1, TILE_GROUPS: tl.constexpr = 1):  # fmt: skip
    """Columns [k0, k0 + BLOCK_K) of one expert's MXFP4 weight (blocks_ptr [N, K/32, 16],
    scales_ptr [N, K/32]) at the R rows whose `_row_starts` are `starts` -> bf16 [R, BLOCK_K]
    in natural column order. TILED: BLOCK_K / 32 divides TILE_GROUPS, so a row's groups of one
    call are contiguous, in one step or in the tail; that step's (or the tail's) row stride and
    offset are scalars, so the loop over K stays one software-pipelined loop (a branch on k0
    around the addresses stopped Triton's pipelining: 8k prefill 0.33 s against 0.21)."""
    first, within = starts
    g0 = k0 // 32
    if TILED:
        n_groups: tl.constexpr = K // 32
        MAIN: tl.constexpr = n_groups - n_groups % TILE_GROUPS
        in_steps = g0 < MAIN
        stride = tl.where(in_steps, TILE_GROUPS, n_groups - MAIN)  # a row's piece of it
        offset = tl.where(in_steps,
                          (g0 // TILE_GROUPS) * (TILE_ROWS * TILE_GROUPS) + g0 % TILE_GROUPS,
                          MAIN * TILE_ROWS + g0 - MAIN)  # fmt: skip
        group = first + within * stride + offset
    else:
        group = first + g0
    at, at_s = group * 16, group
    packed = tl.load(blocks_ptr + at[:, None] + tl.arange(0, BLOCK_K // 2)[None, :])  # uint8
    lo, hi = fp4_pair(packed, USE_PRMT)  # [R, BK/2] float32
    scale = scale_from_e8m0(
        tl.load(scales_ptr + at_s[:, None] + tl.arange(0, BLOCK_K // 32)[None, :])
    )  # [R, BK/32]
    lo = tl.reshape(tl.reshape(lo, [R, BLOCK_K // 32, 16]) * scale[:, :, None], [R, BLOCK_K // 2])
    hi = tl.reshape(tl.reshape(hi, [R, BLOCK_K // 32, 16]) * scale[:, :, None], [R, BLOCK_K // 2])
    return tl.reshape(tl.join(lo, hi), [R, BLOCK_K]).to(tl.bfloat16)  # interleave lo, hi


@triton.jit
def _grouped_mlp1_kernel(
    x_ptr,  # [T, H] bf16
    order_ptr,  # [P] int64: pair ids sorted by expert
    starts_ptr,  # [E] int64: first sorted row of each expert
    ends_ptr,  # [E] int64
    tile_end_ptr,  # [E] int64: cumulative tile count
    blocks_ptr,  # [E, 2I, H/32, 16] uint8
    scales_ptr,  # [E, 2I, H/32] uint8
    bias_ptr,  # [E, 2I] bf16
    act_ptr,  # [P, I] bf16, sorted order
    limit,
    H: tl.constexpr,
    INTER: tl.constexpr,
    K_SEL: tl.constexpr,
    E: tl.constexpr,
    E_PAD: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_I: tl.constexpr,
    BLOCK_K: tl.constexpr,
    USE_PRMT: tl.constexpr,
    UPCAST: tl.constexpr,
    TILED: tl.constexpr = False,
    TILE_ROWS: tl.constexpr = 1,
    TILE_GROUPS: tl.constexpr = 1,
):
    expert, rows, ok = _tile_rows(tl.program_id(0), tile_end_ptr, starts_ptr, ends_ptr, E, E_PAD,
                                  BLOCK_M)  # fmt: skip
    if expert < E:
        tokens = tl.load(order_ptr + rows, mask=ok, other=0) // K_SEL  # [BM]
        w_rows = tl.program_id(1) * 2 * BLOCK_I + tl.arange(0, 2 * BLOCK_I)  # glu/lin interleaved
        e64 = expert.to(tl.int64)
        expert_blocks = blocks_ptr + e64 * 2 * INTER * (H // 2)
        expert_scales = scales_ptr + e64 * 2 * INTER * (H // 32)
        starts = _row_starts(w_rows, H, TILED, TILE_ROWS)
        acc = tl.zeros([BLOCK_M, 2 * BLOCK_I], dtype=tl.float32)
        for k0 in range(0, H, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            xs = tl.load(x_ptr + tokens[:, None] * H + ks[None, :], mask=ok[:, None], other=0.0)
            w = _decode_tile(expert_blocks, expert_scales, starts, k0, H, 2 * BLOCK_I, BLOCK_K,
                             USE_PRMT, TILED, TILE_ROWS, TILE_GROUPS)  # fmt: skip
            acc += dot(xs, tl.trans(w), UPCAST)
        acc += tl.load(bias_ptr + e64 * 2 * INTER + w_rows).to(tl.float32)[None, :]
        acc = acc.to(tl.bfloat16).to(tl.float32)  # the reference's bf16 linear output
        glu, lin = tl.split(tl.reshape(acc, [BLOCK_M, BLOCK_I, 2]))
        glu = tl.minimum(glu, limit)
        lin = tl.minimum(tl.maximum(lin, -limit), limit)
        act = glu * tl.sigmoid(1.702 * glu) * (lin + 1.0)
        cols = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
        tl.store(act_ptr + rows[:, None] * INTER + cols[None, :], act.to(tl.bfloat16),
                 mask=ok[:, None])  # fmt: skip


@triton.jit
def _grouped_mlp2_kernel(
    act_ptr,  # [P, I] bf16, sorted order
    order_ptr,
    starts_ptr,
    ends_ptr,
    tile_end_ptr,
    gate_ptr,  # [P] float32 routing weight of each pair
    blocks_ptr,  # [E, H, I/32, 16] uint8
    scales_ptr,  # [E, H, I/32] uint8
    bias_ptr,  # [E, H] bf16
    part_ptr,  # [P, H] float32, pair order
    H: tl.constexpr,
    INTER: tl.constexpr,
    E: tl.constexpr,
    E_PAD: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    USE_PRMT: tl.constexpr,
    UPCAST: tl.constexpr,
    TILED: tl.constexpr = False,
    TILE_ROWS: tl.constexpr = 1,
    TILE_GROUPS: tl.constexpr = 1,
):
    expert, rows, ok = _tile_rows(tl.program_id(0), tile_end_ptr, starts_ptr, ends_ptr, E, E_PAD,
                                  BLOCK_M)  # fmt: skip
    if expert < E:
        pairs = tl.load(order_ptr + rows, mask=ok, other=0)  # [BM]
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        e64 = expert.to(tl.int64)
        expert_blocks = blocks_ptr + e64 * H * (INTER // 2)
        expert_scales = scales_ptr + e64 * H * (INTER // 32)
        starts = _row_starts(cols, INTER, TILED, TILE_ROWS)
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        for k0 in range(0, INTER, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            a = tl.load(act_ptr + rows[:, None] * INTER + ks[None, :], mask=ok[:, None], other=0.0)
            w = _decode_tile(expert_blocks, expert_scales, starts, k0, INTER, BLOCK_N, BLOCK_K,
                             USE_PRMT, TILED, TILE_ROWS, TILE_GROUPS)  # fmt: skip
            acc += dot(a, tl.trans(w), UPCAST)
        acc += tl.load(bias_ptr + e64 * H + cols).to(tl.float32)[None, :]
        acc = acc.to(tl.bfloat16).to(tl.float32)  # the reference's bf16 linear output
        gate = tl.load(gate_ptr + pairs, mask=ok, other=0.0)
        tl.store(part_ptr + pairs[:, None] * H + cols[None, :], acc * gate[:, None],
                 mask=ok[:, None])  # fmt: skip


def _blocks(cuda: bool) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_I, BLOCK_N, BLOCK_K) on the CPU; on a GPU the last three come from
    `WINNERS` (or a sweep), powers of two up to 64, so H and I must be multiples of 64
    (2880 = 45 x 64). moe_grouped picks BLOCK_M by the tokens per expert."""
    return (64, 64, 64, 64) if cuda else (16, 16, 32, 32)


def fits(hidden: int, inter: int, cuda: bool) -> bool:
    _, block_i, block_n, block_k = _blocks(cuda)
    return hidden % block_k == 0 and hidden % block_n == 0 and inter % max(block_k, block_i) == 0


LARGE_TILE = 128
"""BLOCK_M once experts average at least this many rows (prompts of >= 1024 tokens)."""

WINNERS = {
    # (kernel, 128-row tiles) -> (columns, BLOCK_K, warps, stages): H100 sweep of 2026-11-22 at
    # 8192 tokens, experts in the checkpoint's layout (tiled ones: TILED_WINNERS). 128-row
    # tiles halve the fp4 decoding per FLOP: mlp1 4.06 -> 3.09 ms and mlp2 3.52 -> 2.82 ms a
    # layer against the 64-row winner.
    ("mlp1", False): (64, 64, 4, 3),
    ("mlp1", True): (64, 64, 8, 3),
    ("mlp2", False): (64, 64, 4, 3),
    ("mlp2", True): (64, 64, 4, 2),
}
TILED_WINNERS = {
    ("mlp1", True): (64, 64, 4, 3),
    ("mlp2", True): (64, 64, 4, 3),
}
"""Where tiled experts (expert_layout.py, what a GPU engine runs) want other blocks than
`WINNERS`, which were swept on the checkpoint's layout. On an H100 (2026-11-22, one layer's
MoE at 8192 tokens, benchmarks/moe_prefill_blocks.py): tiled 6.75 / 6.76 ms with these, 7.38 /
7.38 with WINNERS' (the checkpoint's layout: 6.34 / 6.29 with WINNERS', 7.56 / 7.33 with these);
an 8k-token prompt's prefill (benchmarks/engine.py) 0.228 against 0.244 / 0.242 s. The 64- and
16-row tiles' winners are the same for both layouts (a sweep at 512 and 51 tokens)."""


def _sweep_configs(cols: str) -> list[triton.Config]:
    """What GPTOSS_TRITON_AUTOTUNE=1 times at first use of each (H, I, BLOCK_M)."""
    return [
        triton.Config({cols: c, "BLOCK_K": k}, num_warps=w, num_stages=st)
        for c, k, w, st in [
            (32, 64, 4, 3),
            (64, 64, 4, 3),
            (64, 64, 8, 3),
            (32, 64, 4, 4),
            (64, 64, 8, 4),
            (64, 64, 4, 2),
            (64, 32, 4, 4),
            (32, 32, 4, 5),
        ]
    ]


def _launch_meta(kernel: str, cols: str, block_m: int, tiled: bool) -> dict:
    key = (kernel, block_m >= LARGE_TILE)
    columns, block_k, warps, stages = (tiled and TILED_WINNERS.get(key)) or WINNERS[key]
    return {cols: columns, "BLOCK_K": block_k, "num_warps": warps, "num_stages": stages}


_mlp1_tuned = triton.autotune(_sweep_configs("BLOCK_I"), key=["H", "INTER", "BLOCK_M"])(
    _grouped_mlp1_kernel
)
_mlp2_tuned = triton.autotune(_sweep_configs("BLOCK_N"), key=["H", "INTER", "BLOCK_M"])(
    _grouped_mlp2_kernel
)


def moe_grouped(
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
    *,
    tiled: bool = False,
) -> torch.Tensor:
    """Same contract as `moe_decode.moe_experts`, for many tokens (no host sync). Needs H and I
    to be multiples of the block sizes (64 on a GPU: true of every gpt-oss); `fits` says.
    tiled: the blocks and scales are laid out by `expert_layout.tile`."""
    n_tokens, hidden = x.shape
    n_experts, two_inter = mlp1_blocks.shape[:2]
    inter = two_inter // 2
    k_sel = expert_ids.shape[1]
    pairs = n_tokens * k_sel
    flat = expert_ids.reshape(-1)
    order = torch.argsort(flat, stable=True)  # [P]
    # not torch.bincount: on CUDA it reads the largest id on the host (a sync, and an error
    # inside a CUDA graph capture)
    counts = torch.zeros(n_experts, dtype=torch.int64, device=x.device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))  # [E]
    ends = torch.cumsum(counts, 0)
    starts = ends - counts
    cuda = x.is_cuda
    block_m, block_i, block_n, block_k = _blocks(cuda)
    if cuda and pairs < 64 * n_experts:  # a short chunk: tiles of 16 waste fewer MMA rows
        block_m = 16
    elif cuda and pairs >= LARGE_TILE * n_experts:
        block_m = LARGE_TILE
    tile_end = torch.cumsum(torch.div(counts + block_m - 1, block_m, rounding_mode="floor"), 0)
    max_tiles = triton.cdiv(pairs, block_m) + n_experts
    gates = expert_weights.reshape(-1).float().contiguous()
    act = torch.empty(pairs, inter, dtype=torch.bfloat16, device=x.device)
    part = torch.empty(pairs, hidden, dtype=torch.float32, device=x.device)
    common = dict(E=n_experts, E_PAD=triton.next_power_of_2(n_experts), BLOCK_M=block_m,
                  USE_PRMT=cuda, UPCAST=not cuda)  # fmt: skip
    args1 = (x, order, starts, ends, tile_end, mlp1_blocks, mlp1_scales, mlp1_bias, act,
             float(swiglu_limit))  # fmt: skip
    args2 = (act, order, starts, ends, tile_end, gates, mlp2_blocks, mlp2_scales, mlp2_bias, part)
    # Every BLOCK_K here (32 or 64) reads whole groups of one tiled step or tail (expert_layout).
    tiles1 = dict(TILED=True, TILE_ROWS=MLP1_TILE[0], TILE_GROUPS=MLP1_TILE[1]) if tiled else {}
    tiles2 = dict(TILED=True, TILE_ROWS=MLP2_TILE[0], TILE_GROUPS=MLP2_TILE[1]) if tiled else {}
    if cuda and tuning_sweep():
        grid1 = lambda meta: (max_tiles, triton.cdiv(inter, meta["BLOCK_I"]))  # noqa: E731
        _mlp1_tuned[grid1](*args1, H=hidden, INTER=inter, K_SEL=k_sel, **common, **tiles1)
        grid2 = lambda meta: (max_tiles, triton.cdiv(hidden, meta["BLOCK_N"]))  # noqa: E731
        _mlp2_tuned[grid2](*args2, H=hidden, INTER=inter, **common, **tiles2)
    elif cuda:
        meta1 = _launch_meta("mlp1", "BLOCK_I", block_m, tiled)
        _grouped_mlp1_kernel[(max_tiles, triton.cdiv(inter, meta1["BLOCK_I"]))](
            *args1, H=hidden, INTER=inter, K_SEL=k_sel, **common, **meta1, **tiles1
        )
        meta2 = _launch_meta("mlp2", "BLOCK_N", block_m, tiled)
        _grouped_mlp2_kernel[(max_tiles, triton.cdiv(hidden, meta2["BLOCK_N"]))](
            *args2, H=hidden, INTER=inter, **common, **meta2, **tiles2
        )
    else:
        _grouped_mlp1_kernel[(max_tiles, triton.cdiv(inter, block_i))](
            *args1, H=hidden, INTER=inter, K_SEL=k_sel, BLOCK_I=block_i, BLOCK_K=block_k,
            num_warps=4, **common, **tiles1,
        )  # fmt: skip
        _grouped_mlp2_kernel[(max_tiles, triton.cdiv(hidden, block_n))](
            *args2, H=hidden, INTER=inter, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=4,
            **common, **tiles2,
        )  # fmt: skip
    out = torch.empty_like(x)
    block = 1024 if cuda else triton.next_power_of_2(hidden)
    _combine_kernel[(n_tokens, triton.cdiv(hidden, block))](
        part, out, H=hidden, K_SEL=k_sel, BLOCK=block, num_warps=4
    )
    return out
