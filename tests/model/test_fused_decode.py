"""A decode step through `Ops.rope_attention_decode` (RoPE + KV write + attention, one launch)
with the Triton kernel against the same step with the torch table.

The context (1100) gives the full-attention layers 1100-slot buffers, so their launch merges 4
split partials (most of them empty); the sliding layers (window 8, 24-slot rings, wrapped by
the 40-token prompt) take the one-split path. On CPU the kernels run in Triton's interpreter.
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gptoss_chat.model.generator import load_generator
from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.ops import TORCH_OPS, Ops
from gptoss_chat.model.transformer import Transformer

if not torch.cuda.is_available():  # before the kernels module (and its @triton.jit) is imported
    os.environ.setdefault("TRITON_INTERPRET", "1")

PROMPT = [(17 * i + 5) % 512 for i in range(40)]
STEPS = [11, 300, 7]
CONTEXT = 1100


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _copy(cache: KVCache) -> KVCache:
    twin = copy.copy(cache)
    twin.k = [t.clone() for t in cache.k]
    twin.v = [t.clone() for t in cache.v]
    twin.offset = cache.offset.clone()
    return twin


def _prefilled(path: Path) -> tuple[Transformer, KVCache]:
    gen = load_generator(path, device=_device(), context=CONTEXT, backend="torch", sliding_slack=16)
    with torch.inference_mode():
        gen.model.forward(torch.tensor(PROMPT, device=gen.device), gen.cache)
    return gen.model, gen.cache


def _step(model: Transformer, ops: Ops, cache: KVCache, token: int) -> torch.Tensor:
    stepper = Transformer(model.config, model.weights, ops, cache.context)
    with torch.inference_mode():
        return stepper.forward(torch.tensor([token], device=model.device), cache).float()


def _kernel_table(model: Transformer, calls: list[int]) -> Ops:
    """The torch table with only the fused decode entry replaced by the Triton kernel."""
    from gptoss_chat.kernels.rope_attention_decode import rope_attention_decode

    def counted(*args):
        calls.append(args[0].shape[0])
        return rope_attention_decode(*args)

    return replace(TORCH_OPS, rope_attention_decode=counted)


def _within_one_ulp(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.float() - b.float()).abs().max().item() <= 2**-6 * b.float().abs().max().item()


def test_kernel_decode_step_equals_torch_step(micro_checkpoint: Path) -> None:
    model, cache = _prefilled(micro_checkpoint)
    calls: list[int] = []
    kernel_ops = _kernel_table(model, calls)
    layers = model.config.num_hidden_layers
    for token in STEPS:
        twin = _copy(cache)
        ours = _step(model, kernel_ops, twin, token)
        ref = _step(model, TORCH_OPS, cache, token)
        assert calls == [1] * layers  # every layer's decode attention went through the kernel
        calls.clear()
        assert (ours - ref).abs().max().item() < 0.05
        assert torch.equal(twin.offset, cache.offset)
        # Layer 0 sees the same qkv on both sides: its write is rope_cache's (bit for bit on a
        # GPU; the interpreter may round 1 ulp away). Later layers' inputs differ by the
        # attention's float error, so only their new slot may differ, and only slightly.
        same = torch.equal if ours.is_cuda else _within_one_ulp
        assert same(twin.k[0], cache.k[0]) and torch.equal(twin.v[0], cache.v[0])
        position = int(cache.offset) - 1
        for index in range(layers):
            slot = position % cache.slots[index]
            for mine, theirs in ((twin.k[index], cache.k[index]), (twin.v[index], cache.v[index])):
                assert (mine[slot] - theirs[slot]).float().norm() < 0.05 * theirs[
                    slot
                ].float().norm()
                mine[slot] = theirs[slot]
                assert torch.equal(mine, theirs)  # no other slot touched


def test_triton_table_decode_step_equals_torch_table(micro_checkpoint: Path) -> None:
    from gptoss_chat.kernels import build_ops

    model, cache = _prefilled(micro_checkpoint)
    triton_ops = build_ops(TORCH_OPS, model.device)
    for token in STEPS:
        twin = _copy(cache)
        ours = _step(model, triton_ops, twin, token)
        ref = _step(model, TORCH_OPS, cache, token)
        # every kernel of the table, in the interpreter on CPU (see test_engine_kernels.py)
        loose = 4.0 if not ours.is_cuda else 1.0
        assert (ours - ref).abs().max().item() < 0.25 * loose
        assert (ours - ref).abs().mean().item() < 0.02 * loose


@pytest.mark.parametrize("token", STEPS[:1])
def test_prefill_does_not_use_the_decode_entry(micro_checkpoint: Path, token: int) -> None:
    model, cache = _prefilled(micro_checkpoint)
    calls: list[int] = []
    ops = _kernel_table(model, calls)
    prefill = Transformer(model.config, model.weights, ops, cache.context)
    with torch.inference_mode():
        prefill.forward(torch.tensor([token, token], device=model.device), cache)
    assert calls == []
