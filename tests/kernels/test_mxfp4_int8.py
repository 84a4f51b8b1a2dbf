"""The integer decode path of the decode GEMVs: table, fixed-point activations, layout."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.mxfp4_int8 import (
    DECODE_TABLE,
    FIXED_POINT_HI,
    fixed_x_offsets,
    fp4_doubled,
    quantize_fixed,
)
from gptoss_chat.model.mxfp4 import FP4_VALUES


@triton.jit
def _doubled_kernel(out_ptr):
    codes = tl.arange(0, 16)
    tl.store(out_ptr + codes, fp4_doubled(codes))


@triton.jit
def _quantize_kernel(x_ptr, hi_ptr, lo_ptr, step_ptr, G: tl.constexpr):
    idx = tl.arange(0, G)[:, None] * 32 + tl.arange(0, 32)[None, :]
    hi, lo, step = quantize_fixed(tl.load(x_ptr + idx), tl.full([G], True, tl.int1))
    tl.store(hi_ptr + idx, hi)
    tl.store(lo_ptr + idx, lo)
    tl.store(step_ptr + tl.arange(0, G), step)


@triton.jit
def _offsets_kernel(out_ptr, K: tl.constexpr):
    k = tl.arange(0, K)
    tl.store(out_ptr + k, fixed_x_offsets(k))


def test_doubled_codes_are_twice_the_fp4_values(device: torch.device) -> None:
    out = torch.empty(16, dtype=torch.int32, device=device)
    _doubled_kernel[(1,)](out)
    assert out.cpu().tolist() == [int(2 * v) for v in FP4_VALUES]


def test_decode_table_bytes_are_the_doubled_codes() -> None:
    table = torch.tensor(DECODE_TABLE, dtype=torch.int32).view(torch.int8).tolist()
    assert table == [int(2 * v) for v in FP4_VALUES]  # codes 0..15, one byte each


def test_fixed_point_is_exact_to_a_64516th_of_the_group_max(device: torch.device) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 32, generator=g) * torch.tensor([1e-3, 1.0, 30.0, 1e4])[:, None]
    x[1, 5] = 0.0
    x[3] = 0.0  # an all-zero group must not divide by zero
    x = x.to(device)
    hi = torch.empty(4, 32, dtype=torch.int8, device=device)
    lo = torch.empty_like(hi)
    step = torch.empty(4, device=device)
    _quantize_kernel[(1,)](x, hi, lo, step, G=4)
    back = step[:, None].double() * (FIXED_POINT_HI * hi.double() + lo.double())
    amax = x.abs().amax(dim=1, keepdim=True).double()
    assert ((back - x.double()).abs() <= amax / 64516 + 1e-30).all()
    assert hi.abs().max() <= 127 and lo.abs().max() <= 127
    assert torch.equal(back[3], torch.zeros(32, dtype=torch.float64, device=device))
    # bf16 rounding of the same values is coarser than the fixed point for all but tiny values
    bf16_err = (x.bfloat16().double() - x.double()).abs()
    assert (back - x.double()).abs().mean() < bf16_err.mean()


def test_fixed_offsets_interleave_hi_words_per_code_word(device: torch.device) -> None:
    out = torch.empty(64, dtype=torch.int32, device=device)
    _offsets_kernel[(1,)](out, K=64)
    offsets = out.cpu().tolist()
    # value k's hi byte, and its lo byte 8 further on, cover 2K bytes exactly once
    every = sorted(offsets + [o + 8 for o in offsets])
    assert every == list(range(128))
    # code word j (values 8j..8j+7) finds hi bytes 16j..16j+7: words 4j, 4j+1
    assert offsets[8:16] == list(range(16, 24))


@pytest.mark.parametrize("blocks", [None, (1, 32, 1), (4, 32, 1)])
def test_norm_router_writes_the_same_fixed_point_as_the_quantising_launch(
    device: torch.device, blocks: tuple[int, int, int] | None
) -> None:
    """Whichever program writes which groups of the row (blocks: experts a program, as on a
    GPU; (1, 32, 1) leaves 5 of 8 programs without a group, (4, 32, 1) gives the second of two
    programs a partial share), the row in fixed point is the quantising launch's."""
    from gptoss_chat.kernels.moe_decode import _quantize_kernel
    from gptoss_chat.kernels.router import norm_router_logits
    from tests.kernels.helpers import random_experts

    w = random_experts(8, 96, 64, device, seed=3)
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 96, generator=g) * 2).to(torch.bfloat16).to(device)
    scale = (1 + 0.1 * torch.randn(96, generator=g)).to(device)
    fixed = (torch.zeros(2, 192, dtype=torch.int8, device=device),
             torch.zeros(2, 3, dtype=torch.float32, device=device))  # fmt: skip
    normed, _ = norm_router_logits(
        x, scale, 1e-5, w.gate_weight, w.gate_bias, quantized=fixed, blocks=blocks
    )
    assert torch.equal(normed, norm_router_logits(x, scale, 1e-5, w.gate_weight, w.gate_bias)[0])
    xq = torch.empty_like(fixed[0])
    xs = torch.empty_like(fixed[1])
    _quantize_kernel[(2,)](normed, xq, xs, K=96, G_PAD=4, num_warps=4)
    assert torch.equal(fixed[0], xq) and torch.equal(fixed[1], xs)
    assert fixed[1].gt(0).all()
