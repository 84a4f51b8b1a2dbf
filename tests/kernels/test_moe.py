from __future__ import annotations

import pytest
import torch

from gptoss_chat.kernels.dequant import dequantize, dequantize_ref
from gptoss_chat.kernels.moe import moe, moe_ref
from tests.kernels.helpers import random_experts, rel_err


def test_dequantize_is_exact(device) -> None:
    w = random_experts(1, 96, 64, device)
    blocks, scales = w.mlp1_blocks[0], w.mlp1_scales[0]
    assert torch.equal(dequantize(blocks, scales), dequantize_ref(blocks, scales))


@pytest.mark.parametrize("n_tokens", [1, 12])
def test_moe_op_matches_reference(device, n_tokens) -> None:
    w = random_experts(4, 64, 64, device, seed=n_tokens)
    g = torch.Generator().manual_seed(n_tokens)  # fixed inputs: no router near-tie by chance
    x = torch.randn(n_tokens, 64, generator=g).to(torch.bfloat16).to(device)
    assert rel_err(moe(x, w, 2, 7.0), moe_ref(x, w, 2, 7.0)) < 2e-2


@pytest.mark.gpu
def test_dequantize_full_shape_exact() -> None:
    w = random_experts(1, 2880, 2880, torch.device("cuda"))
    blocks, scales = w.mlp1_blocks[0], w.mlp1_scales[0]
    assert torch.equal(dequantize(blocks, scales), dequantize_ref(blocks, scales))


@pytest.mark.gpu
@pytest.mark.parametrize("n_tokens", [1, 2048])
def test_moe_op_full_shape(n_tokens) -> None:
    w = random_experts(32, 2880, 2880, torch.device("cuda"))
    x = torch.randn(n_tokens, 2880, device="cuda").to(torch.bfloat16)
    assert rel_err(moe(x, w, 4, 7.0), moe_ref(x, w, 4, 7.0)) < 2e-2


def test_grouped_prefill_matches_reference(device) -> None:
    from gptoss_chat.kernels.moe_prefill import moe_grouped
    from gptoss_chat.model.ops import route

    hidden, inter = (128, 128) if device.type == "cuda" else (96, 64)  # multiples of the blocks
    w = random_experts(4, hidden, inter, device, seed=5)
    x = torch.randn(21, hidden, device=device).to(torch.bfloat16)
    ids, gates = route(x, w, 2)
    out = moe_grouped(x, ids, gates, w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias, w.mlp2_blocks,
                      w.mlp2_scales, w.mlp2_bias, 7.0)  # fmt: skip
    assert rel_err(out, moe_ref(x, w, 2, 7.0)) < 2e-2
