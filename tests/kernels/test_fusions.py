"""The fused decode kernels (norm + qkv GEMV, out GEMV + residual, norm + router) against the
unfused kernel sequence they replace and against the torch composition (the `Ops` defaults).

Under the interpreter the fused kernels equal the unfused Triton sequence bit for bit: the same
float32 reductions over the same blocks, and the interpreter's float32 -> bf16 conversion (it
truncates, see test_engine_kernels.py) applied at the same points. The residual add, which the
unfused sequence does in torch (round to nearest), is checked against the sum rounded the
interpreter's way. Against the torch composition they agree within the GEMV's existing
tolerance (rel 1e-2: bf16 rounding of the output). On a GPU both round to nearest, so the
residual epilogue is exact too; the norm prologue sums the squares with other warps than
rms_norm.py, so its 1/rms may differ in the last float32 bit, flipping a rare bf16 rounding.
"""

from __future__ import annotations

import pytest
import torch

from gptoss_chat.kernels.common import tuning_sweep
from gptoss_chat.kernels.gemv import gemv, linear_residual, norm_linear
from gptoss_chat.kernels.moe import moe, moe_block
from gptoss_chat.kernels.rms_norm import rms_norm
from gptoss_chat.kernels.router import norm_router_logits, router_logits
from gptoss_chat.model.ops import linear_residual_torch, moe_block_torch, norm_linear_torch
from tests.kernels.helpers import random_experts, rel_err

EPS = 1e-5


def _bf16(*shape: int, seed: int, scale: float = 1.0, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * scale).to(torch.bfloat16).to(device)


def _norm_scale(hidden: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(hidden, generator=g) + 0.5).to(device)


def _within_one_ulp(out: torch.Tensor, ref: torch.Tensor) -> bool:
    """|out - ref| <= one bf16 ulp of ref, element-wise."""
    ref32 = ref.float()
    _, exponent = torch.frexp(ref32)  # ref = m * 2**e, 0.5 <= |m| < 1; bf16 keeps 8 bits of m
    ulp = torch.ldexp(torch.ones_like(ref32), exponent - 8)
    return bool(((out.float() - ref32).abs() <= ulp).all())


def _truncate_to_bf16(t: torch.Tensor) -> torch.Tensor:
    """float32 -> bf16 the way Triton's interpreter converts: drop the low 16 bits."""
    return (t.view(torch.int32) & ~0xFFFF).view(torch.float32).to(torch.bfloat16)


@pytest.mark.parametrize(("n_tokens", "n", "k", "bias"), [(1, 40, 64, True), (3, 33, 96, False)])
def test_norm_linear_equals_norm_then_gemv(device, n_tokens, n, k, bias) -> None:
    x = _bf16(n_tokens, k, seed=n, scale=3.0, device=device)
    scale = _norm_scale(k, n, device)
    w = _bf16(n, k, seed=n + 1, device=device)
    b = _bf16(n, seed=n + 2, device=device) if bias else None
    fused = norm_linear(x, scale, EPS, w, b)
    unfused = gemv(rms_norm(x, scale, EPS), w, b)
    if device.type == "cpu" or not tuning_sweep():
        assert rel_err(fused, unfused) < 1e-3
    if device.type == "cpu":
        assert torch.equal(fused, unfused)
    assert rel_err(fused, norm_linear_torch(x, scale, EPS, w, b)) < 1e-2


def test_norm_linear_prefill_composes(device) -> None:
    x = _bf16(10, 64, seed=7, scale=3.0, device=device)  # > 8 tokens: rms_norm, then F.linear
    scale, w = _norm_scale(64, 7, device), _bf16(24, 64, seed=8, device=device)
    out = norm_linear(x, scale, EPS, w, None)
    assert rel_err(out, norm_linear_torch(x, scale, EPS, w, None)) < 1e-2


@pytest.mark.parametrize(("n_tokens", "bias"), [(1, True), (3, False), (10, True)])
def test_linear_residual_equals_gemv_then_add(device, n_tokens, bias) -> None:
    x = _bf16(n_tokens, 96, seed=n_tokens, device=device)
    w = _bf16(40, 96, seed=n_tokens + 1, scale=0.1, device=device)
    b = _bf16(40, seed=n_tokens + 2, device=device) if bias else None
    residual = _bf16(n_tokens, 40, seed=n_tokens + 3, scale=4.0, device=device)
    fused = linear_residual(x, w, b, residual)
    product = gemv(x, w, b)
    if device.type == "cpu" and n_tokens <= 8:  # the add in the kernel: the interpreter's rounding
        assert torch.equal(fused, _truncate_to_bf16(residual.float() + product.float()))
    if device.type == "cuda" and not tuning_sweep():
        assert torch.equal(fused, residual + product)
    assert _within_one_ulp(fused, residual + product)
    assert rel_err(fused, linear_residual_torch(x, w, b, residual)) < 1e-2


@pytest.mark.parametrize(("k", "block_k"), [(96, 16), (40, 16), (32, 16)])
def test_tiles_requested_before_the_wait_sum_as_the_loop(device, k, block_k) -> None:
    """The out projection's first `_PRE_TILES` weight tiles, requested before its PDL wait, are
    summed in the loop's order: the result equals one tile early, bit for bit (6 tiles, 4 early;
    3 tiles, the last partial; 2 tiles, fewer than 4)."""
    from gptoss_chat.kernels.gemv import _gemv_kernel

    x = _bf16(1, k, seed=k, device=device)
    w = _bf16(24, k, seed=k + 1, scale=0.1, device=device)
    b = _bf16(24, seed=k + 2, device=device)
    residual = _bf16(1, 24, seed=k + 3, scale=4.0, device=device)
    outs = []
    for pre in (1, 4):
        out = torch.empty(1, 24, dtype=torch.bfloat16, device=device)
        _gemv_kernel[(3, 1)](x, w, b, out, w, residual, 0.0, 24, K=k, K_PAD=128, HAS_BIAS=True,
                             NORM=False, RESIDUAL=True, BLOCK_N=8, BLOCK_K=block_k,
                             PRE=pre)  # fmt: skip
        outs.append(out)
    assert torch.equal(outs[0], outs[1])
    assert rel_err(outs[1], linear_residual_torch(x, w, b, residual)) < 1e-2


def test_fused_entries_reject_mismatched_shapes(device) -> None:
    x, w = _bf16(1, 64, seed=1, device=device), _bf16(8, 64, seed=2, device=device)
    with pytest.raises(ValueError, match="norm scale"):
        norm_linear(x, torch.ones(63, device=device), EPS, w, None)
    with pytest.raises(ValueError, match="residual"):
        linear_residual(x, w, None, _bf16(1, 9, seed=3, device=device))


def test_norm_router_logits_equal_norm_then_router(device) -> None:
    experts = random_experts(8, 96, 64, device, seed=2)
    x = _bf16(3, 96, seed=3, scale=3.0, device=device)
    scale = _norm_scale(96, 3, device)
    normed, logits = norm_router_logits(x, scale, EPS, experts.gate_weight, experts.gate_bias)
    ref_normed = rms_norm(x, scale, EPS)
    ref_logits = router_logits(ref_normed, experts.gate_weight, experts.gate_bias)
    if device.type == "cpu":
        assert torch.equal(normed, ref_normed) and torch.equal(logits, ref_logits)
    assert rel_err(normed, ref_normed) < 1e-2
    assert rel_err(logits, ref_logits) < 1e-2
    other_normed, other_logits = norm_router_logits(
        x, scale, EPS, experts.gate_weight, experts.gate_bias, blocks=(2, 32, 1)
    )  # several programs per token, several steps along the row: the first one writes the row
    assert torch.equal(other_normed, normed)
    assert rel_err(other_logits, logits) < 1e-2


@pytest.mark.parametrize("n_tokens", [1, 3, 10])
def test_moe_block_equals_norm_moe_add(device, n_tokens) -> None:
    experts = random_experts(4, 64, 64, device, seed=n_tokens)
    x = _bf16(n_tokens, 64, seed=n_tokens, scale=3.0, device=device)  # fixed: no router near-tie
    scale = _norm_scale(64, n_tokens, device)
    fused = moe_block(x, scale, EPS, experts, 2, 7.0)
    unfused = x + moe(rms_norm(x, scale, EPS), experts, 2, 7.0)
    if n_tokens <= 8:
        # The residual rides in the experts' combining launch: on a GPU its two bf16 roundings
        # are torch's; the interpreter truncates instead, so allow those two roundings there.
        ulps = 0 if device.type == "cuda" else 2
        spacing = unfused.float().abs() * 2.0**-7 + 1e-30
        assert ((fused.float() - unfused.float()).abs() <= ulps * spacing).all()
    else:  # prefill sizes compose the same launches
        assert torch.equal(fused, unfused)
    assert rel_err(fused, unfused) < 1e-2
    assert rel_err(fused, moe_block_torch(x, scale, EPS, experts, 2, 7.0)) < 2e-2


# --- full gpt-oss-20b shapes on a GPU ----------------------------------------------------------


@pytest.mark.gpu
def test_norm_qkv_full_shape() -> None:
    dev = torch.device("cuda")
    x = _bf16(1, 2880, seed=0, scale=3.0, device=dev)
    scale = _norm_scale(2880, 0, dev)
    w, b = _bf16(5120, 2880, seed=1, scale=0.02, device=dev), _bf16(5120, seed=2, device=dev)
    fused = norm_linear(x, scale, EPS, w, b)
    unfused = gemv(rms_norm(x, scale, EPS), w, b)
    differ = (fused != unfused).sum().item()
    print(f"norm+qkv: {differ} of 5120 outputs differ, rel {rel_err(fused, unfused):.1e}")
    assert rel_err(fused, unfused) < 1e-3
    assert rel_err(fused, norm_linear_torch(x, scale, EPS, w, b)) < 1e-2


@pytest.mark.gpu
def test_out_residual_full_shape() -> None:
    dev = torch.device("cuda")
    x = _bf16(1, 4096, seed=0, device=dev)
    w, b = _bf16(2880, 4096, seed=1, scale=0.02, device=dev), _bf16(2880, seed=2, device=dev)
    residual = _bf16(1, 2880, seed=3, scale=4.0, device=dev)
    fused = linear_residual(x, w, b, residual)
    unfused = residual + gemv(x, w, b)
    if not tuning_sweep():  # the same block sizes: the same sums, the same roundings
        assert torch.equal(fused, unfused)
    assert _within_one_ulp(fused, unfused)
    assert rel_err(fused, linear_residual_torch(x, w, b, residual)) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize("n_tokens", [1, 8])
def test_moe_block_full_shape(n_tokens) -> None:
    dev = torch.device("cuda")
    experts = random_experts(32, 2880, 2880, dev)
    x = _bf16(n_tokens, 2880, seed=n_tokens, scale=3.0, device=dev)
    scale = _norm_scale(2880, 0, dev)
    normed, logits = norm_router_logits(x, scale, EPS, experts.gate_weight, experts.gate_bias)
    ref_normed = rms_norm(x, scale, EPS)
    ref_logits = router_logits(ref_normed, experts.gate_weight, experts.gate_bias)
    assert rel_err(logits, ref_logits) < 1e-3
    assert _within_one_ulp(normed, ref_normed)
    assert (normed != ref_normed).float().mean().item() < 1e-2
    fused = moe_block(x, scale, EPS, experts, 4, 7.0)
    unfused = x + moe(ref_normed, experts, 4, 7.0)
    assert rel_err(fused, unfused) < 1e-2
    assert rel_err(fused, moe_block_torch(x, scale, EPS, experts, 4, 7.0)) < 2e-2
