"""Compile the out-projection GEMV with the router epilogue for sm_90 without a GPU, and check
that its reductions have the router kernel's layouts (so the same summation order).

    PYTHONPATH=/tmp/t36/site:$PWD python benchmarks/compile_out_router.py

Compiles `gemv._gemv_kernel` (ROUTER, SPIN, 20b and 120b shapes: 2880 x 4096, E 32 / 128,
the blocks `gemv.linear_residual_route` launches with) and `router._router_logits_kernel` (NORM,
QUANT, ROWS 1, as `norm_router_logits` launches it) and the plain `linear_residual` GEMV with the
installed Triton and ptxas, then prints one JSON line per E: the layouts of the GEMV's row sums
and of the rms and logit sums in the two-launch kernels, and whether the fused kernel's are the
same (the same layout, the same order of additions). Use Triton 3.6 (the GPU machine's), unpacked
beside the project as benchmarks/sass_count.py describes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gptoss_chat.kernels import gemv, router  # noqa: E402

HIDDEN, ATTN = 2880, 4096
REDUCE = re.compile(r"\}\) : \(tensor<([0-9x]+)xf32, (#\w+)>\)")
LAYOUT = re.compile(r"^(#\w+) = (.*)$", re.MULTILINE)


def ttgir(fn, signature: dict, constexprs: dict, warps: int, stages: int) -> str:
    """The kernel's TritonGPU IR for sm_90 (compiled through ptxas, so errors surface here)."""
    params = list(fn.arg_names)
    ordered = {p: signature.get(p, "constexpr") for p in params}
    consts = {p: constexprs[p] for p in params if ordered[p] == "constexpr" and p in constexprs}
    attrs = {(i,): [["tt.divisibility", 16]] for i, kind in enumerate(ordered.values())
             if kind.startswith("*")}  # fmt: skip
    source = ASTSource(fn=fn, signature=ordered, constexprs=consts, attrs=attrs)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": warps, "num_stages": stages})  # fmt: skip
    assert compiled.asm["cubin"], "no cubin"
    return compiled.asm["ttgir"]


def sums(ir: str) -> dict[str, str]:
    """Shape of each float32 sum's input -> its layout, spelled out. (Maxima are left out: their
    result does not depend on the order; the fixed-point groups' amax is one.)"""
    layouts = dict(LAYOUT.findall(ir))
    found = {}
    for block in ir.split('"tt.reduce"')[1:]:
        match = REDUCE.search(block)
        if match and "arith.addf" in block[: match.start()]:
            found[match[1]] = layouts.get(match[2], match[2])
    return found


def main() -> int:
    config = gemv._H100_BEST[0]
    pointers = {"x_ptr": "*bf16", "w_ptr": "*bf16", "b_ptr": "*bf16", "norm_ptr": "*fp32",
                "normed_ptr": "*bf16", "logits_ptr": "*fp32", "xq_ptr": "*i8", "xs_ptr": "*fp32",
                "eps": "fp32"}  # fmt: skip
    for n_experts in (32, 128):
        share = triton.next_power_of_2(triton.cdiv(HIDDEN // 32, n_experts))
        fused = ttgir(gemv._gemv_kernel,
                      {**pointers, "out_ptr": "*bf16", "res_ptr": "*bf16", "N": "i32",
                       "gate_w_ptr": "*bf16", "gate_b_ptr": "*bf16", "counter_ptr": "*i32"},
                      dict(K=ATTN, K_PAD=ATTN, HAS_BIAS=True, NORM=False, RESIDUAL=True,
                           **config.kwargs, PDL=True, ROUTER=True, SPIN=True, E=n_experts,
                           ROUTER_BLOCK_H=4096, ROUTER_SHARE=share, ROUTER_H=HIDDEN,
                           ROUTER_H_PAD=4096),
                      config.num_warps, config.num_stages)  # fmt: skip
        plain = ttgir(gemv._gemv_kernel,
                      {**pointers, "out_ptr": "*bf16", "res_ptr": "*bf16", "N": "i32"},
                      dict(K=ATTN, K_PAD=ATTN, HAS_BIAS=True, NORM=False, RESIDUAL=True,
                           **config.kwargs, PDL=True),
                      config.num_warps, config.num_stages)  # fmt: skip
        groups = triton.cdiv(HIDDEN // 32, n_experts)  # of the fixed-point row a program
        alone = ttgir(router._router_logits_kernel, pointers,
                      dict(H=HIDDEN, E=n_experts, ROWS=1, BLOCK_H=4096, NORM=True, H_PAD=4096,
                           QUANT=True, PDL=True, GROUPS_PER=groups,
                           GROUPS_PAD=triton.next_power_of_2(groups)), 4, 3)  # fmt: skip
        ours, theirs = sums(fused), {**sums(alone), **sums(plain)}
        shared = {shape: ours.get(shape) == layout for shape, layout in theirs.items()}
        print(json.dumps({"E": n_experts, "triton": triton.__version__, "compiled": True,
                          "sums": theirs, "same_layout": shared,
                          "ok": all(shared.values())}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
