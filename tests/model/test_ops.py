"""The torch reference ops: paths that must agree with each other."""

from __future__ import annotations

import pytest
import torch

from gptoss_chat.model import ops
from gptoss_chat.model.ops import TORCH_OPS, ExpertWeights, attention_torch, moe_torch


@pytest.mark.parametrize("window", [0, 8])
def test_attention_in_query_blocks_equals_one_block(
    window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(50, 4, 16, generator=gen).bfloat16()
    k, v = (torch.randn(80, 2, 16, generator=gen).bfloat16() for _ in range(2))
    sinks = torch.randn(4, generator=gen)
    whole = attention_torch(q, k, v, sinks, torch.tensor(10), window, 0.25)
    monkeypatch.setattr(ops, "ATTENTION_SCORE_BUDGET", 300)  # blocks of a few queries
    assert torch.equal(attention_torch(q, k, v, sinks, torch.tensor(10), window, 0.25), whole)


def test_moe_gather_and_grouped_paths_agree() -> None:
    gen = torch.Generator().manual_seed(1)
    e, h, i = 8, 64, 64

    def blocks(rows: int, cols: int) -> torch.Tensor:
        return torch.randint(0, 256, (e, rows, cols // 32, 16), dtype=torch.uint8, generator=gen)

    weights = ExpertWeights(
        gate_weight=torch.randn(e, h, generator=gen),
        gate_bias=torch.zeros(e),
        mlp1_blocks=blocks(2 * i, h),
        mlp1_scales=torch.full((e, 2 * i, h // 32), 122, dtype=torch.uint8),
        mlp1_bias=torch.zeros(e, 2 * i),
        mlp2_blocks=blocks(h, i),
        mlp2_scales=torch.full((e, h, i // 32), 122, dtype=torch.uint8),
        mlp2_bias=torch.zeros(e, h),
    )
    x = torch.randn(6, h, generator=gen)  # float32 end to end: the paths differ only in order
    grouped = moe_torch(x, weights, 4, 7.0)  # 6 tokens x 4 experts >= 8: one expert at a time
    gathered = torch.cat([moe_torch(x[t : t + 1], weights, 4, 7.0) for t in range(6)])
    assert (grouped - gathered).abs().max() < 1e-4


def test_sampling() -> None:
    tie = torch.tensor([1.0, 3.0, 3.0, -2.0])
    assert TORCH_OPS.sample(tie, 0.0, 1.0, None).item() == 1  # a tie goes to the lowest id
    logits = torch.tensor([1.0, 3.0, 2.9, -2.0])  # probabilities 0.066, 0.489, 0.442, 0.003
    gen = torch.Generator().manual_seed(0)
    draws = {TORCH_OPS.sample(logits, 1.0, 0.4, gen).item() for _ in range(50)}
    assert draws == {1}  # top-p 0.4: the most likely token alone reaches it
    draws = {TORCH_OPS.sample(logits, 1.0, 0.9, gen).item() for _ in range(200)}
    assert draws == {1, 2}


def _multinomial_sample(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> int:
    """The sampler as it was written before it had to run in a CUDA graph (torch.multinomial,
    which checks its input on the host)."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        drop = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) >= top_p
        drop[0] = False
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        return int(order[torch.multinomial(sorted_probs, 1, generator=generator)[0]])
    return int(torch.multinomial(probs, 1, generator=generator)[0])


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 0.9), (1.3, 0.5)])
def test_sampling_draws_what_multinomial_draws(temperature: float, top_p: float) -> None:
    """The sync-free sampler consumes the generator exactly as torch.multinomial does, so a
    seed gives the same ids as before and in every decode path."""
    logits = torch.randn(300, 512, generator=torch.Generator().manual_seed(5)) * 3
    ours, theirs = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    for row in logits:
        expected = _multinomial_sample(row, temperature, top_p, theirs)
        assert int(TORCH_OPS.sample(row, temperature, top_p, ours)) == expected
