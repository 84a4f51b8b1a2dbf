"""Decode as a CUDA graph: one replay runs a whole T == 1 forward (about 600 kernel launches).

The KV buffers are static and the position lives on the device (`KVCache.offset`, advanced by
the forward itself), so one captured forward serves every later step: the new token's embedded
row goes into a static input (the embedding lookup stays outside this graph, since the table may
live in host memory: the host writes the row, or `decode_pipeline`'s sampling graph gathers it on
the device), the graph replays, and the static logits hold the result. The first step runs eagerly
so that every kernel is compiled and every autotuner has chosen its blocks before capture (a
capture records launches, it runs nothing). Follows `TokenGenerator` in gpt-oss
`triton/model.py` and gpt-fast's `decode_one_token` under `torch.compile(mode="reduce-overhead")`.
"""

from __future__ import annotations

import torch

from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.transformer import Transformer


class DecodeGraph:
    """Replays a captured one-token forward over one KV cache.

    Two forwards can be captured, each at its second use: the whole one (`forward`, logits) and
    the one that stops before the final norm (`forward_last`, for `Ops.greedy_into`). They share
    the static input row and the cache; a step replays one of them."""

    def __init__(self, model: Transformer, cache: KVCache, *, capture: bool = True) -> None:
        self.model = model
        self.cache = cache
        self.capture = capture
        """False: every step runs eagerly through the same static buffers (CPU tests)."""
        hidden = model.config.hidden_size
        self.hidden = torch.zeros(1, hidden, dtype=model.dtype, device=model.device)
        """Static input: the embedded row of the token to forward."""
        self._graphs: dict[str, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        """The captured forwards by kind ("logits", "last") with their static outputs."""
        self._ran_eagerly: set[str] = set()
        """Which forwards ran once eagerly: each compiles its own kernels (the unembedding GEMV,
        the final norm) before its capture."""
        self.eager_steps = 0

    @property
    def graph(self) -> torch.cuda.CUDAGraph | None:
        """The captured whole forward, once `forward` has been called twice."""
        return self._graphs.get("logits", (None, None))[0]

    @property
    def logits(self) -> torch.Tensor | None:
        """`graph`'s static output [1, V]."""
        return self._graphs.get("logits", (None, None))[1]

    @property
    def last_graph(self) -> torch.cuda.CUDAGraph | None:
        """The captured `forward_last`."""
        return self._graphs.get("last", (None, None))[0]

    @property
    def last(self) -> torch.Tensor | None:
        """`last_graph`'s static output [1, H]."""
        return self._graphs.get("last", (None, None))[1]

    def step(self, token: int) -> torch.Tensor:
        """Forward one token at cache.offset; returns logits [1, V] (valid until the next step)."""
        self.model.embed([token], out=self.hidden)
        return self.forward()

    def forward(self) -> torch.Tensor:
        """Forward the row already in `hidden` (`decode_pipeline` gathers it on the device) at
        cache.offset and advance the offset; returns logits [1, V]: the static `logits` from the
        second call on, a fresh tensor at the first (eager) one."""
        return self._run("logits", self.model.forward_hidden)

    def forward_last(self) -> torch.Tensor:
        """`forward` without the final norm and the unembedding: returns the last layer's row
        [1, H] (`last` once captured) instead of the logits."""
        return self._run("last", self.model.forward_last)

    def _run(self, kind: str, forward) -> torch.Tensor:
        if kind not in self._graphs:
            if kind not in self._ran_eagerly or not self.capture:
                self._ran_eagerly.add(kind)
                self.eager_steps += 1
                return forward(self.hidden, self.cache)
            torch.cuda.synchronize(self.model.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = forward(self.hidden, self.cache)
            self._graphs[kind] = (graph, out)
        graph, out = self._graphs[kind]
        graph.replay()
        return out
