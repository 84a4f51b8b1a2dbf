from __future__ import annotations

import pytest
import torch

from gptoss_chat.kernels.attention_decode import attention_decode, attention_decode_ref
from gptoss_chat.kernels.attention_prefill import attention_prefill, attention_prefill_ref
from tests.kernels.helpers import rel_err


def _case(device, n_tokens, start, slots, n_heads, n_kv, head_dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n_tokens, n_heads, head_dim, generator=g).to(torch.bfloat16).to(device)
    k = torch.randn(slots, n_kv, head_dim, generator=g).to(torch.bfloat16).to(device)
    v = torch.randn(slots, n_kv, head_dim, generator=g).to(torch.bfloat16).to(device)
    sinks = torch.randn(n_heads, generator=g).to(device)
    return q, k, v, sinks, torch.tensor(start, device=device)


@pytest.mark.parametrize(
    ("start", "slots", "window"),
    [(0, 64, 0), (37, 64, 0), (90, 40, 8), (5, 40, 8), (200, 256, 0)],
)
def test_decode_matches_reference(device, start, slots, window) -> None:
    q, k, v, sinks, pos = _case(device, 1, start, slots, 4, 2, 16, seed=start)
    args = (q, k, v, sinks, pos, window, 0.25)
    assert rel_err(attention_decode(*args), attention_decode_ref(*args)) < 1e-2


@pytest.mark.parametrize(
    ("n_tokens", "start", "slots", "window"),
    [(20, 0, 32, 0), (20, 7, 32, 0), (20, 13, 32, 8), (3, 50, 16, 8)],
)
def test_prefill_matches_reference(device, n_tokens, start, slots, window) -> None:
    q, k, v, sinks, pos = _case(device, n_tokens, start, slots, 4, 2, 16, seed=n_tokens + start)
    args = (q, k, v, sinks, pos, window, 0.25)
    assert rel_err(attention_prefill(*args), attention_prefill_ref(*args)) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize(("start", "window"), [(1023, 0), (32767, 0), (1023, 128)])
def test_decode_full_shape(start, window) -> None:
    slots = 32768 if not window else 128
    q, k, v, sinks, pos = _case(torch.device("cuda"), 1, start, slots, 64, 8, 64)
    args = (q, k, v, sinks, pos, window, 0.125)
    assert rel_err(attention_decode(*args), attention_decode_ref(*args)) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize(("n_tokens", "window"), [(2048, 0), (2048, 128)])
def test_prefill_full_shape(n_tokens, window) -> None:
    slots = n_tokens if not window else window + n_tokens
    q, k, v, sinks, pos = _case(torch.device("cuda"), n_tokens, 0, slots, 64, 8, 64)
    args = (q, k, v, sinks, pos, window, 0.125)
    assert rel_err(attention_prefill(*args), attention_prefill_ref(*args)) < 1e-2
