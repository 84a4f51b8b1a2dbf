"""Hardware counters of the MoE decode kernels beside a plain stream of the same size (H100).

Run it under Nsight Compute, then summarise the CSV:

    PYTHONPATH=$PWD python benchmarks/moe_counters.py            # compiles, checks it runs
    ncu --clock-control none --csv --print-units base \
        --metrics "$(python benchmarks/moe_counters.py --metrics)" \
        --kernel-name regex:"_mlp1_kernel|_mlp2_kernel|_chain_kernel" \
        --launch-skip 3 --launch-count 3 \
        python benchmarks/moe_counters.py > /tmp/moe_counters.csv
    python benchmarks/moe_counters.py --summarize /tmp/moe_counters.csv

The workload: one layer of random gpt-oss-20b experts (32, H = I = 2880) laid out as a GPU engine
runs them (`expert_layout.tile_experts`), one token routed by random router logits through
`moe_experts_from_logits` (the decode path's launches), then `stream_floor`'s plain streaming
kernel over 32 MB (4 warps, 6 programs an SM), three times each. Nsight Compute runs each
kernel alone (no programmatic dependent launch overlap) with its clocks left alone, so the
durations are longer than inside a decode step; what the counters give is where each kernel's
warps wait (memory, barriers), how busy the schedulers are and how many bytes DRAM delivered.
The summary prints one JSON line per kernel.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

METRICS = {
    "us": "gpu__time_duration.sum",
    "dram_bytes": "dram__bytes_read.sum",
    "dram_bytes_per_s": "dram__bytes_read.sum.per_second",
    "issue_active_pct": "smsp__issue_active.avg.pct_of_peak_sustained_active",
    "stall_long_scoreboard": (
        "smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio"
    ),
    "stall_barrier": "smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio",
    "stall_wait": "smsp__average_warps_issue_stalled_wait_per_issue_active.ratio",
    "stall_math_pipe": (
        "smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio"
    ),
    "warp_instructions": "smsp__inst_executed.sum",
    "warps_active_pct": "sm__warps_active.avg.pct_of_peak_sustained_active",
    "registers": "launch__registers_per_thread",
    "programs": "launch__grid_size",
}


def run() -> None:
    import torch
    from stream_floor import CHUNK, _chain_kernel

    from gptoss_chat.kernels.expert_layout import TiledExpertWeights, tile_experts
    from gptoss_chat.kernels.moe_decode import moe_experts_from_logits
    from tests.kernels.helpers import random_experts

    device = torch.device("cuda")
    e = tile_experts(random_experts(32, 2880, 2880, device))
    g = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(1, 2880, generator=g, device=device).bfloat16()
    logits = torch.randn(1, 32, generator=g, device=device)
    words = 32 * 2**20 // 4
    stream = torch.randint(0, 2**30, (words,), generator=g, device=device, dtype=torch.int32)
    programs = 6 * torch.cuda.get_device_properties(device).multi_processor_count
    per = -(-words // programs // CHUNK) * CHUNK
    sink = torch.empty(programs * CHUNK, dtype=torch.int32, device=device)
    for _ in range(3):
        moe_experts_from_logits(x, logits, 4, e.mlp1_blocks, e.mlp1_scales, e.mlp1_bias,
                                e.mlp2_blocks, e.mlp2_scales, e.mlp2_bias, 7.0,
                                tiled=isinstance(e, TiledExpertWeights))  # fmt: skip
        _chain_kernel[(programs,)](stream, sink, words, PER=per, CH=CHUNK, PDL=False, num_warps=4)
    torch.cuda.synchronize()
    print(json.dumps({"ran": "moe_experts_from_logits and the 32 MB stream, 3 times each"}))


def summarize(path: str) -> None:
    """One JSON line per profiled kernel launch from ncu's `--csv --print-units base` output
    (nanoseconds, bytes, bytes per second)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header: list[str] | None = None
    kernels: dict[tuple[str, str], dict[str, str]] = collections.OrderedDict()
    for row in rows:
        if row and row[0] == "ID":
            header = row
        elif header and len(row) == len(header):
            record = dict(zip(header, row, strict=True))
            key = (record["ID"], record["Kernel Name"].split("(")[0].strip())
            kernels.setdefault(key, {})[record["Metric Name"]] = record["Metric Value"]
    for (launch, name), values in kernels.items():
        line: dict[str, object] = {"launch": int(launch), "kernel": name}
        for label, metric in METRICS.items():
            value = float(values.get(metric, "nan").replace(",", ""))
            if label == "us":
                value /= 1e3  # ncu reports ns
            elif label == "dram_bytes_per_s":
                label, value = "dram_TBps", value / 1e12
            line[label] = round(value, 3)
        print(json.dumps(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", action="store_true", help="print ncu's --metrics list")
    parser.add_argument("--summarize", metavar="CSV", help="summarise ncu's CSV output")
    args = parser.parse_args()
    if args.metrics:
        print(",".join(METRICS.values()))
    elif args.summarize:
        summarize(args.summarize)
    else:
        run()


if __name__ == "__main__":
    main()
