"""The streaming floor of a decode step's dependent phases (H100).

    python benchmarks/stream_floor.py

Eight phases of 32 MB (mlp1's size) or 16 MB (mlp2's) are read as eight separate launches
(with and without programmatic dependent launch, PDL: the next launch requests its first bytes
while the one before finishes) or as one persistent launch, free-running or with a grid-wide
barrier between phases (with or without the next phase's first bytes requested before the
barrier). Plain loads and an XOR, no arithmetic, in a CUDA graph; two copies of the data so L2
never holds a phase. Prints one JSON line per shape and variant: microseconds a phase, TB/s.

What it answers: how much of a launch boundary PDL already hides, and whether a persistent kernel
with grid-wide barriers would stream a layer's dependent phases faster than launches do.

    python benchmarks/stream_floor.py --programs

instead streams the expert GEMVs' program shapes: every program reads 11 (mlp1's) or 6 (mlp2's)
steps of 4 KB, 4 warps, PDL launches, for grids of 4 to 12 programs an SM (the decode experts
run 720: 5.45 an SM). It answers how fast the experts' bytes could stream with their grid and
step count and no arithmetic at all.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

PHASES = 8
CHUNK = 1024  # int32 words a step (4 KB)


@triton.jit
def _stream_rest(w_ptr, base, end, following, acc, PER: tl.constexpr, CH: tl.constexpr):
    """The rest of a program's PER words from `base` (the first CH already in `following`), the
    next step always requested before the held one is used; XORed into `acc`."""
    idx = tl.arange(0, CH)
    for step in range(1, PER // CH):
        held = following
        at = base + step * CH + idx
        following = tl.load(w_ptr + at, mask=at < end, other=0)
        acc ^= held
    return acc ^ following


@triton.jit
def _chain_kernel(w_ptr, out_ptr, N, PER: tl.constexpr, CH: tl.constexpr, PDL: tl.constexpr):
    """One phase: program p reads words [p * PER, (p + 1) * PER) of N."""
    if PDL:
        gdc_launch_dependents()
    pid = tl.program_id(0)
    base = pid.to(tl.int64) * PER
    idx = tl.arange(0, CH)
    acc = tl.zeros([CH], dtype=tl.int32)
    following = tl.load(w_ptr + base + idx, mask=base + idx < N, other=0)
    if PDL:
        gdc_wait()
    acc = _stream_rest(w_ptr, base, N, following, acc, PER, CH)
    tl.store(out_ptr + pid * CH + idx, acc)


@triton.jit
def _persistent_kernel(w_ptr, out_ptr, count_ptr, N, programs, PHASES: tl.constexpr,
                       PER: tl.constexpr, CH: tl.constexpr, BARRIER: tl.constexpr,
                       EARLY: tl.constexpr):  # fmt: skip
    """All phases in one launch; with BARRIER no program starts phase p before every program has
    finished phase p - 1 (an arrival count); EARLY requests the phase's first bytes before."""
    pid = tl.program_id(0)
    idx = tl.arange(0, CH)
    acc = tl.zeros([CH], dtype=tl.int32)
    for phase in range(PHASES):
        base = phase.to(tl.int64) * N + pid.to(tl.int64) * PER
        end = (phase + 1).to(tl.int64) * N
        if EARLY:
            following = tl.load(w_ptr + base + idx, mask=base + idx < end, other=0)
        if BARRIER and phase > 0:
            arrived = tl.atomic_add(count_ptr, 0, sem="acquire", scope="gpu")
            while arrived < programs * phase:
                arrived = tl.atomic_add(count_ptr, 0, sem="acquire", scope="gpu")
        if not EARLY:
            following = tl.load(w_ptr + base + idx, mask=base + idx < end, other=0)
        acc = _stream_rest(w_ptr, base, end, following, acc, PER, CH)
        if BARRIER:
            tl.store(out_ptr + pid * CH + idx, acc)
            tl.debug_barrier()
            tl.atomic_add(count_ptr, 1, sem="acq_rel", scope="gpu")
    tl.store(out_ptr + pid * CH + idx, acc)


def graph_microseconds(launch: Callable[[], None], replays: int = 20, inner: int = 4) -> float:
    """Median time of one `launch` captured `inner` times in a CUDA graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            launch()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(inner):
            launch()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) * 1e3 / inner)
    return sorted(times)[len(times) // 2]


def variants(buffers, out, count, words, programs, per, warps) -> dict[str, Callable[[], None]]:
    """The launches of each variant; consecutive calls alternate between the two data copies."""
    turn = [0]

    def data() -> torch.Tensor:
        turn[0] ^= 1
        return buffers[turn[0]]

    def chain(pdl: bool) -> Callable[[], None]:
        def launch() -> None:
            phases = data()
            for phase in range(PHASES):
                _chain_kernel[(programs,)](phases[phase * words :], out, words, PER=per,
                                           CH=CHUNK, PDL=pdl, num_warps=warps,
                                           launch_pdl=pdl)  # fmt: skip

        return launch

    def persistent(barrier: bool, early: bool) -> Callable[[], None]:
        def launch() -> None:
            phases = data()
            count.zero_()
            _persistent_kernel[(programs,)](phases, out, count, words, programs, PHASES=PHASES,
                                            PER=per, CH=CHUNK, BARRIER=barrier, EARLY=early,
                                            num_warps=warps)  # fmt: skip

        return launch

    return {
        "launches": chain(False),
        "launches_pdl": chain(True),
        "persistent_free": persistent(False, True),
        "persistent_barrier": persistent(True, False),
        "persistent_barrier_early": persistent(True, True),
    }


EXPERT_PROGRAMS = 720
"""The grid of either expert GEMV at gpt-oss-20b's shapes: 4 experts x 180 blocks of rows."""


def program_shapes() -> None:
    """TB/s of PDL launches whose programs each stream a fixed 11 or 6 steps of 4 KB."""
    device = torch.device("cuda")
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    out = torch.empty(1 << 22, dtype=torch.int32, device=device)
    count = torch.zeros(4, dtype=torch.int32, device=device)
    grids = sorted({sms * per_sm for per_sm in (4, 5, 6, 7, 8, 10, 12)} | {EXPERT_PROGRAMS})
    for steps in (11, 6):
        per = steps * CHUNK
        most = max(grids) * per
        buffers = [torch.randint(-(2**31), 2**31 - 1, (PHASES * most,), dtype=torch.int32,
                                 device=device) for _ in range(2)]  # fmt: skip
        for programs in grids:
            words = programs * per
            us = graph_microseconds(
                variants(buffers, out, count, words, programs, per, 4)["launches_pdl"]
            )
            row = {"steps": steps, "programs": programs,
                   "programs_per_sm": round(programs / sms, 2),
                   "megabytes": round(words * 4 / 2**20, 1),
                   "us_per_phase": round(us / PHASES, 2),
                   "TBps": round(PHASES * words * 4 / us / 1e6, 3),
                   "device": torch.cuda.get_device_name(device)}  # fmt: skip
            print(json.dumps(row), flush=True)
        del buffers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", action="store_true",
                        help="the expert GEMVs' program shapes (module docstring)")  # fmt: skip
    if parser.parse_args().programs:
        program_shapes()
        return
    device = torch.device("cuda")
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    out = torch.empty(1 << 22, dtype=torch.int32, device=device)
    count = torch.zeros(4, dtype=torch.int32, device=device)
    for megabytes in (32, 16):
        words = megabytes * (1 << 20) // 4
        buffers = [torch.randint(-(2**31), 2**31 - 1, (PHASES * words,), dtype=torch.int32,
                                 device=device) for _ in range(2)]  # fmt: skip
        for warps in (4, 8):
            for per_sm in (2, 4, 6):
                programs = sms * per_sm
                per = -(-words // programs // CHUNK) * CHUNK
                launches = variants(buffers, out, count, words, programs, per, warps)
                for name, launch in launches.items():
                    us = graph_microseconds(launch)
                    row = {"megabytes": megabytes, "warps": warps, "programs_per_sm": per_sm,
                           "variant": name, "us_per_phase": round(us / PHASES, 2),
                           "TBps": round(PHASES * words * 4 / us / 1e6, 3),
                           "device": torch.cuda.get_device_name(device)}  # fmt: skip
                    print(json.dumps(row), flush=True)
        del buffers


if __name__ == "__main__":
    main()
