from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.router import route, select_expert
from gptoss_chat.model.ops import route as route_ref
from tests.kernels.helpers import random_experts


@pytest.mark.parametrize(("n_experts", "k", "hidden"), [(8, 4, 64), (6, 2, 96)])
def test_router_matches_reference(device, n_experts, k, hidden) -> None:
    w = random_experts(n_experts, hidden, 64, device, seed=n_experts)
    g = torch.Generator().manual_seed(n_experts)  # fixed inputs: no bf16 near-tie by chance
    x = torch.randn(3, hidden, generator=g).to(torch.bfloat16).to(device)
    ids, gates = route(x, w.gate_weight, w.gate_bias, k)
    ref_ids, ref_gates = route_ref(x, w, k)
    assert torch.equal(ids, ref_ids)
    assert torch.allclose(gates.float(), ref_gates.float(), atol=1e-2)


@pytest.mark.gpu
def test_router_full_shape() -> None:
    w = random_experts(32, 2880, 64, torch.device("cuda"))
    x = torch.randn(8, 2880, device="cuda").to(torch.bfloat16)
    ids, gates = route(x, w.gate_weight, w.gate_bias, 4)
    ref_ids, _ = route_ref(x, w, 4)
    assert (ids == ref_ids).float().mean().item() > 0.9  # bf16 near-ties may swap an order
    assert torch.allclose(gates.float().sum(-1), torch.ones(8, device="cuda"), atol=1e-2)


@triton.jit
def _select_kernel(logits_ptr, ids_ptr, gates_ptr, E: tl.constexpr, E_PAD: tl.constexpr,
                   K: tl.constexpr, K_PAD: tl.constexpr):  # fmt: skip
    pair = tl.program_id(0)  # token * K + slot, as the expert kernels call it
    expert, gate = select_expert(logits_ptr, pair // K, pair % K, E, E_PAD, K, K_PAD)
    tl.store(ids_ptr + pair, expert)
    tl.store(gates_ptr + pair, gate)


def _selected(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens, n_experts = logits.shape
    ids = torch.empty(tokens * k, dtype=torch.int32, device=logits.device)
    gates = torch.empty(tokens * k, dtype=torch.float32, device=logits.device)
    _select_kernel[(tokens * k,)](logits, ids, gates, E=n_experts,
                                  E_PAD=triton.next_power_of_2(n_experts), K=k,
                                  K_PAD=triton.next_power_of_2(k))  # fmt: skip
    return ids.view(tokens, k), gates.view(tokens, k)


@pytest.mark.parametrize(
    ("n_experts", "k"),
    [(32, 4), (128, 4), (5, 4), (8, 2), (8, 1), (16, 6)],  # (16, 6): the rounds, not the keys
)
def test_select_expert_picks_as_the_router_does(device, n_experts, k) -> None:
    """Each expert program's own top-k of the router's (bf16-exact) logits: the k largest in
    order, a tie to the lower id (the router's rounds of max and min), -0.0 equal to +0.0,
    negative logits ordered by value, and the softmax of the k, rounded to bf16."""
    g = torch.Generator().manual_seed(n_experts + k)
    logits = torch.randn(24, n_experts, generator=g).to(torch.bfloat16).float()
    logits[::3, : n_experts // 2] = logits[::3, :1]  # many-way ties
    logits[1::4, :3] = 0.0
    logits[1::4, 1] = -0.0
    logits[2::5] = -logits[2::5].abs()  # all negative
    ids, gates = _selected(logits.to(device), k)
    for row, (got_ids, got_gates) in enumerate(zip(ids.cpu(), gates.cpu(), strict=True)):
        values = logits[row].tolist()
        order = sorted(range(n_experts), key=lambda e: (-values[e], e))[:k]
        assert got_ids.tolist() == order, row
        top = torch.tensor([values[e] for e in order])
        expected = torch.softmax(top, dim=0).to(torch.bfloat16).float()
        assert torch.allclose(got_gates, expected, rtol=2**-7, atol=0), row
