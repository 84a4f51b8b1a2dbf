"""The `Ops.moe` and `Ops.moe_block` entries: routing, then the decode kernels or the prefill path.

`moe_block` is the MoE half of a layer, x + moe(rms_norm(x)): at decode the RMSNorm rides in the
router kernel (`router.norm_router_logits`), which saves a launch per layer. `out_proj_moe_block`
also takes the attention's out projection in front of it: at T == 1 the router then rides in
that GEMV's last programs (`router_epilogue.py`), which saves the router's launch too.

Few tokens (decode, short chunks): `moe_experts` reads the packed experts directly, with static
launch shapes (graph-safe). Many tokens (prefill): `moe_prefill.moe_grouped`, a grouped GEMM
that decodes fp4 inside the product, with no host sync. `_moe_by_expert` (decode each hit expert
once to bf16, then cuBLAS; one host sync) remains for shapes the grouped kernel's blocks do not
divide.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from gptoss_chat.kernels.dequant import dequantize
from gptoss_chat.kernels.expert_layout import TiledExpertWeights, untiled_experts
from gptoss_chat.kernels.gemv import linear_residual, linear_residual_route
from gptoss_chat.kernels.moe_decode import moe_experts_from_logits
from gptoss_chat.kernels.moe_prefill import fits, moe_grouped
from gptoss_chat.kernels.rms_norm import rms_norm
from gptoss_chat.kernels.router import norm_router_logits, router_logits
from gptoss_chat.model.ops import ExpertWeights, PreparedLinear, moe_torch, route, swiglu

DECODE_KERNEL_MAX_TOKENS = 8
"""Above this many tokens per call, decoding each expert once beats reading it per token."""


def moe(
    x: torch.Tensor, weights: ExpertWeights, experts_per_token: int, swiglu_limit: float
) -> torch.Tensor:
    """x [T, H] bf16 (normed) -> [T, H] bf16: the experts' weighted sum (see `MoeOp`)."""
    if x.shape[0] <= DECODE_KERNEL_MAX_TOKENS:
        logits = router_logits(x, weights.gate_weight, weights.gate_bias)  # [T, E]
        return moe_experts_from_logits(
            x, logits, experts_per_token, weights.mlp1_blocks, weights.mlp1_scales,
            weights.mlp1_bias, weights.mlp2_blocks, weights.mlp2_scales, weights.mlp2_bias,
            swiglu_limit, tiled=_tiled(weights),
        )  # fmt: skip
    expert_ids, expert_weights = route(x, weights, experts_per_token)  # [T, k], [T, k]
    if fits(x.shape[1], weights.mlp2_blocks.shape[2] * 32, x.is_cuda):
        return moe_grouped(
            x, expert_ids, expert_weights, weights.mlp1_blocks, weights.mlp1_scales,
            weights.mlp1_bias, weights.mlp2_blocks, weights.mlp2_scales, weights.mlp2_bias,
            swiglu_limit, tiled=_tiled(weights),
        )  # fmt: skip
    return _moe_by_expert(x, expert_ids, expert_weights, weights, swiglu_limit)


def _tiled(weights: ExpertWeights) -> bool:
    """Whether the Triton table's `prepare_experts` laid these experts out (expert_layout.py)."""
    return isinstance(weights, TiledExpertWeights)


def moe_block(
    x: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weights: ExpertWeights,
    experts_per_token: int,
    swiglu_limit: float,
) -> torch.Tensor:
    """The `Ops.moe_block` entry: x + moe(rms_norm(x)). Few tokens: the router kernel also
    normalises x (one launch for norm and router), then the expert kernels; many: composed."""
    if x.shape[0] > DECODE_KERNEL_MAX_TOKENS:
        return x + moe(rms_norm(x, norm_scale, eps), weights, experts_per_token, swiglu_limit)
    n_tokens, hidden = x.shape
    fixed = (torch.empty(n_tokens, 2 * hidden, dtype=torch.int8, device=x.device),
             torch.empty(n_tokens, hidden // 32, dtype=torch.float32, device=x.device))  # fmt: skip
    normed, logits = norm_router_logits(
        x, norm_scale, eps, weights.gate_weight, weights.gate_bias, quantized=fixed
    )  # [T, H] bf16, [T, E] float32; the experts' input in fixed point too
    return moe_experts_from_logits(
        normed, logits, experts_per_token, weights.mlp1_blocks, weights.mlp1_scales,
        weights.mlp1_bias, weights.mlp2_blocks, weights.mlp2_scales, weights.mlp2_bias,
        swiglu_limit, quantized=fixed, residual=x, tiled=_tiled(weights),
    )  # fmt: skip


def router_epilogue_enabled() -> bool:
    """GPTOSS_ROUTER_EPILOGUE=1: the router rides in the out projection's last programs."""
    return os.environ.get("GPTOSS_ROUTER_EPILOGUE") == "1"


def out_proj_moe_block(
    attn: torch.Tensor,
    out_weight: torch.Tensor | PreparedLinear,
    out_bias: torch.Tensor | None,
    x: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weights: ExpertWeights,
    experts_per_token: int,
    swiglu_limit: float,
) -> torch.Tensor:
    """The `Ops.out_proj_moe_block` entry: moe_block(linear_residual(attn, W_o, b_o, x)). One
    token: the out-projection GEMV also normalises its output and computes the router logits
    and the experts' fixed-point input in its last programs (`gemv.linear_residual_route`),
    which saves the router's launch; then the expert kernels. Only with GPTOSS_ROUTER_EPILOGUE=1:
    on an H100 it was slower than the separate router launch, which PDL already overlaps with
    the out projection (518 against 498 tok/s at 20b, 356 against 350 at 120b; 2026-11-22,
    docs/BENCHMARKS.md). More tokens, a compact out projection (`Ops.prepare_linear`), or by
    default: composed."""
    composed = isinstance(out_weight, PreparedLinear) or not router_epilogue_enabled()
    if attn.shape[0] != 1 or x.shape[1] % 32 or composed:
        mid = linear_residual(attn, out_weight, out_bias, x)
        return moe_block(mid, norm_scale, eps, weights, experts_per_token, swiglu_limit)
    mid, normed, logits, fixed = linear_residual_route(
        attn, out_weight, out_bias, x, norm_scale, eps, weights.gate_weight, weights.gate_bias
    )  # [1, H] bf16 x + attention, its normed row, router logits [1, E], the row in fixed point
    return moe_experts_from_logits(
        normed, logits, experts_per_token, weights.mlp1_blocks, weights.mlp1_scales,
        weights.mlp1_bias, weights.mlp2_blocks, weights.mlp2_scales, weights.mlp2_bias,
        swiglu_limit, quantized=fixed, residual=mid, tiled=_tiled(weights),
    )  # fmt: skip


def _moe_by_expert(
    x: torch.Tensor,
    expert_ids: torch.Tensor,
    expert_weights: torch.Tensor,
    weights: ExpertWeights,
    swiglu_limit: float,
) -> torch.Tensor:
    """Tokens grouped by expert; one host sync to learn the groups (prefill only)."""
    weights = untiled_experts(weights)  # a copy in the checkpoint's layout (a fallback path)
    n_experts = weights.mlp1_blocks.shape[0]
    flat = expert_ids.reshape(-1)  # [T*k]
    order = torch.argsort(flat, stable=True)  # [T*k] positions sorted by expert
    counts = torch.bincount(flat, minlength=n_experts).tolist()  # the one sync
    k = expert_ids.shape[1]
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)  # [T, H]
    first = 0
    for expert, count in enumerate(counts):
        if count == 0:
            continue
        picks = order[first : first + count]
        first += count
        tokens = picks // k
        w1 = dequantize(weights.mlp1_blocks[expert], weights.mlp1_scales[expert])  # [2I, H]
        a = swiglu(F.linear(x[tokens], w1, weights.mlp1_bias[expert]), swiglu_limit)  # [n, I]
        del w1
        w2 = dequantize(weights.mlp2_blocks[expert], weights.mlp2_scales[expert])  # [H, I]
        y = F.linear(a, w2, weights.mlp2_bias[expert])  # [n, H]
        del w2
        gate = expert_weights.reshape(-1)[picks].float()[:, None]
        out.index_add_(0, tokens, y.float() * gate)
    return out.to(x.dtype)


moe_ref = moe_torch
