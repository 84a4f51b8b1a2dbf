"""bf16 matrix-vector product for decode: attention projections and the unembedding.

At batch 1 a linear layer is a pure read of its weight (the unembedding alone is 1.16 GB), so the
kernel is a streaming reduction: each program owns BLOCK_N output rows, walks K in BLOCK_K steps
with 16-byte loads along each row, keeps a [BLOCK_N, BLOCK_K] float32 partial in registers and
reduces it once at the end (one cross-thread reduction per program, not per step). Block sizes
are autotuned per (N, K) (see `tuning_sweep`). Measured on an H100: 3.00 TB/s on the 201088 x
2880 unembedding (cuBLAS 2.77), 1.57 TB/s on the 5120 x 2880 qkv projection (cuBLAS 1.48), where
launch latency dominates. Extends Triton's tutorial 03 (matrix multiplication) down to M = 1.

Two fused forms save the launches around the attention projections at decode: `norm_linear`
(RMSNorm in the prologue: each program computes the row's rms from x, 2880 values from L2, and
rounds the normed x to bf16 exactly as rms_norm.py does) and `linear_residual` (the bf16 output
plus the residual, in the epilogue). Both are the same kernel with constexpr flags, so the
product's reduction order, and so its result, is the plain GEMV's. A third, `linear_residual_route`
(the out projection at T == 1), also runs the MoE router after the residual add, in the grid's
last programs (router_epilogue.py), which saves the router's launch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from gptoss_chat.kernels import common
from gptoss_chat.kernels.common import (
    let_next_kernel_start,
    pdl_enabled,
    tuning_sweep,
    wait_for_previous_kernel,
)
from gptoss_chat.kernels.compact_bf16 import CompactLinear, compact_gemv
from gptoss_chat.kernels.rms_norm import rms_norm, scale_tile, x_tile
from gptoss_chat.kernels.router_epilogue import route_after_out_proj
from gptoss_chat.model.ops import PreparedLinear, dense_weight


@triton.jit
def _weight_tile(w_rows, ks, K: tl.constexpr, BLOCK_K: tl.constexpr):
    """[BLOCK_N, BLOCK_K] of the weight at columns ks (masked when BLOCK_K does not divide K)."""
    if K % BLOCK_K == 0:
        return tl.load(w_rows + ks[None, :])
    else:
        return tl.load(w_rows + ks[None, :], mask=(ks < K)[None, :], other=0.0)


@triton.jit
def _tile_product(w, x_row, norm_ptr, ks, inv_rms, K: tl.constexpr, BLOCK_K: tl.constexpr,
                       NORM: tl.constexpr):  # fmt: skip
    """w * x [BLOCK_N, BLOCK_K] for the weight tile w of columns ks (normed x when NORM): a step
    of the loop, or of a tile requested before the PDL wait."""
    scale = 1.0
    if NORM:
        scale = scale_tile(norm_ptr, ks, K, BLOCK_K)
    x = x_tile(x_row, scale, ks, inv_rms, K, BLOCK_K, NORM)
    return w.to(tl.float32) * x.to(tl.float32)[None, :]


@triton.jit
def _gemv_kernel(
    x_ptr,  # [T, K]
    w_ptr,  # [N, K] bf16
    b_ptr,  # [N] or unused
    out_ptr,  # [T, N]
    norm_ptr,  # [K] float32 RMSNorm scale (NORM), [N] the router's (ROUTER), or unused
    res_ptr,  # [T, N] residual, or unused
    eps,  # of the norm in the prologue (NORM) or in the router epilogue (ROUTER)
    N,
    K: tl.constexpr,
    K_PAD: tl.constexpr,  # next power of two >= K (the norm's one-shot row load)
    HAS_BIAS: tl.constexpr,
    NORM: tl.constexpr,
    RESIDUAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PDL: tl.constexpr = False,
    ROUTER: tl.constexpr = False,  # T == 1: `route_after_out_proj` after the rows are stored
    PRE: tl.constexpr = 1,  # weight tiles requested before the PDL wait (1 to 4, see `_PRE_TILES`)
    SPIN: tl.constexpr = False,
    E: tl.constexpr = 1,
    ROUTER_BLOCK_H: tl.constexpr = 1,
    ROUTER_SHARE: tl.constexpr = 1,  # groups of 32 of the normed row per router program
    ROUTER_H: tl.constexpr = 1,  # = N, as a compile-time constant
    ROUTER_H_PAD: tl.constexpr = 1,  # next power of two >= N (the norm's one-shot row load)
    gate_w_ptr=None,  # ROUTER: [E, N] bf16
    gate_b_ptr=None,  # ROUTER: [E] bf16
    logits_ptr=None,  # ROUTER: [E] float32
    normed_ptr=None,  # ROUTER: [N] bf16
    xq_ptr=None,  # ROUTER: [2N] int8
    xs_ptr=None,  # ROUTER: [N/32] float32
    counter_ptr=None,  # ROUTER: int32 [2], zero between calls
):
    token = tl.program_id(1)
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    rows_safe = tl.where(row_ok, rows, 0)  # keeps the loads unmasked along rows
    cols = tl.arange(0, BLOCK_K)
    w_rows = w_ptr + rows_safe.to(tl.int64)[:, None] * K
    x_row = x_ptr + token * K
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    let_next_kernel_start(PDL)
    # The first weight tile is requested before anything that depends on the previous kernel
    # (its x, and with PDL the wait for it), so the weight stream starts at once; starting from
    # zero, the sums are still the plain loop's.
    w = _weight_tile(w_rows, cols, K, BLOCK_K)
    # The out projection requests its next 3 tiles too (`_PRE_TILES`), each kept as its own
    # tile and summed in order below, so the sums are still the loop's.
    if PRE > 1 and BLOCK_K < K:
        w1 = _weight_tile(w_rows, BLOCK_K + cols, K, BLOCK_K)
    if PRE > 2 and 2 * BLOCK_K < K:
        w2 = _weight_tile(w_rows, 2 * BLOCK_K + cols, K, BLOCK_K)
    if PRE > 3 and 3 * BLOCK_K < K:
        w3 = _weight_tile(w_rows, 3 * BLOCK_K + cols, K, BLOCK_K)
    # So are the rest of what no launch of the step writes (the first norm scales, the bias):
    # requested after the wait, each would add a memory round trip to this program's path.
    scale = 1.0
    inv_rms = 1.0
    if NORM:
        scale = scale_tile(norm_ptr, cols, K, BLOCK_K)
    if HAS_BIAS:
        bias = tl.load(b_ptr + rows_safe).to(tl.float32)
    wait_for_previous_kernel(PDL)
    if RESIDUAL:  # requested now, so it arrives while the weights stream
        residual = tl.load(res_ptr + token * N + rows_safe).to(tl.float32)
    if NORM:
        # Every program finds the row's 1/rms itself (K values from L2) instead of waiting for a
        # norm launch: the same single float32 sum over the padded row as rms_norm.py.
        all_k = tl.arange(0, K_PAD)
        row = tl.load(x_row + all_k, mask=all_k < K, other=0.0).to(tl.float32)
        inv_rms = tl.rsqrt(tl.sum(row * row, axis=0) / K + eps)
    x = x_tile(x_row, scale, cols, inv_rms, K, BLOCK_K, NORM)
    acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
    if PRE > 1 and BLOCK_K < K:
        acc += _tile_product(w1, x_row, norm_ptr, BLOCK_K + cols, inv_rms, K, BLOCK_K, NORM)
    if PRE > 2 and 2 * BLOCK_K < K:
        acc += _tile_product(w2, x_row, norm_ptr, 2 * BLOCK_K + cols, inv_rms, K, BLOCK_K,
                                  NORM)  # fmt: skip
    if PRE > 3 and 3 * BLOCK_K < K:
        acc += _tile_product(w3, x_row, norm_ptr, 3 * BLOCK_K + cols, inv_rms, K, BLOCK_K,
                                  NORM)  # fmt: skip
    for k0 in range(PRE * BLOCK_K, K, BLOCK_K):  # (empty once the preloaded tiles cover K)
        ks = k0 + cols
        w = _weight_tile(w_rows, ks, K, BLOCK_K)
        acc += _tile_product(w, x_row, norm_ptr, ks, inv_rms, K, BLOCK_K, NORM)
    y = tl.sum(acc, axis=1)  # [BLOCK_N]
    if HAS_BIAS:
        y += bias
    if RESIDUAL:  # round the product to the output dtype first, as linear-then-add does
        y = y.to(out_ptr.dtype.element_ty).to(tl.float32) + residual
    tl.store(out_ptr + token * N + rows, y.to(out_ptr.dtype.element_ty), mask=row_ok)
    if ROUTER:
        route_after_out_proj(out_ptr, gate_w_ptr, gate_b_ptr, logits_ptr, norm_ptr, normed_ptr,
                             xq_ptr, xs_ptr, counter_ptr, eps, ROUTER_H, ROUTER_H_PAD, E,
                             ROUTER_BLOCK_H, ROUTER_SHARE, SPIN)  # fmt: skip


_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bn, bk, w, s in [
        (8, 512, 4, 3),
        (16, 256, 4, 3),
        (16, 512, 8, 3),
        (32, 128, 4, 4),
        (32, 256, 8, 3),
        (64, 64, 4, 4),
        (64, 128, 8, 3),
        # more, shorter programs for the latency-bound attention projections (N = 2880, 5120)
        (2, 1024, 2, 2),
        (4, 512, 2, 3),
        (4, 1024, 4, 2),
        (8, 512, 4, 2),
        (8, 1024, 8, 2),
        (16, 1024, 8, 2),
    ]
]
_H100_BEST = [triton.Config({"BLOCK_N": 8, "BLOCK_K": 512}, num_warps=4, num_stages=3)]
_gemv_tuned = triton.autotune(
    configs=_CONFIGS if tuning_sweep() else _H100_BEST, key=["N", "K", "NORM", "RESIDUAL"]
)(_gemv_kernel)

_PRE_TILES = 4
"""Weight tiles each out-projection program requests before its PDL wait (decode). Its programs
come up while the attention runs (rope_attention_decode.py lets them start only after its own
wait), when DRAM has little else to do at short contexts: with 4 tiles (half of each program's
64 KB, 134 registers, 3 programs an SM) decode after a 1k prompt went from 570-572 to 576 tok/s
on an H100 (2026-11-22); 5 or 6 tiles the same; 2 or 3 on the qkv projection no gain, 3 slower.
Before the attention's late trigger the same 4 tiles cost 1.2% (they came up during the qkv
projection and took from its stream)."""

DECODE_MAX_TOKENS = 8
"""Above this many tokens cuBLAS (F.linear) beats a matrix-vector kernel per token."""


def gemv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """x [T, K] (T small) @ weight[N, K].T (+ bias [N]) -> [T, N] of out_dtype (x's by default).

    Float32 accumulation. For many tokens cuBLAS is the right tool, so T > 8 goes to F.linear."""
    _check(x, weight, bias)
    if x.shape[0] > DECODE_MAX_TOKENS:
        return F.linear(x, weight, bias).to(out_dtype or x.dtype)
    return _launch(x, weight, bias, out_dtype or x.dtype)


def norm_linear(
    x: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    weight: torch.Tensor | PreparedLinear,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """The `Ops.norm_linear` entry: linear(rms_norm(x)) with the norm in the GEMV's prologue
    (decode; from the compact weight when `prepare_linear` made one); many tokens run the norm
    kernel, then cuBLAS."""
    compact, weight = _compact(x, weight), dense_weight(weight)
    _check(x, weight, bias)
    if norm_scale.shape != (x.shape[1],) or norm_scale.dtype != torch.float32:
        raise ValueError(f"norm_linear: norm scale {tuple(norm_scale.shape)} does not fit x")
    if compact is not None:
        norm = (norm_scale.contiguous(), eps)
        return compact_gemv(x, compact, bias, norm=norm, pdl=pdl_enabled(x))
    if x.shape[0] > DECODE_MAX_TOKENS:
        return F.linear(rms_norm(x, norm_scale, eps), weight, bias)
    return _launch(x, weight, bias, x.dtype, norm=(norm_scale.contiguous(), eps))


def linear_residual(
    x: torch.Tensor,
    weight: torch.Tensor | PreparedLinear,
    bias: torch.Tensor | None,
    residual: torch.Tensor,
) -> torch.Tensor:
    """The `Ops.linear_residual` entry: residual + linear(x) with the add in the GEMV's epilogue
    (decode; from the compact weight when `prepare_linear` made one); many tokens run cuBLAS,
    then the add."""
    compact, weight = _compact(x, weight), dense_weight(weight)
    _check(x, weight, bias)
    if residual.shape != (x.shape[0], weight.shape[0]) or residual.dtype != x.dtype:
        raise ValueError(f"linear_residual: residual {tuple(residual.shape)} does not fit")
    if compact is not None:
        return compact_gemv(x, compact, bias, residual=residual.contiguous(), pdl=pdl_enabled(x))
    if x.shape[0] > DECODE_MAX_TOKENS:
        return residual + F.linear(x, weight, bias)
    return _launch(x, weight, bias, x.dtype, residual=residual.contiguous())


def linear_residual_route(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    residual: torch.Tensor,
    norm_scale: torch.Tensor,
    eps: float,
    gate_weight: torch.Tensor,
    gate_bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One token: `linear_residual` and then `router.norm_router_logits(..., quantized=...)` of
    its output, in one launch (the router runs in the last programs' epilogue, see
    `router_epilogue.route_after_out_proj`). Returns (new x [1, N], normed [1, N] bf16, logits
    [1, E] float32, (xq [1, 2N] int8, xs [1, N/32] float32)), bit for bit the two launches'."""
    _check(x, weight, bias)
    n_tokens, k = x.shape
    n, n_experts = weight.shape[0], gate_weight.shape[0]
    if n_tokens != 1 or residual.shape != (1, n) or residual.dtype != x.dtype:
        raise ValueError(f"linear_residual_route: one token, residual {tuple(residual.shape)}")
    if gate_weight.shape != (n_experts, n) or gate_bias.shape != (n_experts,) or n % 32:
        raise ValueError(f"linear_residual_route: gate {tuple(gate_weight.shape)} for {n} rows")
    if norm_scale.shape != (n,) or norm_scale.dtype != torch.float32:
        raise ValueError(f"linear_residual_route: norm scale {tuple(norm_scale.shape)}")
    dev = x.device
    out = torch.empty(1, n, dtype=x.dtype, device=dev)
    normed = torch.empty(1, n, dtype=x.dtype, device=dev)
    logits = torch.empty(1, n_experts, dtype=torch.float32, device=dev)
    fixed = (torch.empty(1, 2 * n, dtype=torch.int8, device=dev),
             torch.empty(1, n // 32, dtype=torch.float32, device=dev))  # fmt: skip
    if x.is_cuda:  # the blocks `linear_residual` runs with; 4 warps as the router kernel's
        config = _H100_BEST[0]
        block_n, block_k = config.kwargs["BLOCK_N"], config.kwargs["BLOCK_K"]
        launch = dict(num_warps=config.num_warps, num_stages=config.num_stages)
        router_block_h = triton.next_power_of_2(n)  # `router._launch_logits`'s GPU blocks
    else:  # `_launch`'s and `router._launch_logits`'s interpreter blocks
        block_n, block_k = min(64, triton.next_power_of_2(n)), min(128, triton.next_power_of_2(k))
        launch = {}
        router_block_h = min(256, triton.next_power_of_2(n))
    # at least E programs: the last E arrivals each compute a logit (programs past N store none)
    grid = (max(triton.cdiv(n, block_n), n_experts), 1)
    pdl = pdl_enabled(x)
    _gemv_kernel[grid](
        x, weight, bias if bias is not None else weight, out, norm_scale.contiguous(),
        residual.contiguous(), float(eps), n, K=k, K_PAD=triton.next_power_of_2(k),
        HAS_BIAS=bias is not None, NORM=False, RESIDUAL=True, BLOCK_N=block_n, BLOCK_K=block_k,
        PDL=pdl, ROUTER=True, SPIN=x.is_cuda, E=n_experts, ROUTER_BLOCK_H=router_block_h,
        ROUTER_SHARE=triton.next_power_of_2(triton.cdiv(n // 32, n_experts)), ROUTER_H=n,
        ROUTER_H_PAD=triton.next_power_of_2(n), gate_w_ptr=gate_weight, gate_b_ptr=gate_bias,
        logits_ptr=logits, normed_ptr=normed, xq_ptr=fixed[0], xs_ptr=fixed[1],
        counter_ptr=arrival_counters(dev, weight.data_ptr()), launch_pdl=pdl, **launch,
    )  # fmt: skip
    return out, normed, logits, fixed


def _compact(x: torch.Tensor, weight: torch.Tensor | PreparedLinear) -> CompactLinear | None:
    """The compact weight a decode-sized x (at most DECODE_MAX_TOKENS rows of bf16) reads."""
    if isinstance(weight, CompactLinear) and x.shape[0] <= DECODE_MAX_TOKENS:
        return weight if x.dtype == torch.bfloat16 and x.is_contiguous() else None
    return None


def arrival_counters(device: torch.device, site: int) -> torch.Tensor:
    """The zeroed int32 [2] counters of one `linear_residual_route` call site (`site`: its
    weight's address; `common.arrival_counters`)."""
    return common.arrival_counters(device, site, 2, "linear_residual_route")


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"gemv: x {tuple(x.shape)} does not fit weight {tuple(weight.shape)}")
    if not (x.is_contiguous() and weight.is_contiguous()):
        raise ValueError("gemv: x and weight must be contiguous")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"gemv: bias {tuple(bias.shape)} does not fit {weight.shape[0]} rows")


def _launch(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    out_dtype: torch.dtype,
    norm: tuple[torch.Tensor, float] | None = None,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    n_tokens, k = x.shape
    n = weight.shape[0]
    out = torch.empty(n_tokens, n, dtype=out_dtype, device=x.device)
    # pointers the kernel never reads when their flag is off
    b = bias if bias is not None else weight
    norm_scale, eps = norm if norm is not None else (weight, 0.0)
    res = residual if residual is not None else out
    args = (x, weight, b, out, norm_scale, res, float(eps), n)
    flags = dict(K=k, K_PAD=triton.next_power_of_2(k), HAS_BIAS=bias is not None,
                 NORM=norm is not None, RESIDUAL=residual is not None)  # fmt: skip
    if x.is_cuda:
        grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), n_tokens)  # noqa: E731
        pdl = pdl_enabled(x)
        pre = _PRE_TILES if pdl and residual is not None else 1  # the out projection
        _gemv_tuned[grid](*args, **flags, PDL=pdl, PRE=pre, launch_pdl=pdl)
    else:
        # the interpreter runs programs one by one: few, large programs are fastest
        block_n, block_k = min(64, triton.next_power_of_2(n)), min(128, triton.next_power_of_2(k))
        grid = (triton.cdiv(n, block_n), n_tokens)
        _gemv_kernel[grid](*args, **flags, BLOCK_N=block_n, BLOCK_K=block_k)
    return out


def gemv_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    y = x.float() @ weight.float().T
    if bias is not None:
        y = y + bias.float()
    return y.to(out_dtype or x.dtype)


def unembedding(x: torch.Tensor, weight: torch.Tensor | PreparedLinear) -> torch.Tensor:
    """The `Ops.unembedding` entry: x [T, H] bf16, weight [V, H] bf16 -> logits [T, V] float32
    (decode-sized x from the compact weight when `prepare_linear` made one)."""
    compact = _compact(x, weight)
    if compact is not None:
        return compact_gemv(x, compact, None, out_dtype=torch.float32, pdl=pdl_enabled(x))
    return gemv(x, dense_weight(weight), out_dtype=torch.float32)


def unembedding_ref(x: torch.Tensor, weight: torch.Tensor | PreparedLinear) -> torch.Tensor:
    return gemv_ref(x, dense_weight(weight), out_dtype=torch.float32)


def linear(
    x: torch.Tensor, weight: torch.Tensor | PreparedLinear, bias: torch.Tensor | None
) -> torch.Tensor:
    """The `Ops.linear` entry: F.linear's contract, the GEMV kernel at decode."""
    compact = _compact(x, weight)
    if compact is not None:
        return compact_gemv(x, compact, bias, pdl=pdl_enabled(x))
    return gemv(x, dense_weight(weight), bias)
