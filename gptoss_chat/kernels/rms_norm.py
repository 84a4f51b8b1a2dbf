"""Fused RMSNorm: one program per row reads it once, reduces in float32 and writes bf16.

torch's version launches about five kernels (cast, square, mean, rsqrt, two multiplies) with
float32 intermediates; this is one pass, which matters at decode where every launch counts.
Follows Triton's tutorial 05 (layer norm), forward only.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gptoss_chat.kernels.common import let_next_kernel_start, pdl_enabled


@triton.jit
def normed_row(x_row, scale_ptr, eps, out_dtype: tl.constexpr, H: tl.constexpr,
               BLOCK: tl.constexpr):  # fmt: skip
    """One row normed and rounded to `out_dtype`: [BLOCK], zero past H. Shared with
    unembedding_screen.py, whose normed row must be this kernel's, bit for bit (launched with
    `norm_warps(BLOCK)` warps, so the sum runs the same tree)."""
    cols = tl.arange(0, BLOCK)
    ok = cols < H
    x = tl.load(x_row + cols, mask=ok, other=0.0).to(tl.float32)
    inv = tl.rsqrt(tl.sum(x * x, axis=0) / H + eps)
    scale = tl.load(scale_ptr + cols, mask=ok, other=0.0)
    return (x * inv * scale).to(out_dtype)


@triton.jit
def scale_tile(norm_ptr, ks, K: tl.constexpr, BLOCK_K: tl.constexpr):
    """[BLOCK_K] of the RMSNorm scale at columns ks (masked past K)."""
    if K % BLOCK_K == 0:
        return tl.load(norm_ptr + ks)
    else:
        return tl.load(norm_ptr + ks, mask=ks < K, other=0.0)


@triton.jit
def x_tile(x_row, scale, ks, inv_rms, K: tl.constexpr, BLOCK_K: tl.constexpr,
           NORM: tl.constexpr):  # fmt: skip
    """[BLOCK_K] of the activation row at columns ks (masked past K), normed by `scale`
    (`scale_tile`) and rounded to its dtype like this kernel when NORM: the GEMVs' x (gemv.py,
    compact_bf16.py), whose norm lives in their prologue."""
    if K % BLOCK_K == 0:  # noqa: SIM108 (a constexpr branch)
        x = tl.load(x_row + ks)
    else:
        x = tl.load(x_row + ks, mask=ks < K, other=0.0)
    if NORM:
        x = (x.to(tl.float32) * inv_rms * scale).to(x_row.dtype.element_ty)
    return x


def norm_warps(block: int) -> int:
    return 8 if block >= 2048 else 4


@triton.jit
def _rms_norm_kernel(x_ptr, scale_ptr, out_ptr, eps, H: tl.constexpr, BLOCK: tl.constexpr,
                     PDL: tl.constexpr = False):  # fmt: skip
    let_next_kernel_start(PDL)  # e.g. the unembedding may start streaming its weights
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    normed = normed_row(x_ptr + row * H, scale_ptr, eps, out_ptr.dtype.element_ty, H, BLOCK)
    tl.store(out_ptr + row * H + cols, normed, mask=cols < H)


def rms_norm(x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    """x [T, H] bf16, scale [H] float32 -> [T, H] bf16 (the `Ops.rms_norm` entry)."""
    if x.dim() != 2 or scale.shape != (x.shape[1],) or not x.is_contiguous():
        raise ValueError(f"rms_norm: x {tuple(x.shape)} / scale {tuple(scale.shape)} mismatch")
    out = torch.empty_like(x)
    hidden = x.shape[1]
    block = triton.next_power_of_2(hidden)
    _rms_norm_kernel[(x.shape[0],)](
        x, scale.contiguous(), out, float(eps), H=hidden, BLOCK=block,
        num_warps=norm_warps(block), PDL=pdl_enabled(x),
    )  # fmt: skip
    return out


def rms_norm_ref(x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    t = x.float()
    t = t * torch.rsqrt(t.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (t * scale.float()).to(x.dtype)
