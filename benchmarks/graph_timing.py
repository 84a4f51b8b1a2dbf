"""Timing of GPU work replayed from a CUDA graph, shared by the benchmark scripts."""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch


def graph_time(fn: Callable[[], object], replays: int = 20, rounds: int = 5) -> float:
    """Median over rounds of the microseconds one call takes, replayed from a CUDA graph that
    holds `replays` calls (the first call runs eagerly: compiles, allocates)."""
    fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(replays):
            fn()
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / replays)
    return statistics.median(times)
