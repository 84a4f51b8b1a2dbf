"""Random MXFP4 experts and relative-error checks shared by the kernel tests."""

from __future__ import annotations

import torch

from gptoss_chat.model.ops import ExpertWeights


def random_experts(
    n_experts: int, hidden: int, inter: int, device: torch.device, seed: int = 0
) -> ExpertWeights:
    """Experts whose decoded weights have roughly unit-variance products with unit inputs."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def codes(*shape: int) -> torch.Tensor:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).to(device)

    def scales(*shape: int) -> torch.Tensor:
        return torch.randint(119, 124, shape, generator=g, dtype=torch.uint8).to(device)

    def bf16(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(shape, generator=g) * scale).to(torch.bfloat16).to(device)

    return ExpertWeights(
        gate_weight=bf16(n_experts, hidden, scale=hidden**-0.5),
        gate_bias=bf16(n_experts, scale=0.1),
        mlp1_blocks=codes(n_experts, 2 * inter, hidden // 32, 16),
        mlp1_scales=scales(n_experts, 2 * inter, hidden // 32),
        mlp1_bias=bf16(n_experts, 2 * inter, scale=0.1),
        mlp2_blocks=codes(n_experts, hidden, inter // 32, 16),
        mlp2_scales=scales(n_experts, hidden, inter // 32),
        mlp2_bias=bf16(n_experts, hidden, scale=0.1),
    )


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64; NaN anywhere fails."""
    out64, ref64 = out.double(), ref.double()
    assert torch.isfinite(out64).all(), "non-finite output"
    return float((out64 - ref64).norm() / ref64.norm().clamp_min(1e-30))
