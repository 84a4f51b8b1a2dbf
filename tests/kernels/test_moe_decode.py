from __future__ import annotations

import pytest
import torch

from gptoss_chat.kernels.moe_decode import moe_experts, moe_experts_ref
from gptoss_chat.model.ops import route
from tests.kernels.helpers import random_experts, rel_err


def _run(
    device: torch.device,
    hidden: int,
    inter: int,
    n_experts: int,
    n_tokens: int,
    k: int,
    use_asm: bool | None,
) -> float:
    w = random_experts(n_experts, hidden, inter, device, seed=n_tokens)
    x = torch.randn(n_tokens, hidden, device=device).to(torch.bfloat16)
    ids, gates = route(x, w, k)
    args = (
        x,
        ids,
        gates,
        w.mlp1_blocks,
        w.mlp1_scales,
        w.mlp1_bias,
        w.mlp2_blocks,
        w.mlp2_scales,
        w.mlp2_bias,
        7.0,
    )
    out = moe_experts(*args, use_asm=use_asm)
    ref = moe_experts_ref(*args)
    assert out.shape == ref.shape and out.dtype == torch.bfloat16
    return rel_err(out, ref)


# (832, 544): several full steps of 8 groups on the interpreter (the look-ahead moves on) and a
# tail of 2 and 1 groups after them
@pytest.mark.parametrize(("hidden", "inter"), [(96, 64), (480, 224), (832, 544)])
def test_moe_decode_matches_reference_tiny(device: torch.device, hidden: int, inter: int) -> None:
    # 3, 15 and 7 groups of 32: whole steps, then narrower steps for what is left (4 + 2 + 1).
    err = _run(device, hidden=hidden, inter=inter, n_experts=4, n_tokens=2, k=2, use_asm=None)
    assert err < 1e-2


def test_moe_decode_rejects_bad_shapes(device: torch.device) -> None:
    w = random_experts(2, 64, 64, device)
    x = torch.randn(1, 96, device=device).to(torch.bfloat16)
    ids = torch.zeros(1, 1, dtype=torch.long, device=device)
    with pytest.raises(ValueError, match="do not fit"):
        moe_experts(
            x,
            ids,
            ids.float(),
            w.mlp1_blocks,
            w.mlp1_scales,
            w.mlp1_bias,
            w.mlp2_blocks,
            w.mlp2_scales,
            w.mlp2_bias,
            7.0,
        )


@pytest.mark.gpu
@pytest.mark.parametrize("use_asm", [False, True])
def test_moe_decode_full_shape(use_asm: bool) -> None:
    err = _run(torch.device("cuda"), 2880, 2880, 32, 1, 4, use_asm)
    assert err < 1e-2


def test_moe_from_router_logits_matches_reference(device: torch.device) -> None:
    from gptoss_chat.kernels.moe_decode import moe_experts_from_logits
    from gptoss_chat.kernels.router import router_logits

    w = random_experts(8, 64, 64, device, seed=11)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(3, 64, generator=g).to(torch.bfloat16).to(device)
    logits = router_logits(x, w.gate_weight, w.gate_bias)
    # Route the reference from the same logits: a bf16 near-tie between two experts would make
    # F.linear's rounding and the kernel's pick different experts, which tests nothing here.
    expected = torch.nn.functional.linear(x, w.gate_weight, w.gate_bias).float()
    assert ((logits - expected).abs() <= expected.abs() / 64 + 1e-3).all()  # within 1 bf16 ulp
    top = torch.topk(logits, 4, dim=-1)
    ids, gates = top.indices, torch.softmax(top.values, dim=-1).to(torch.bfloat16)
    out = moe_experts_from_logits(x, logits, 4, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias,
                                  w.mlp2_blocks, w.mlp2_scales, w.mlp2_bias, 7.0)  # fmt: skip
    ref = moe_experts_ref(x, ids, gates, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias,
                          w.mlp2_blocks, w.mlp2_scales, w.mlp2_bias, 7.0)  # fmt: skip
    assert rel_err(out, ref) < 1e-2


@pytest.mark.gpu
def test_moe_decode_asm_path_equals_integer_path() -> None:
    """The byte-permute + dp4a path computes the same integers as the plain-op path."""
    dev = torch.device("cuda")
    w = random_experts(32, 2880, 2880, dev, seed=5)
    x = torch.randn(2, 2880, device=dev).to(torch.bfloat16)
    ids, gates = route(x, w, 4)
    args = (x, ids, gates, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias, w.mlp2_blocks,
            w.mlp2_scales, w.mlp2_bias, 7.0)  # fmt: skip
    assert torch.equal(moe_experts(*args, use_asm=True), moe_experts(*args, use_asm=False))


@pytest.mark.parametrize("out_group", [16, 32])
def test_moe_decode_with_either_activation_group(device: torch.device, out_group: int) -> None:
    """mlp1 programs of 32 outputs (one fixed-point group each) or of 16 (twice the programs,
    mlp2 then scales each half-group of its products by its own step)."""
    from gptoss_chat.kernels.moe_decode import _launch

    w = random_experts(4, 96, 64, device, seed=7)
    x = torch.randn(2, 96, device=device).to(torch.bfloat16)
    ids, gates = route(x, w, 2)
    weights = (w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias, w.mlp2_blocks, w.mlp2_scales,
               w.mlp2_bias, 7.0)  # fmt: skip
    out = _launch(x, ids, gates, 2, *weights, None, out_group=out_group)
    assert rel_err(out, moe_experts_ref(x, ids, gates, *weights)) < 1e-2
