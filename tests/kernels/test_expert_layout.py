"""The tiled expert layout (`expert_layout.py`): the permutation itself, and every kernel that
reads it giving the checkpoint layout's results bit for bit (the interpreter in CI, full
gpt-oss shapes on a GPU)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
import torch

from gptoss_chat.kernels.expert_layout import (
    MLP1_TILE,
    MLP2_TILE,
    TILE_MAX_EXPERTS,
    TiledExpertWeights,
    tile,
    tile_experts,
    untile,
    untiled_experts,
    worth_tiling,
)
from gptoss_chat.kernels.moe_decode import moe_experts, moe_experts_from_logits
from gptoss_chat.kernels.moe_prefill import moe_grouped
from tests.kernels.helpers import random_experts

# mlp1: 1088 rows of 9 groups (one 8-group step + 1 left over); mlp2: 288 rows of 17 groups
# (one 16-group step + 1): both tiles have whole steps and a tail.
HIDDEN, INTER = 288, 544


def _tiled(weights):
    b1, s1 = tile(weights.mlp1_blocks, weights.mlp1_scales, *MLP1_TILE)
    b2, s2 = tile(weights.mlp2_blocks, weights.mlp2_scales, *MLP2_TILE)
    return b1, s1, b2, s2


def _tiled_weights(weights) -> TiledExpertWeights:
    b1, s1, b2, s2 = _tiled(weights)
    values = {f.name: getattr(weights, f.name) for f in fields(weights)}
    values.update(mlp1_blocks=b1, mlp1_scales=s1, mlp2_blocks=b2, mlp2_scales=s2)
    return TiledExpertWeights(**values)


def test_a_block_is_stored_step_by_step_then_its_tail() -> None:
    """Two experts of 4 rows x 5 groups, tiles of 2 rows x 2 groups: each block of 2 rows holds
    step 0 (groups 0-1 of both rows), step 1 (groups 2-3), then group 4 of both rows."""
    blocks = torch.arange(2 * 4 * 5, dtype=torch.int32).reshape(2, 4, 5, 1).repeat(1, 1, 1, 16)
    scales = torch.arange(2 * 4 * 5, dtype=torch.int32).reshape(2, 4, 5)
    tiled, tiled_s = tile(blocks.to(torch.uint8), scales.to(torch.uint8), 2, 2)
    order = tiled_s[0].reshape(-1).tolist()  # (row, group) of each stored scale: 5 r + g
    assert order[:10] == [0, 1, 5, 6, 2, 3, 7, 8, 4, 9]  # rows 0-1
    assert order[10:] == [10, 11, 15, 16, 12, 13, 17, 18, 14, 19]  # rows 2-3
    assert torch.equal(tiled[..., 0].to(torch.int32), tiled_s.to(torch.int32))  # codes alike
    assert torch.equal(tiled_s[1], scales[1].to(torch.uint8).reshape(-1)[tiled_s[0].reshape(-1)
                       .long()].reshape(4, 5) + 0 * tiled_s[1])  # fmt: skip


@pytest.mark.parametrize(("rows", "groups", "shape"),
                         [(32, 8, (3, 64, 10)), (16, 16, (2, 32, 18)), (16, 16, (2, 16, 3)),
                          (32, 8, (1, 32, 16))])  # fmt: skip
def test_untile_inverts_tile(rows: int, groups: int, shape: tuple[int, int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (*shape, 16), generator=g, dtype=torch.uint8)
    scales = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    tiled = tile(blocks, scales, rows, groups)
    assert not torch.equal(tiled[0], blocks) or shape[2] < groups  # a tail only: unchanged
    back = untile(*tiled, rows, groups)
    assert torch.equal(back[0], blocks) and torch.equal(back[1], scales)
    one = untile(tiled[0][0], tiled[1][0], rows, groups)  # one expert at a time
    assert torch.equal(one[0], blocks[0]) and torch.equal(one[1], scales[0])


def test_only_bf16_experts_on_a_gpu_are_tiled(device: torch.device) -> None:
    w = random_experts(2, HIDDEN, INTER, torch.device("cpu"), seed=0)
    assert worth_tiling(w)
    assert tile_experts(w) is w  # on the host: the references' layout stays
    assert not worth_tiling(replace(w, mlp1_bias=w.mlp1_bias.float()))  # a float32 model
    assert not worth_tiling(random_experts(2, 96, 40, torch.device("cpu"), seed=0))  # 80 rows
    many = random_experts(TILE_MAX_EXPERTS + 1, 64, 64, torch.device("cpu"), seed=0)
    assert not worth_tiling(many)  # gpt-oss-120b's 128 experts: slower tiled
    tiled = _tiled_weights(w)
    assert tile_experts(tiled) is tiled
    back = untiled_experts(tiled)
    assert type(back) is not TiledExpertWeights
    assert torch.equal(back.mlp1_blocks, w.mlp1_blocks) and torch.equal(
        back.mlp2_scales, w.mlp2_scales
    )
    assert untiled_experts(w) is w


def test_decode_kernels_read_tiled_experts(device: torch.device) -> None:
    """The expert GEMVs on tiled weights: the very same output (interpreter)."""
    w = random_experts(4, HIDDEN, INTER, device, seed=1)
    b1, s1, b2, s2 = _tiled(w)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, HIDDEN, generator=g).to(torch.bfloat16).to(device)
    logits = torch.randn(1, 4, generator=g).to(device)
    plain = moe_experts_from_logits(x, logits, 2, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias,
                                    w.mlp2_blocks, w.mlp2_scales, w.mlp2_bias, 7.0)  # fmt: skip
    tiled = moe_experts_from_logits(x, logits, 2, b1, s1, w.mlp1_bias, b2, s2, w.mlp2_bias, 7.0,
                                    tiled=True)  # fmt: skip
    assert torch.equal(plain, tiled)
    ids = torch.tensor([[3, 0]], device=device)
    gates = torch.tensor([[0.7, 0.3]], device=device)
    assert torch.equal(
        moe_experts(x, ids, gates, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias, w.mlp2_blocks,
                    w.mlp2_scales, w.mlp2_bias, 7.0),
        moe_experts(x, ids, gates, b1, s1, w.mlp1_bias, b2, s2, w.mlp2_bias, 7.0, tiled=True),
    )  # fmt: skip


def test_prefill_kernels_read_tiled_experts(
    device: torch.device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grouped GEMMs of prefill on tiled weights: the very same output (interpreter; tiles
    of 2 groups, so that small experts have steps and a tail: the addresses are computed from
    the tile's sizes, whatever they are)."""
    from gptoss_chat.kernels import moe_prefill

    tiles = (16, 2)
    monkeypatch.setattr(moe_prefill, "MLP1_TILE", tiles)
    monkeypatch.setattr(moe_prefill, "MLP2_TILE", tiles)
    hidden, inter = 96, 96  # 3 groups a row: one step of 2 and one left over
    w = random_experts(4, hidden, inter, device, seed=3)
    b1, s1 = tile(w.mlp1_blocks, w.mlp1_scales, *tiles)
    b2, s2 = tile(w.mlp2_blocks, w.mlp2_scales, *tiles)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(10, hidden, generator=g).to(torch.bfloat16).to(device)
    ids = torch.randint(0, 4, (10, 2), generator=g).to(device)
    gates = torch.rand(10, 2, generator=g).to(device)
    plain = moe_grouped(x, ids, gates, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias, w.mlp2_blocks,
                        w.mlp2_scales, w.mlp2_bias, 7.0)  # fmt: skip
    tiled = moe_grouped(x, ids, gates, b1, s1, w.mlp1_bias, b2, s2, w.mlp2_bias, 7.0, tiled=True)
    assert torch.equal(plain, tiled)


@pytest.mark.parametrize("kernel", ["mlp1", "mlp2"])
def test_prefill_blocks_follow_the_experts_layout(kernel: str) -> None:
    """128-row prefill tiles launch with `TILED_WINNERS` on tiled experts and with `WINNERS` on
    the checkpoint's layout (each layout's sweep winner); 64-row tiles with `WINNERS` on both."""
    from gptoss_chat.kernels import moe_prefill

    cols = "BLOCK_I" if kernel == "mlp1" else "BLOCK_N"

    def launched(block_m: int, tiled: bool) -> tuple[int, int, int, int]:
        meta = moe_prefill._launch_meta(kernel, cols, block_m, tiled)
        return meta[cols], meta["BLOCK_K"], meta["num_warps"], meta["num_stages"]

    large = moe_prefill.LARGE_TILE
    assert launched(large, True) == moe_prefill.TILED_WINNERS[(kernel, True)]
    assert launched(large, False) == moe_prefill.WINNERS[(kernel, True)]
    assert launched(64, True) == launched(64, False) == moe_prefill.WINNERS[(kernel, False)]


def test_the_float32_fallback_reads_tiled_experts_untiled() -> None:
    """A float32 model runs the reference MoE; handed tiled experts it still computes the
    reference's result (the table untiles them first)."""
    from gptoss_chat.kernels import build_ops
    from gptoss_chat.model.ops import TORCH_OPS

    w = random_experts(4, HIDDEN, INTER, torch.device("cpu"), seed=5)
    names = ("gate_weight", "gate_bias", "mlp1_bias", "mlp2_bias")
    w = replace(w, **{name: getattr(w, name).float() for name in names})
    tiled = _tiled_weights(w)
    x = torch.randn(3, HIDDEN, generator=torch.Generator().manual_seed(6))
    ops = build_ops(TORCH_OPS, torch.device("cpu"))
    assert torch.equal(ops.moe(x, tiled, 2, 7.0), TORCH_OPS.moe(x, w, 2, 7.0))


@pytest.mark.gpu
def test_full_shape_tiled_experts_on_the_gpu() -> None:
    """gpt-oss-20b's shapes on a GPU: `prepare_experts` tiles, and decode (one token, with the
    residual and the router's fixed point) and prefill give the untiled kernels' outputs."""
    from gptoss_chat.kernels import build_ops
    from gptoss_chat.model.ops import TORCH_OPS

    dev = torch.device("cuda")
    w = random_experts(32, 2880, 2880, dev, seed=7)
    ops = build_ops(TORCH_OPS, dev)
    tiled = ops.prepare_experts(w)
    assert isinstance(tiled, TiledExpertWeights)
    g = torch.Generator().manual_seed(8)
    for tokens in (1, 4, 300):
        x = torch.randn(tokens, 2880, generator=g).to(torch.bfloat16).to(dev)
        scale = (1 + 0.1 * torch.randn(2880, generator=g)).to(dev)
        plain_out = ops.moe_block(x, scale, 1e-5, w, 4, 7.0)
        tiled_out = ops.moe_block(x, scale, 1e-5, tiled, 4, 7.0)
        assert torch.equal(plain_out, tiled_out), tokens
