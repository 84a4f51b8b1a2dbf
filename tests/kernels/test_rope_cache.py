from __future__ import annotations

import pytest
import torch

from gptoss_chat.kernels.rope_cache import rope_cache
from gptoss_chat.model.ops import rope_cache_torch


def _case(device, n_tokens, slots, offset, n_heads=4, n_kv=2, head_dim=16):
    g = torch.Generator().manual_seed(n_tokens + offset)
    qkv = torch.randn(n_tokens, (n_heads + 2 * n_kv) * head_dim, generator=g)
    cos = torch.randn(n_tokens, head_dim // 2, generator=g)
    sin = torch.randn(n_tokens, head_dim // 2, generator=g)
    caches = [torch.randn(slots, n_kv, head_dim, generator=g) for _ in range(2)]
    bf = torch.bfloat16
    tensors = [t.to(bf).to(device) for t in (qkv, cos, sin, *caches)]
    return (*tensors, torch.tensor(offset, device=device), n_heads)


def _within_one_ulp(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Products rounded 1 ulp apart can leave a difference a few ulps of the operands' scale."""
    return (a.float() - b.float()).abs().max().item() <= 2**-6 * b.float().abs().max().item()


@pytest.mark.parametrize(("n_tokens", "slots", "offset"), [(1, 16, 5), (5, 8, 6), (3, 32, 0)])
def test_rope_cache_is_bit_exact(device, n_tokens, slots, offset) -> None:
    args = _case(device, n_tokens, slots, offset)
    ref_args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
    q = rope_cache(*args)
    q_ref = rope_cache_torch(*ref_args)
    # Bit-exact on a GPU; Triton's CPU interpreter rounds bf16 its own way (within 1 ulp).
    same = torch.equal if device.type == "cuda" else _within_one_ulp
    assert same(q, q_ref)
    assert same(args[3], ref_args[3])  # k cache, including the untouched slots
    assert torch.equal(args[4], ref_args[4])  # v cache: copied, never rounded


@pytest.mark.gpu
def test_rope_cache_full_shape() -> None:
    args = _case(torch.device("cuda"), 7, 8320, 8318, n_heads=64, n_kv=8, head_dim=64)
    ref_args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
    assert torch.equal(rope_cache(*args), rope_cache_torch(*ref_args))
    assert torch.equal(args[3], ref_args[3]) and torch.equal(args[4], ref_args[4])
