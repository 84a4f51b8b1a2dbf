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
    """Replays a captured one-token forward over one KV cache."""

    def __init__(self, model: Transformer, cache: KVCache, *, capture: bool = True) -> None:
        self.model = model
        self.cache = cache
        self.capture = capture
        """False: every step runs eagerly through the same static buffers (CPU tests)."""
        hidden = model.config.hidden_size
        self.hidden = torch.zeros(1, hidden, dtype=model.dtype, device=model.device)
        """Static input: the embedded row of the token to forward."""
        self.logits: torch.Tensor | None = None  # static output [1, V]
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0

    def step(self, token: int) -> torch.Tensor:
        """Forward one token at cache.offset; returns logits [1, V] (valid until the next step)."""
        self.model.embed([token], out=self.hidden)
        return self.forward()

    def forward(self) -> torch.Tensor:
        """Forward the row already in `hidden` (`decode_pipeline` gathers it on the device) at
        cache.offset and advance the offset; returns logits [1, V]: the static `logits` from the
        second call on, a fresh tensor at the first (eager) one."""
        if self.graph is None:
            if self.eager_steps == 0 or not self.capture:
                self.eager_steps += 1
                return self.model.forward_hidden(self.hidden, self.cache)
            self._capture()
        assert self.graph is not None and self.logits is not None
        self.graph.replay()
        return self.logits

    def _capture(self) -> None:
        torch.cuda.synchronize(self.model.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.logits = self.model.forward_hidden(self.hidden, self.cache)
        self.graph = graph
