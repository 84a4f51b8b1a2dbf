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
        self.logits: torch.Tensor | None = None  # static output [1, V]
        self.last: torch.Tensor | None = None  # static output [1, H] of `forward_last`
        self.graph: torch.cuda.CUDAGraph | None = None
        self.last_graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self._ran_eagerly: set[str] = set()
        """Which forwards ran once eagerly: each compiles its own kernels (the unembedding GEMV,
        the final norm) before its capture."""

    def step(self, token: int) -> torch.Tensor:
        """Forward one token at cache.offset; returns logits [1, V] (valid until the next step)."""
        self.model.embed([token], out=self.hidden)
        return self.forward()

    def forward(self) -> torch.Tensor:
        """Forward the row already in `hidden` (`decode_pipeline` gathers it on the device) at
        cache.offset and advance the offset; returns logits [1, V]: the static `logits` from the
        second call on, a fresh tensor at the first (eager) one."""
        if self.graph is None:
            if "logits" not in self._ran_eagerly or not self.capture:
                self._ran_eagerly.add("logits")
                self.eager_steps += 1
                return self.model.forward_hidden(self.hidden, self.cache)
            self.graph, self.logits = self._capture(self.model.forward_hidden)
        assert self.graph is not None and self.logits is not None
        self.graph.replay()
        return self.logits

    def forward_last(self) -> torch.Tensor:
        """`forward` without the final norm and the unembedding: returns the last layer's row
        [1, H] (`last` once captured) instead of the logits."""
        if self.last_graph is None:
            if "last" not in self._ran_eagerly or not self.capture:
                self._ran_eagerly.add("last")
                self.eager_steps += 1
                return self.model.forward_last(self.hidden, self.cache)
            self.last_graph, self.last = self._capture(self.model.forward_last)
        assert self.last_graph is not None and self.last is not None
        self.last_graph.replay()
        return self.last

    def _capture(self, forward) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        torch.cuda.synchronize(self.model.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = forward(self.hidden, self.cache)
        return graph, out
