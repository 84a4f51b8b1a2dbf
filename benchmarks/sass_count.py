"""Instructions per weight value in the MoE decode kernels' inner loops, without a GPU.

    python benchmarks/sass_count.py [--rows 16] [--groups 8] [--warps 4]

Compiles `_mlp1_kernel` and `_mlp2_kernel` of kernels/moe_decode.py for sm_90 with the installed
Triton and its bundled ptxas, disassembles the cubin with cuobjdump, finds the longest loop (a
backward branch) and prints one JSON line per kernel: instructions in that loop per thread, the
weight values a thread handles per iteration, their ratio and the most frequent opcodes. The
figures quoted in docs/BENCHMARKS.md (3.3-4.0 a value, against ~14 for the float decoder it
replaced) came from Triton 3.6 (the GPU machine's), installed beside the project with
`pip install --no-deps --target /tmp/t36 triton==3.6.0` and `PYTHONPATH=/tmp/t36:$PWD`.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gptoss_chat.kernels import moe_decode  # noqa: E402

INSTRUCTION = re.compile(r"\s+/\*([0-9a-f]{4,5})\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_.]+)(.*)")


def sass(fn, signature: dict, constexprs: dict, warps: int) -> str:
    """SASS of one kernel compiled for sm_90; pointers are 16-byte aligned as at run time."""
    attrs = {(i,): [["tt.divisibility", 16]] for i, kind in enumerate(signature.values())
             if kind.startswith("*")}  # fmt: skip
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": warps})  # fmt: skip
    cuobjdump = Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        return subprocess.run([str(cuobjdump), "-sass", cubin.name], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip


def longest_loop(text: str) -> tuple[int, collections.Counter]:
    """(instructions, opcode counts) of the longest span closed by a backward branch."""
    code = [(int(m[1], 16), m[2], m[3]) for m in map(INSTRUCTION.match, text.splitlines()) if m]
    best: list[str] = []
    for address, opcode, rest in code:
        target = re.search(r"0x([0-9a-f]+)", rest) if opcode == "BRA" else None
        if target and int(target[1], 16) < address:
            body = [op for at, op, _ in code if int(target[1], 16) <= at <= address]
            best = max(best, body, key=len)
    return len(best), collections.Counter(op.split(".")[0] for op in best)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16, help="mlp2 rows per program")
    parser.add_argument("--groups", type=int, default=8, help="groups of 32 per step")
    parser.add_argument("--warps", type=int, default=4)
    parser.add_argument("--untiled", action="store_true",
                        help="the checkpoint's expert layout (a GPU engine tiles it)")  # fmt: skip
    args = parser.parse_args()
    common = {"H": 2880, "INTER": 2880, "BLOCK_G": args.groups, "USE_ASM": True, "PIPE": 1,
              "FROM_LOGITS": False, "E": 1, "E_PAD": 1, "K_PAD": 1, "PDL": True,
              "TILED": not args.untiled}  # fmt: skip
    pointers = {"ids_ptr": "*i64", "blocks_ptr": "*i32", "scales_ptr": "*u8", "bias_ptr": "*bf16",
                "table_ptr": "*i32"}  # fmt: skip
    out = moe_decode.MLP1_OUT
    kernels = {
        "mlp1": (moe_decode._mlp1_kernel, 2 * out,
                 {"xq_ptr": "*i32", "xs_ptr": "*fp32", **pointers, "aq_ptr": "*i8",
                  "as_ptr": "*fp32", "limit": "fp32"},
                 {**common, "K_SEL": 4, "OUT": out}),
        "mlp2": (moe_decode._mlp2_kernel, args.rows,
                 {"aq_ptr32": "*i32", "as_ptr": "*fp32", "gate_ptr": "*fp32", **pointers,
                  "part_ptr": "*fp32"},
                 {**common, "K_SEL": 1, "BLOCK_N": args.rows, "XG": out}),
    }  # fmt: skip
    for name, (fn, rows, signature, constexprs) in kernels.items():
        params = list(fn.arg_names)
        ordered = {p: signature.get(p, "constexpr") for p in params}
        defaults = {p.name: p.default for p in fn.params}
        consts = {p: constexprs.get(p, defaults[p]) for p in params if ordered[p] == "constexpr"}
        count, opcodes = longest_loop(sass(fn, ordered, consts, args.warps))
        per_thread = rows * args.groups * 32 / (32 * args.warps)
        print(json.dumps({"kernel": name, "triton": triton.__version__, "loop_instructions": count,
                          "values_per_thread": per_thread,
                          "instructions_per_value": round(count / per_thread, 2),
                          "top_opcodes": dict(opcodes.most_common(8))}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
