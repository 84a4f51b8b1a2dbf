"""The experts' MXFP4 bytes laid out in the order the decode kernels read them.

A decode program of `_mlp1_kernel` reads 32 rows of one expert, 8 groups of 32 values (128
bytes) of each row a step; `_mlp2_kernel` 16 rows, 16 groups (256 bytes) a step. In the
checkpoint's layout those pieces lie a row (1,440 bytes) apart, so every step asks DRAM for 32
or 16 separate short pieces. `tile_experts` stores each such block of rows step by step instead:
the block's first step as one contiguous [rows, step] piece (4 KB), then the next, and the groups
left over after the last whole step ([rows, tail]) at the block's end. The bytes stay MXFP4 (no
copy is kept: the loader drops the checkpoint layout) and each block keeps its place, so the
layout is a permutation within every block of rows.

Measured on an H100 (2026-11-22): reading mlp1's 32 MB with plain loads took 12.6-13.0 us tiled
against 13.4-13.7 us in the checkpoint's order (`.devtree`-style probe); gpt-oss-20b decoded
+1.8-2.3% (after a 1k prompt and at 32k); its 8k prefill took 0.231 s against 0.208 s (the
grouped GEMM reads 32-byte pieces of 128 rows a step either way; why it is slower tiled is
open). gpt-oss-120b lost 1.5% tiled, so it stays untiled (`TILE_MAX_EXPERTS`).

Every kernel that reads a tiled expert computes the same addresses: the decode GEMVs
(`mxfp4_int8.mxfp4_fixed_row_dot` with TILED, `moe_decode._row_pointers`), the prefill grouped
GEMM (`moe_prefill._row_starts`), and `untile` for the per-expert fallback. The reference ops
never see a tiled expert: only the Triton table's `prepare_experts` tiles, and only bf16 experts
on a GPU (a float32 model runs the references).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from gptoss_chat.kernels.common import tuning_sweep
from gptoss_chat.model.ops import ExpertWeights

MLP1_TILE = (32, 8)
"""(rows, groups of 32 values) of one step of an mlp1 decode program: 2 x `moe_decode.MLP1_OUT`
rows, `BLOCK_G` groups."""
MLP2_TILE = (16, 16)
"""(rows, groups) of one step of an mlp2 decode program: its `BLOCK_N` and `BLOCK_G`."""


@dataclass(frozen=True)
class TiledExpertWeights(ExpertWeights):
    """`ExpertWeights` whose mlp1/mlp2 blocks and scales are tiled (`tile`) by `MLP1_TILE` and
    `MLP2_TILE`."""


def tileable(blocks: torch.Tensor, rows: int) -> bool:
    """Whether a [E, N, G, 16] weight splits into blocks of `rows` rows."""
    return blocks.dim() == 4 and blocks.shape[1] % rows == 0


def tile(
    blocks: torch.Tensor, scales: torch.Tensor, rows: int, groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N, G, 16] uint8 codes and [E, N, G] scales -> the same shapes, each block of `rows`
    rows stored as [step][row][groups x 16 bytes] for its G - G % groups first groups, then
    [row][the rest]. N must be a multiple of `rows`."""
    n_experts, n_rows, n_groups, _ = blocks.shape
    main = n_groups - n_groups % groups
    per_block = (n_experts, n_rows // rows, rows)
    codes = blocks.reshape(*per_block, n_groups * 16)
    head = codes[..., : main * 16].reshape(*per_block, main // groups, groups * 16)
    tiled = torch.cat([head.transpose(2, 3).reshape(*per_block[:2], -1),
                       codes[..., main * 16 :].reshape(*per_block[:2], -1)], dim=2)  # fmt: skip
    steps = scales.reshape(*per_block, n_groups)
    head_s = steps[..., :main].reshape(*per_block, main // groups, groups)
    tiled_s = torch.cat([head_s.transpose(2, 3).reshape(*per_block[:2], -1),
                         steps[..., main:].reshape(*per_block[:2], -1)], dim=2)  # fmt: skip
    return tiled.reshape(blocks.shape).contiguous(), tiled_s.reshape(scales.shape).contiguous()


def untile(
    blocks: torch.Tensor, scales: torch.Tensor, rows: int, groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`tile`'s inverse (the checkpoint's layout again); blocks may be [N, G, 16] (one expert)."""
    one = blocks.dim() == 3
    if one:
        blocks, scales = blocks[None], scales[None]
    n_experts, n_rows, n_groups, _ = blocks.shape
    main = n_groups - n_groups % groups
    per_block = (n_experts, n_rows // rows)
    codes = blocks.reshape(*per_block, rows * n_groups * 16)
    head = codes[..., : rows * main * 16].reshape(*per_block, main // groups, rows, groups * 16)
    tail = codes[..., rows * main * 16 :].reshape(*per_block, rows, -1)
    plain = torch.cat([head.transpose(2, 3).reshape(*per_block, rows, -1), tail], dim=3)
    steps = scales.reshape(*per_block, rows * n_groups)
    head_s = steps[..., : rows * main].reshape(*per_block, main // groups, rows, groups)
    tail_s = steps[..., rows * main :].reshape(*per_block, rows, -1)
    plain_s = torch.cat([head_s.transpose(2, 3).reshape(*per_block, rows, -1), tail_s], dim=3)
    plain, plain_s = plain.reshape(blocks.shape), plain_s.reshape(scales.shape)
    return (plain[0], plain_s[0]) if one else (plain.contiguous(), plain_s.contiguous())


TILE_MAX_EXPERTS = 32
"""Experts per layer up to which tiling pays. On an H100 (2026-11-22, engine.py's harness, one
process, plain against tiled): gpt-oss-20b (32 experts) decoded 577.8 / 578.3 against 588.8 /
590.5 tok/s after a 1k prompt, but gpt-oss-120b (128 experts, 64k cache) 412.5 / 410.1 against
405.6 / 404.6: tiled, the 120b lost 1.5%, for a reason not yet found (its 2k prefill gained)."""


def worth_tiling(weights: ExpertWeights) -> bool:
    """bf16 experts whose rows split into whole blocks, at most TILE_MAX_EXPERTS a layer."""
    return (weights.mlp1_bias.dtype == torch.bfloat16
            and weights.mlp1_blocks.shape[0] <= TILE_MAX_EXPERTS
            and tileable(weights.mlp1_blocks, MLP1_TILE[0])
            and tileable(weights.mlp2_blocks, MLP2_TILE[0]))  # fmt: skip


def tile_experts(weights: ExpertWeights) -> ExpertWeights:
    """The Triton table's `prepare_experts`: experts on a GPU that are `worth_tiling` come back
    tiled (`TiledExpertWeights`); anything else (and everything while GPTOSS_TRITON_AUTOTUNE
    sweeps the expert kernels' blocks) unchanged."""
    if isinstance(weights, TiledExpertWeights) or tuning_sweep():  # a sweep varies the blocks
        return weights
    rows1, groups1 = MLP1_TILE
    rows2, groups2 = MLP2_TILE
    if not weights.mlp1_blocks.is_cuda or not worth_tiling(weights):
        return weights
    values = {f.name: getattr(weights, f.name) for f in fields(weights)}
    values["mlp1_blocks"], values["mlp1_scales"] = tile(
        weights.mlp1_blocks, weights.mlp1_scales, rows1, groups1
    )
    values["mlp2_blocks"], values["mlp2_scales"] = tile(
        weights.mlp2_blocks, weights.mlp2_scales, rows2, groups2
    )
    return TiledExpertWeights(**values)


def untiled_experts(weights: ExpertWeights) -> ExpertWeights:
    """The checkpoint's layout of `weights` (a copy when they are tiled)."""
    if not isinstance(weights, TiledExpertWeights):
        return weights
    values = {f.name: getattr(weights, f.name) for f in fields(weights)}
    values["mlp1_blocks"], values["mlp1_scales"] = untile(
        weights.mlp1_blocks, weights.mlp1_scales, *MLP1_TILE
    )
    values["mlp2_blocks"], values["mlp2_scales"] = untile(
        weights.mlp2_blocks, weights.mlp2_scales, *MLP2_TILE
    )
    return ExpertWeights(**values)
