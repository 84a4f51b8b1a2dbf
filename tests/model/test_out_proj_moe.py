"""Decode through `Ops.out_proj_moe_block` with the Triton table: the out projection computes the
router in its last programs (no router launch) and must give the logits of the two entries it
replaces, `linear_residual` then `moe_block`, bit for bit; and the torch table's within the
tolerance the other engine tests use. On CPU the kernels run in Triton's interpreter (the micro
checkpoint's 512-token vocabulary keeps even the unembedding cheap).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

if not torch.cuda.is_available():  # before the kernels are imported (tests/kernels/conftest.py)
    os.environ.setdefault("TRITON_INTERPRET", "1")

from gptoss_chat.kernels import build_ops
from gptoss_chat.model.generator import load_generator
from gptoss_chat.model.ops import TORCH_OPS, Ops
from gptoss_chat.model.transformer import Transformer

PROMPT = [5, 77]
"""Ids below the micro vocabulary (512), each decoded alone (T == 1: the fused path); the
interpreter takes seconds a step, so two: the second finds the counters the first left."""


def _composed(ops: Ops) -> Ops:
    """`ops` with the out projection and the MoE half as the table's two separate entries."""

    def out_proj_then_moe_block(attn, out_weight, out_bias, x, *moe_args):
        return ops.moe_block(ops.linear_residual(attn, out_weight, out_bias, x), *moe_args)

    return replace(ops, out_proj_moe_block=out_proj_then_moe_block)


def _steps(path: Path, device: torch.device, ops: Ops | None) -> list[torch.Tensor]:
    """Logits of each id of PROMPT decoded alone, from an empty cache."""
    gen = load_generator(path, device=device.type, context=64, backend="torch")
    model = gen.model
    if ops is not None:
        model = Transformer(model.config, model.weights, ops, gen.cache.context)
    with torch.inference_mode():
        logits = [model.forward(torch.tensor([token], device=device), gen.cache)
                  for token in PROMPT]  # fmt: skip
    return [step.float().cpu() for step in logits]


def test_triton_decode_with_fused_router_equals_separate_entries(
    micro_checkpoint: Path, monkeypatch
) -> None:
    monkeypatch.setenv("GPTOSS_ROUTER_EPILOGUE", "1")  # opt-in (kernels/moe.py says why)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    triton_ops = build_ops(TORCH_OPS, device)
    fused = _steps(micro_checkpoint, device, triton_ops)
    separate = _steps(micro_checkpoint, device, _composed(triton_ops))
    reference = _steps(micro_checkpoint, device, None)
    assert len(fused) == len(PROMPT)
    for ours, theirs, ref in zip(fused, separate, reference, strict=True):
        assert torch.isfinite(ours).all()
        assert torch.equal(ours, theirs)
        # the torch table: the tolerance of tests/kernels/test_engine_kernels.py (the
        # interpreter truncates float32 -> bf16, a bias that adds up over layers)
        loose = 4.0 if device.type == "cpu" else 1.0
        assert (ours - ref).abs().max().item() < 0.25 * loose
        assert (ours - ref).abs().mean().item() < 0.02 * loose
