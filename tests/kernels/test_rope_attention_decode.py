"""The fused decode attention (RoPE + KV write + split-K attention + merge, one launch) against
the launches it replaces (Triton rope_cache, attention_decode) and the torch composition.

The cache it writes must equal Triton rope_cache's bit for bit everywhere (the same roundings);
on a GPU that is also torch's, while Triton's CPU interpreter may round a bf16 product 1 ulp
away from torch (see test_rope_cache.py). The output is checked against torch's attention over
the q and cache rope_cache produced (the attention tests' tolerance, rel 1e-2) and, with real
cos/sin tables, against the full torch composition `rope_attention_decode_torch`.
"""

from __future__ import annotations

import math

import pytest
import torch

from gptoss_chat.kernels.attention_decode import attention_decode, decode_splits
from gptoss_chat.kernels.rope_attention_decode import rope_attention_decode
from gptoss_chat.kernels.rope_cache import rope_cache
from gptoss_chat.model.ops import attention_torch, rope_attention_decode_torch
from tests.kernels.helpers import rel_err


def _case(device, offset, slots, n_heads=4, n_kv=2, head_dim=16, seed=0):
    """qkv, cos, sin, k_cache, v_cache, sinks, offset: random, with cos/sin tables of real
    angles (positions 0 .. offset + 2: the op must pick row `offset`)."""
    g = torch.Generator(device=device).manual_seed(seed + offset)  # drawn where they are used:
    on = {"generator": g, "device": device}  # 2 x 67M values at 20b shapes are slow on a CPU
    qkv = torch.randn(1, (n_heads + 2 * n_kv) * head_dim, **on)
    angles = torch.rand(offset + 3, head_dim // 2, **on) * 2 * math.pi
    caches = [torch.randn(slots, n_kv, head_dim, **on) for _ in range(2)]
    tensors = [t.to(torch.bfloat16) for t in (qkv, angles.cos(), angles.sin(), *caches)]
    sinks = torch.randn(n_heads, **on)
    return (*tensors, sinks, torch.tensor(offset, device=device))


def _clone(args):
    return tuple(a.clone() for a in args)


def _within_one_ulp(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.float() - b.float()).abs().max().item() <= 2**-6 * b.float().abs().max().item()


def _check(device, offset, slots, window, n_heads, n_kv, head_dim=16) -> None:
    qkv, cos, sin, k, v, sinks, pos = _case(device, offset, slots, n_heads, n_kv, head_dim)
    ours_k, ours_v, rope_k, rope_v, torch_k, torch_v = _clone((k, v) * 3)
    scale = head_dim**-0.5
    out = rope_attention_decode(qkv, cos, sin, ours_k, ours_v, sinks, pos, window, scale, n_heads)
    row = slice(offset, offset + 1)  # what the op must have used
    q = rope_cache(qkv, cos[row], sin[row], rope_k, rope_v, pos, n_heads)
    ref = rope_attention_decode_torch(
        qkv, cos, sin, torch_k, torch_v, sinks, pos, window, scale, n_heads
    )
    assert out.shape == (1, n_heads * head_dim) and out.dtype == torch.bfloat16
    # the cache: exactly what rope_cache writes, and nothing else touched
    assert torch.equal(ours_k, rope_k) and torch.equal(ours_v, rope_v)
    slot = offset % slots
    assert not torch.equal(ours_k[slot], k[slot])  # the new key did land
    assert torch.equal(ours_v, torch_v)
    same = torch.equal if device.type == "cuda" else _within_one_ulp
    assert same(ours_k, torch_k)
    # the attention: against torch's over the same q and cache, and the whole torch composition
    assert rel_err(out, attention_torch(q, rope_k, rope_v, sinks, pos, window, scale)) < 1e-2
    # (the interpreter's q may sit 1 ulp from torch's: with many keys, whose average is small,
    # that alone moves the output by ~1e-2; on a GPU the rotations are torch's bit for bit)
    assert rel_err(out, ref) < (1e-2 if device.type == "cuda" else 2e-2)
    # against the two Triton launches it replaces (same cache, same q)
    assert rel_err(out, attention_decode(q, rope_k, rope_v, sinks, pos, window, scale)) < 1e-2


@pytest.mark.parametrize(
    ("offset", "slots", "window", "n_heads", "n_kv"),
    [
        (0, 64, 0, 4, 2),  # nothing cached yet: the current token and the sink only
        (37, 64, 0, 4, 2),  # one split
        (63, 64, 0, 2, 2),  # the buffer's last slot; one query head per kv head
        (90, 40, 8, 4, 2),  # sliding ring, wrapped around
        (5, 40, 8, 8, 1),  # sliding, window not yet full; 8 query heads share one kv head
        (300, 200, 128, 4, 2),  # gpt-oss's window, wrapped: its 127 keys as one 128-key tile
        (60, 200, 100, 4, 2),  # a 100-key window, not yet full: one 128-key tile, masked
    ],
)
def test_one_split(device, offset, slots, window, n_heads, n_kv) -> None:
    assert decode_splits(slots, window) == 1
    _check(device, offset, slots, window, n_heads, n_kv)


@pytest.mark.parametrize(
    ("offset", "slots", "window", "n_heads", "n_kv"),
    [
        (0, 2048, 0, 4, 2),  # every split empty: the merge sees no partial at all
        (70, 2048, 0, 4, 2),  # 32 splits, 2 of them with keys
        (700, 2048, 0, 8, 1),  # 11 live splits, GQA 8:1
        (2047, 2048, 0, 4, 2),  # the buffer's last slot, all 32 splits full (two levels)
        (300, 512, 0, 4, 2),  # 8 splits of one tile, 5 live
        (3000, 1040, 1024, 4, 2),  # sliding ring (2 splits) wrapped around
        (1030, 1040, 1024, 2, 2),  # sliding, first wrap
    ],
)
def test_several_splits(device, offset, slots, window, n_heads, n_kv) -> None:
    assert decode_splits(slots, window) > 1
    _check(device, offset, slots, window, n_heads, n_kv)


@pytest.mark.parametrize(
    ("slots", "window", "splits"),
    [
        (64, 0, 1),  # a full layer's buffer of one tile
        (512, 0, 8),  # a range per 64-key tile of the buffer...
        (4096, 0, 64),
        (131072, 0, 64),  # ...at most 64
        (200, 128, 1),  # gpt-oss's sliding window: one range (one 128-key tile)
        (1040, 1024, 2),  # a wider window: a range per ~512 keys of it
    ],
)
def test_decode_splits(slots, window, splits) -> None:
    """A full layer's ranges follow its buffer's tiles, so at a 1k context a 4,096-slot buffer
    scores one tile a range, as a 131k one does (before: 8 ranges of two tiles each)."""
    assert decode_splits(slots, window) == splits


@pytest.mark.parametrize(
    ("offset", "live"),
    [
        (1000, 16),  # one level: 16 splits in two chunks of 8
        (1050, 17),  # two levels: a group of 16 and a group of one
        (2500, 40),  # groups of 16, 16 and 8; the last 24 splits hold no keys
        (4090, 64),  # every split: four full groups
    ],
)
def test_merge_in_chunks(device, offset, live) -> None:
    """gpt-oss's head shape (8 query heads a kv head, D = 64) over 64 splits of 64 keys: the
    final merge takes 8 splits a chunk, and more than 16 live splits merge in groups first."""
    assert decode_splits(32768, 0) == 64 and math.ceil(offset / 64) == live
    _check(device, offset, 32768, 0, 8, 1, head_dim=64)


def test_merge_reads_only_what_this_call_wrote(device, monkeypatch) -> None:
    """The scratch starts out as NaN: splits without keys, splits past the live ones and the
    group rows of a two-level merge must never let a stale value reach the output."""
    real_empty = torch.empty

    def poisoned(*args, **kwargs):
        out = real_empty(*args, **kwargs)
        return out.fill_(float("nan")) if out.is_floating_point() else out

    monkeypatch.setattr(torch, "empty", poisoned)
    for offset in (0, 70):  # no split holds keys; 2 of 4 splits hold keys
        _check(device, offset, 2048, 0, 4, 2)
    _check(device, 1050, 32768, 0, 8, 1, head_dim=64)  # two levels, 17 of 64 splits live


@pytest.mark.parametrize(("slots", "window", "offset"), [(64, 0, 57), (2048, 0, 2041),
                                                       (32768, 0, 1500)])  # fmt: skip
def test_repeated_calls_are_identical(device, slots, window, offset) -> None:
    """The merge's arrival counters return to zero: a second call (as a graph replay would)
    merges again, in the same order, to the same bits (at 32768 slots: 24 of 64 splits live, in
    two levels)."""
    args = _case(device, offset, slots)
    qkv, cos, sin, k, v, sinks, pos = args
    first = rope_attention_decode(qkv, cos, sin, k, v, sinks, pos, window, 0.25, 4)
    k_after = k.clone()
    again = rope_attention_decode(qkv, cos, sin, k, v, sinks, pos, window, 0.25, 4)
    assert torch.equal(first, again) and torch.equal(k, k_after)


def test_rejects_bad_shapes(device) -> None:
    qkv, cos, sin, k, v, sinks, pos = _case(device, 3, 64)
    with pytest.raises(ValueError, match="one token"):
        rope_attention_decode(qkv.repeat(2, 1), cos, sin, k, v, sinks, pos, 0, 0.25, 4)
    with pytest.raises(ValueError, match="does not fit"):
        rope_attention_decode(qkv, cos, sin, k, v, sinks, pos, 0, 0.25, 3)
    with pytest.raises(ValueError, match="rotary tables"):  # a row of each, not the tables
        rope_attention_decode(qkv, cos[3], sin[3], k, v, sinks, pos, 0, 0.25, 4)


# --- full gpt-oss-20b shapes on a GPU ----------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("offset", "slots", "window"),
    [(1023, 131072, 0), (32767, 131072, 0), (131071, 131072, 0), (5000, 8320, 128),
     (20000, 8320, 128)],
)  # fmt: skip
def test_full_shape(offset, slots, window) -> None:
    _check(torch.device("cuda"), offset, slots, window, 64, 8, head_dim=64)


@pytest.mark.gpu
@pytest.mark.parametrize(("slots", "window"), [(131072, 0), (8320, 128)])
def test_cuda_graph_replays_match_eager(slots, window) -> None:
    """Captured with the rest of a decode step, the launch must give the eager result on
    every replay (the counters start at zero each time)."""
    dev = torch.device("cuda")
    qkv, cos, sin, k, v, sinks, pos = _case(dev, 4095, slots, 64, 8, 64)
    args = (qkv, cos, sin, k, v, sinks, pos, window, 0.125, 64)
    eager = rope_attention_decode(*args)
    static = rope_attention_decode(*args)  # warm: compiled before capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static = rope_attention_decode(*args)
    for _ in range(3):
        static.zero_()
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(static, eager)
