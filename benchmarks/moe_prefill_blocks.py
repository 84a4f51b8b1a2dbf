"""Prefill MoE block configs per expert layout: `WINNERS` against `TILED_WINNERS` (H100).

    PYTHONPATH=$PWD python benchmarks/moe_prefill_blocks.py [--tokens 8192] [--repeats 2]

One layer of random gpt-oss-20b experts (32 experts, H = I = 2880) in the checkpoint's layout
and tiled (expert_layout.py, what a GPU engine runs); random top-4 routing of `--tokens` tokens
(8192: the 128-row tiles whose blocks the two tables set). For each layout, `moe_grouped` is
timed with the 128-row tiles' blocks taken from each table, in turn, `--repeats` times. Prints
one JSON line per measurement: milliseconds per call (mean of 5 after a warm-up) and whether
the output equals the first table's bit for bit (the blocks change no arithmetic).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gptoss_chat.kernels import moe_prefill
from gptoss_chat.kernels.expert_layout import MLP1_TILE, MLP2_TILE, tile
from tests.kernels.helpers import random_experts


def timed(call, repeats: int = 5) -> tuple[torch.Tensor, float]:
    out = call()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        call()
    end.record()
    torch.cuda.synchronize()
    return out, start.elapsed_time(end) / repeats


@contextmanager
def large_tile_blocks(blocks: dict) -> Iterator[None]:
    """Both layouts launch their 128-row tiles with `blocks`' configs (the tiled path reads
    TILED_WINNERS, the checkpoint's WINNERS); both tables are restored after."""
    saved = dict(moe_prefill.WINNERS), dict(moe_prefill.TILED_WINNERS)
    large = {key: cfg for key, cfg in blocks.items() if key[1]}
    moe_prefill.WINNERS.update(large)
    moe_prefill.TILED_WINNERS.update(large)
    try:
        yield
    finally:
        for table, before in zip(
            (moe_prefill.WINNERS, moe_prefill.TILED_WINNERS), saved, strict=True
        ):
            table.clear()
            table.update(before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/moe_prefill_blocks.py needs a CUDA GPU", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    w = random_experts(32, 2880, 2880, dev, seed=0)
    b1, s1 = tile(w.mlp1_blocks, w.mlp1_scales, *MLP1_TILE)
    b2, s2 = tile(w.mlp2_blocks, w.mlp2_scales, *MLP2_TILE)
    layouts = {
        "tiled": (b1, s1, w.mlp1_bias, b2, s2, w.mlp2_bias),
        "checkpoint": (w.mlp1_blocks, w.mlp1_scales, w.mlp1_bias, w.mlp2_blocks, w.mlp2_scales,
                       w.mlp2_bias),
    }  # fmt: skip
    g = torch.Generator(device=dev).manual_seed(1)
    n = args.tokens
    x = torch.randn(n, 2880, generator=g, device=dev).to(torch.bfloat16)
    ids = torch.stack([torch.randperm(32, generator=g, device=dev)[:4] for _ in range(n)])
    gates = torch.softmax(torch.randn(n, 4, generator=g, device=dev), -1)
    tables = {
        "WINNERS": dict(moe_prefill.WINNERS),
        "TILED_WINNERS": dict(moe_prefill.TILED_WINNERS),
    }
    for repeat in range(args.repeats):
        for layout, experts in layouts.items():
            first = None
            for name, blocks in tables.items():
                with large_tile_blocks(blocks):
                    out, ms = timed(lambda e=experts, t=layout == "tiled": moe_prefill.moe_grouped(
                        x, ids, gates, *e, 7.0, tiled=t))  # fmt: skip
                first = out if first is None else first
                print(json.dumps({"layout": layout, "blocks": name, "tokens": n, "repeat": repeat,
                                  "ms": round(ms, 3), "same_output": bool(torch.equal(out, first)),
                                  "device": torch.cuda.get_device_name()}), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
