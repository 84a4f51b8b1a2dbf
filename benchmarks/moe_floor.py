"""The MoE half's streaming floor: split launches against one persistent launch (H100).

    PYTHONPATH=$PWD python benchmarks/moe_floor.py

Bytes of one decode MoE at gpt-oss-20b's shapes, 4 experts of a token: 720 mlp1 items of 46 KB
(32 rows of 2880 fp4 codes) and 720 mlp2 items of 23 KB (16 rows), read with plain loads and an
XOR, no arithmetic, 8 layers in turn in a CUDA graph (each its own bytes, so L2 holds none):

- `split`: the engine's structure. An mlp1 launch, an mlp2 launch that requests its first step
  before waiting for mlp1 (programmatic dependent launch, PDL), a small combining launch.
- `persistent_*`: one launch of W workers (4 to 8 an SM, or 720) that take items in turn, all
  mlp1 items (in expert order) before the mlp2 items. An mlp2 item requests its first step, then
  waits only for its own expert's 180 mlp1 items (an arrival counter), not for the whole phase.
  Every worker must be resident at once (a spinning mlp2 item would otherwise wait for mlp1
  items of workers that cannot start); these small programs are, at up to 8 an SM.

Prints one JSON line per variant and round: microseconds per MoE and TB/s. It answers whether
the boundary between mlp1 and mlp2 costs streaming time in itself, which a persistent MoE kernel
would win back.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch
import triton
import triton.language as tl
from stream_floor import _stream_rest, graph_microseconds
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

PAIRS, BLOCKS = 4, 180  # (token, expert) pairs of one token; row blocks of each expert and phase
NW1, NW2 = 11520, 5760  # int32 words of an mlp1 item (32 rows x 1440 B) and an mlp2 item (16 rows)
STEP = 1024  # words a step (4 KB), as the decode expert GEMVs
LAYERS = 8


@triton.jit
def _first(ptr, NW: tl.constexpr, STEP: tl.constexpr):
    """An item's first step (requested early: before a wait)."""
    idx = tl.arange(0, STEP)
    return tl.load(ptr + idx, mask=idx < NW, other=0)


@triton.jit
def _rest(ptr, following, NW: tl.constexpr, STEP: tl.constexpr):
    """The item's other steps, XORed: `stream_floor`'s loop over NW words (the last step
    masked)."""
    PER: tl.constexpr = (NW + STEP - 1) // STEP * STEP
    return _stream_rest(ptr, 0, NW, following, tl.zeros([STEP], tl.int32), PER, STEP)


@triton.jit
def _mlp1_split(w1, sink, NW1: tl.constexpr, STEP: tl.constexpr):
    """mlp1's launch: it waits for the launch before (the router, here the last combine)."""
    gdc_wait()
    gdc_launch_dependents()
    item = tl.program_id(0)
    at = w1 + item.to(tl.int64) * NW1
    acc = _rest(at, _first(at, NW1, STEP), NW1, STEP)
    tl.store(sink + item, tl.sum(acc, axis=0))


@triton.jit
def _mlp2_split(w2, sink, NW2: tl.constexpr, STEP: tl.constexpr):
    """mlp2's launch: its first step requested before it waits for all of mlp1."""
    gdc_launch_dependents()
    item = tl.program_id(0)
    at = w2 + item.to(tl.int64) * NW2
    first = _first(at, NW2, STEP)
    gdc_wait()
    acc = _rest(at, first, NW2, STEP)
    tl.store(sink + 1024 + item, tl.sum(acc, axis=0))


@triton.jit
def _combine(sink, done, RESET: tl.constexpr):
    """The combining launch (reads what the items wrote); RESET zeroes the arrival counters."""
    gdc_launch_dependents()
    gdc_wait()
    values = tl.load(sink + tl.arange(0, 2048))
    tl.store(sink + 4096 + tl.program_id(0), tl.sum(values, axis=0))
    if RESET:
        tl.store(done + tl.arange(0, 4), tl.zeros([4], tl.int32))


@triton.jit
def _persistent(w1, w2, sink, done, workers, ROUNDS: tl.constexpr, NW1: tl.constexpr,
                NW2: tl.constexpr, STEP: tl.constexpr, BLOCKS: tl.constexpr,
                PAIRS: tl.constexpr):  # fmt: skip
    """Worker w takes items w, w + workers, ...: the mlp1 items (expert by expert), then the
    mlp2 items, each waiting only for its expert's count of finished mlp1 items."""
    gdc_wait()
    gdc_launch_dependents()
    for r in range(ROUNDS):
        item = tl.program_id(0) + r * workers
        if item < PAIRS * BLOCKS:
            at = w1 + item.to(tl.int64) * NW1
            acc = _rest(at, _first(at, NW1, STEP), NW1, STEP)
            tl.store(sink + item, tl.sum(acc, axis=0))
            tl.debug_barrier()  # every thread's store before the arrival
            tl.atomic_add(done + item // BLOCKS, 1, sem="release", scope="gpu")
        elif item < 2 * PAIRS * BLOCKS:
            q = item - PAIRS * BLOCKS
            at = w2 + q.to(tl.int64) * NW2
            first = _first(at, NW2, STEP)
            seen = tl.atomic_add(done + q // BLOCKS, 0, sem="acquire", scope="gpu")
            while seen < BLOCKS:
                seen = tl.atomic_add(done + q // BLOCKS, 0, sem="acquire", scope="gpu")
            acc = _rest(at, first, NW2, STEP)
            tl.store(sink + 1024 + q, tl.sum(acc, axis=0))


def main() -> None:
    device = torch.device("cuda")
    sms = torch.cuda.get_device_properties(device).multi_processor_count

    def codes(words: int) -> list[torch.Tensor]:
        return [torch.randint(0, 2**30, (words,), device=device, dtype=torch.int32)
                for _ in range(LAYERS)]  # fmt: skip

    w1, w2 = codes(PAIRS * BLOCKS * NW1), codes(PAIRS * BLOCKS * NW2)
    sink = torch.zeros(8192, dtype=torch.int32, device=device)
    done = [torch.zeros(4, dtype=torch.int32, device=device) for _ in range(LAYERS)]
    megabytes = PAIRS * BLOCKS * (NW1 + NW2) * 4 / 1e6
    items = PAIRS * BLOCKS

    def split() -> None:
        for i in range(LAYERS):
            _mlp1_split[(items,)](w1[i], sink, NW1=NW1, STEP=STEP, num_warps=4, launch_pdl=True)
            _mlp2_split[(items,)](w2[i], sink, NW2=NW2, STEP=STEP, num_warps=4, launch_pdl=True)
            _combine[(3,)](sink, done[i], RESET=False, num_warps=4, launch_pdl=True)

    def persistent(workers: int) -> Callable[[], None]:
        def launch() -> None:
            for i in range(LAYERS):
                _persistent[(workers,)](w1[i], w2[i], sink, done[i], workers,
                                        ROUNDS=triton.cdiv(2 * items, workers), NW1=NW1,
                                        NW2=NW2, STEP=STEP, BLOCKS=BLOCKS, PAIRS=PAIRS,
                                        num_warps=4, launch_pdl=True)  # fmt: skip
                _combine[(3,)](sink, done[i], RESET=True, num_warps=4, launch_pdl=True)

        return launch

    variants = {"split": split}
    for per_sm in (4, 5, 6, 8):
        variants[f"persistent_{per_sm}_an_sm"] = persistent(sms * per_sm)
    variants["persistent_720"] = persistent(items)
    for _ in range(2):
        for name, launch in variants.items():
            us = graph_microseconds(launch, inner=1) / LAYERS
            row = {"variant": name, "us_per_moe": round(us, 2), "megabytes": round(megabytes, 1),
                   "TBps": round(megabytes / us, 3),
                   "device": torch.cuda.get_device_name(device)}  # fmt: skip
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
