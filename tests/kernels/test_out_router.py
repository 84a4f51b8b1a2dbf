"""The out projection with the router in its epilogue (`gemv.linear_residual_route`,
`moe.out_proj_moe_block`) against the two launches it replaces: `linear_residual`, then
`norm_router_logits(..., quantized=...)`.

Everything must be bit for bit the same (the new x, the normed row, the logits, the fixed-point
bytes and steps), so the experts chosen never change. The shapes include more experts than the
GEMV's own grid has programs (the launcher widens the grid to E) and fewer. The arrival counters
must be back at zero after every call: a CUDA graph replays the launch with the same counters.
Under the interpreter the last program computes every logit (programs run one by one, so none
may wait for a later one); on a GPU the last E arrivals compute one each.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gptoss_chat.kernels import common
from gptoss_chat.kernels.common import tuning_sweep
from gptoss_chat.kernels.gemv import arrival_counters, linear_residual, linear_residual_route
from gptoss_chat.kernels.moe import moe_block, out_proj_moe_block
from gptoss_chat.kernels.router import norm_router_logits
from gptoss_chat.model.ops import out_proj_moe_block_torch, rms_norm_torch
from tests.kernels.helpers import random_experts, rel_err

EPS = 1e-5


def _bf16(*shape: int, seed: int, scale: float = 1.0, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * scale).to(torch.bfloat16).to(device)


def _case(n_experts: int, hidden: int, k: int, device: torch.device, seed: int = 0):
    """attn [1, k], out weight [hidden, k] and bias, residual x [1, hidden], norm scale, experts."""
    g = torch.Generator().manual_seed(seed + 100)
    scale = (torch.rand(hidden, generator=g) + 0.5).to(device)
    return (_bf16(1, k, seed=seed, device=device),
            _bf16(hidden, k, seed=seed + 1, scale=k**-0.5, device=device),
            _bf16(hidden, seed=seed + 2, scale=0.1, device=device),
            _bf16(1, hidden, seed=seed + 3, scale=3.0, device=device), scale,
            random_experts(n_experts, hidden, 64, device, seed=seed))  # fmt: skip


def _two_launches(attn, w, b, x, scale, experts):
    mid = linear_residual(attn, w, b, x)
    hidden = x.shape[1]
    fixed = (torch.empty(1, 2 * hidden, dtype=torch.int8, device=x.device),
             torch.empty(1, hidden // 32, dtype=torch.float32, device=x.device))  # fmt: skip
    normed, logits = norm_router_logits(
        mid, scale, EPS, experts.gate_weight, experts.gate_bias, quantized=fixed
    )
    return mid, normed, logits, fixed


def _assert_same(fused, unfused) -> None:
    (mid, normed, logits, (xq, xs)), (ref_mid, ref_normed, ref_logits, (ref_xq, ref_xs)) = (
        fused,
        unfused,
    )
    assert torch.equal(mid, ref_mid), "the new residual row"
    assert torch.equal(normed, ref_normed), "the normed row"
    assert torch.equal(logits, ref_logits), "the router logits"
    assert torch.equal(xq, ref_xq) and torch.equal(xs, ref_xs), "the fixed-point row"


# (experts, hidden, attention width): the interpreter's GEMV grid is ceil(hidden / 64) programs;
# 2880 is the real hidden size (90 groups of 32 shared among 32 routers, 4 each)
SHAPES = [(4, 64, 96), (4, 320, 64), (32, 64, 64), (128, 96, 64), (32, 2880, 32)]


@pytest.mark.parametrize(("n_experts", "hidden", "k"), SHAPES)
def test_fused_router_equals_two_launches(device, n_experts, hidden, k) -> None:
    attn, w, b, x, scale, experts = _case(n_experts, hidden, k, device, seed=n_experts + hidden)
    unfused = _two_launches(attn, w, b, x, scale, experts)
    for _ in range(2):  # the second call finds the counters the first one left
        fused = linear_residual_route(
            attn, w, b, x, scale, EPS, experts.gate_weight, experts.gate_bias
        )
        _assert_same(fused, unfused)
        assert arrival_counters(device, w.data_ptr()).tolist() == [0, 0]


def test_fused_router_without_bias(device) -> None:
    attn, w, _, x, scale, experts = _case(8, 64, 64, device, seed=5)
    fused = linear_residual_route(attn, w, None, x, scale, EPS, experts.gate_weight,
                                  experts.gate_bias)  # fmt: skip
    _assert_same(fused, _two_launches(attn, w, None, x, scale, experts))


@pytest.mark.parametrize("n_tokens", [1, 3])
def test_out_proj_moe_block_equals_its_two_entries(device, monkeypatch, n_tokens) -> None:
    monkeypatch.setenv("GPTOSS_ROUTER_EPILOGUE", "1")
    _, w, b, _, scale, experts = _case(8, 64, 96, device, seed=n_tokens)
    attn = _bf16(n_tokens, 96, seed=7, device=device)
    x = _bf16(n_tokens, 64, seed=8, scale=3.0, device=device)
    fused = out_proj_moe_block(attn, w, b, x, scale, EPS, experts, 2, 7.0)
    composed = moe_block(linear_residual(attn, w, b, x), scale, EPS, experts, 2, 7.0)
    assert torch.equal(fused, composed)
    reference = out_proj_moe_block_torch(attn, w, b, x, scale, EPS, experts, 2, 7.0)
    assert rel_err(fused, reference) < 2e-2


def test_router_epilogue_is_off_by_default(device, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without GPTOSS_ROUTER_EPILOGUE=1 (slower on an H100) the two entries run: no counters."""
    monkeypatch.delenv("GPTOSS_ROUTER_EPILOGUE", raising=False)
    attn, w, b, x, scale, experts = _case(8, 64, 96, device, seed=11)
    before = common.arrival_counters.cache_info().currsize
    out = out_proj_moe_block(attn, w, b, x, scale, EPS, experts, 2, 7.0)
    assert common.arrival_counters.cache_info().currsize == before
    assert torch.equal(out, moe_block(linear_residual(attn, w, b, x), scale, EPS, experts, 2, 7.0))


def test_fused_router_rejects_mismatched_shapes(device) -> None:
    attn, w, b, x, scale, experts = _case(4, 64, 96, device)
    gate, gate_bias = experts.gate_weight, experts.gate_bias
    with pytest.raises(ValueError, match="one token"):
        linear_residual_route(attn.expand(2, -1).contiguous(), w, b, x.expand(2, -1), scale, EPS,
                              gate, gate_bias)  # fmt: skip
    with pytest.raises(ValueError, match="gate"):
        linear_residual_route(attn, w, b, x, scale, EPS, gate[:, :32].contiguous(), gate_bias)
    with pytest.raises(ValueError, match="norm scale"):
        linear_residual_route(attn, w, b, x, scale[:32], EPS, gate, gate_bias)


# --- full shapes on a GPU: 20b (32 experts) and 120b (128), inside a CUDA graph ----------------


@pytest.mark.gpu
@pytest.mark.parametrize("n_experts", [32, 128])
def test_fused_router_full_shape_in_graph(n_experts, monkeypatch) -> None:
    monkeypatch.setenv("GPTOSS_ROUTER_EPILOGUE", "1")
    if tuning_sweep():
        pytest.skip("the autotuned linear_residual may run other blocks than the fused launch")
    dev = torch.device("cuda")
    attn, w, b, x, scale, experts = _case(n_experts, 2880, 4096, dev, seed=n_experts)
    unfused = _two_launches(attn, w, b, x, scale, experts)
    eager = linear_residual_route(attn, w, b, x, scale, EPS, experts.gate_weight,
                                  experts.gate_bias)  # fmt: skip
    _assert_same(eager, unfused)
    # against cuBLAS's bf16 logits of the same normed row (another summation order: a logit
    # within float32 noise of a bf16 rounding boundary may round the other way)
    ref_logits = F.linear(eager[1], experts.gate_weight, experts.gate_bias).float()
    differ = (eager[2] != ref_logits).sum().item()
    print(f"E {n_experts}: {differ} of {n_experts} logits differ from cuBLAS's (1 bf16 ulp max)")
    spacing = ref_logits.abs() * 2.0**-7 + 1e-30
    assert ((eager[2] - ref_logits).abs() <= spacing).all()
    assert rel_err(eager[1], rms_norm_torch(eager[0], scale, EPS)) < 1e-2
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = linear_residual_route(attn, w, b, x, scale, EPS, experts.gate_weight,
                                         experts.gate_bias)  # fmt: skip
    for _ in range(3):
        graph.replay()
        torch.cuda.synchronize()
        _assert_same(captured, unfused)
        assert arrival_counters(dev, w.data_ptr()).tolist() == [0, 0]
    fused_block = out_proj_moe_block(attn, w, b, x, scale, EPS, experts, 4, 7.0)
    composed = moe_block(linear_residual(attn, w, b, x), scale, EPS, experts, 4, 7.0)
    assert torch.equal(fused_block, composed)
