"""Small helpers shared by the kernels."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def dot(a, b, UPCAST: tl.constexpr):
    """tl.dot, or a float32 dot when UPCAST: Triton's CPU interpreter multiplies bf16 operands as
    their raw 16-bit patterns, so the interpreter path upcasts first."""
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32))
    else:
        return tl.dot(a, b)
