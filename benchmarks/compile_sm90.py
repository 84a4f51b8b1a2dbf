"""Compile the fused decode-attention kernel for sm_90 without a GPU (a compile-error check).

    PYTHONPATH=/tmp/t36/site:$PWD python benchmarks/compile_sm90.py

Uses Triton's ASTSource + GPUTarget("cuda", 90, 32) as benchmarks/sass_count.py does, at the
gpt-oss-20b shapes the engine launches: the full layer (S = 131072, 64 splits, the two-level
last-program merge) and the sliding layer (S = 8320, window 128, one split). Prints one JSON line
per shape: registers, stack/local (spill) bytes, static and dynamic shared memory and the SASS
instruction count.
"""

from __future__ import annotations

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

from gptoss_chat.kernels import rope_attention_decode as fused  # noqa: E402
from gptoss_chat.kernels.attention_decode import decode_splits  # noqa: E402

POINTERS = {"qkv_ptr": "*bf16", "cos_ptr": "*bf16", "sin_ptr": "*bf16", "k_ptr": "*bf16",
            "v_ptr": "*bf16", "sinks_ptr": "*fp32", "offset_ptr": "*i64", "m_ptr": "*fp32",
            "l_ptr": "*fp32", "acc_ptr": "*fp32", "counter_ptr": "*i32", "out_ptr": "*bf16",
            "sm_scale": "fp32", "S": "i32"}  # fmt: skip


def compile_case(slots: int, window: int) -> dict:
    fn = fused._rope_attention_decode_kernel
    splits = decode_splits(slots, window)
    one_tile = splits == 1 and fused._BLOCK_S < window <= fused._WINDOW_TILE  # as the launcher
    block_s, warps = (
        (triton.next_power_of_2(window), fused._WINDOW_WARPS) if one_tile else (fused._BLOCK_S, 4)
    )
    group = fused._MERGE_GROUP if splits > fused._MERGE_GROUP else 0  # as the launcher
    constexprs = {"HQ": 64, "HKV": 8, "G": 8, "G_PAD": 16, "G_C": 8, "D": 64, "WINDOW": window,
                  "SPLITS": splits, "BLOCK_S": block_s,
                  "CHUNK": max(1, min(splits, fused._COMBINE_ELEMENTS // (8 * 64))),
                  "UPCAST": False, "PDL": True, "GROUP": group,
                  "LATE_TRIGGER": fused._LATE_TRIGGER}  # fmt: skip
    signature = {name: POINTERS.get(name, "constexpr") for name in fn.arg_names}
    attrs = {(i,): [["tt.divisibility", 16]] for i, kind in enumerate(signature.values())
             if kind.startswith("*")}  # fmt: skip
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": warps, "num_stages": fused._STAGES,
                                       "enable_fp_fusion": False})  # fmt: skip
    cuobjdump = Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        text = subprocess.run([str(cuobjdump), "-sass", cubin.name], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
        usage = subprocess.run([str(cuobjdump), "-res-usage", cubin.name], capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
    resources = dict(re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", usage))
    return {"kernel": "rope_attention_decode", "triton": triton.__version__, "slots": slots,
            "window": window, "splits": splits,
            **{k.lower(): int(v) for k, v in resources.items()},
            "dynamic_shared": compiled.metadata.shared,
            "sass_instructions": text.count(";"),
            "griddepcontrol": "griddepcontrol" in compiled.asm["ptx"]}  # fmt: skip


def main() -> int:
    for slots, window in [(131072, 0), (8320, 128)]:
        print(json.dumps(compile_case(slots, window)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
