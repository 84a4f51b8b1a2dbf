"""Short prefill chunks as CUDA graphs: a chat's follow-up turn in one replay.

A follow-up turn prefills a few dozen tokens after a long cached history. Eagerly that is about
30 kernel launches a layer plus the Python around them (routing, rotary tables, the grouped MoE's
bookkeeping): 24 layers cost far more on the host than the ~4 ms the GPU needs (reading every
expert once). So a chunk of up to 128 tokens is padded to a bucket (16, 32, 64 or 128 rows) and
runs as that bucket's captured forward. Each bucket runs eagerly once (compiling and tuning its
kernels for that shape) and is captured right after, so from its second use on it replays.

The host copies the chunk's embedded rows into the bucket's static input and the index of its
last real row into a static device scalar; the graph returns that row's logits. The rows after
the real ones (pads) hold whatever an earlier chunk left there (finite rows or zeros). Why the
pads change nothing:

- Real rows never see them. Every op but attention works per token (norms, projections, rotary,
  MoE routing and experts), and attention is causal: pads sit after every real token.
- Their K/V land at positions L .. L+pad-1 after the real end L, which the cache does not count
  (its offset advances by the real length, outside the graph). In a full-attention layer the
  next real token at each of those positions overwrites the slot before any query can read it
  (a forward writes its K/V before it attends). A bucket is used only when offset + bucket <=
  context, so no pad wraps around onto an early position.
- In a sliding layer's ring of S slots a pad at position p evicts position p - S. A bucket is
  used only when bucket <= cache.max_step = S - W + 1, so p - S stays below the window of every
  real query of the chunk and of every later one; `KVCache.extend(padding=...)` counts the pads
  in `written`, so a later rollback is checked against them too (`KVCache.reusable_prefix`).

`tests/model/test_prefill_graph.py` checks logits and K/V against the unpadded forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.transformer import Transformer

BUCKETS = (16, 32, 64, 128)


@dataclass
class _Bucket:
    hidden: torch.Tensor  # [rows, H] static input
    last_row: torch.Tensor  # [1] int64: index of the last real row
    graph: torch.cuda.CUDAGraph | None = None
    logits: torch.Tensor | None = None  # [1, V] static output


class PrefillGraphs:
    """Runs short chunks padded to a bucket: captured on CUDA, eagerly with `capture=False`
    (the CPU tests run the padding this way)."""

    def __init__(
        self,
        model: Transformer,
        cache: KVCache,
        *,
        buckets: tuple[int, ...] = BUCKETS,
        capture: bool = True,
    ) -> None:
        self.model = model
        self.cache = cache
        self.buckets = tuple(sorted(buckets))
        self.capture = capture
        self._buckets: dict[int, _Bucket] = {}
        self._pool: tuple[int, int] | None = None
        """One memory pool for all buckets' graphs: they never run concurrently."""
        self.capture_error: str | None = None
        """Why capturing failed (an op that syncs, on some torch version); then chunks keep
        running eagerly, padded, instead of failing the user's turn."""

    def bucket_for(self, n_tokens: int, offset: int) -> int | None:
        """The rows a chunk of n_tokens at position `offset` runs padded to; None: run it
        eagerly (too long, or its pads would not fit the cache; see the module docstring)."""
        rows = next((b for b in self.buckets if b >= n_tokens), None)
        if rows is None or offset + rows > self.cache.context or rows > self.cache.max_step:
            return None
        return rows

    def run(self, tokens: list[int], rows: int) -> torch.Tensor:
        """Forward `tokens` at cache.offset padded to `rows` (from `bucket_for`); returns the
        last token's logits [1, V], valid until the next run. Advances cache.offset by
        len(tokens); the caller records the tokens with `cache.extend(tokens, padding=...)`."""
        n_tokens = len(tokens)
        if not 0 < n_tokens <= rows:
            raise ValueError(f"{n_tokens} tokens do not fit a bucket of {rows} rows")
        bucket = self._bucket(rows)
        self.model.embed(tokens, out=bucket.hidden[:n_tokens])
        bucket.last_row.fill_(n_tokens - 1)
        if bucket.graph is not None:
            bucket.graph.replay()
            logits = bucket.logits
        else:
            logits = self._forward(bucket)  # eagerly: compiles and tunes this shape's kernels
            if self.capture:
                self._capture(bucket)
        self.cache.advance(n_tokens)
        assert logits is not None
        return logits

    def _bucket(self, rows: int) -> _Bucket:
        if rows not in self._buckets:
            m = self.model
            hidden = torch.zeros(rows, m.config.hidden_size, dtype=m.dtype, device=m.device)
            last_row = torch.zeros(1, dtype=torch.int64, device=m.device)
            self._buckets[rows] = _Bucket(hidden, last_row)
        return self._buckets[rows]

    def _forward(self, bucket: _Bucket) -> torch.Tensor:
        return self.model.forward_hidden(
            bucket.hidden, self.cache, last_row=bucket.last_row, advance=False
        )

    def _capture(self, bucket: _Bucket) -> None:
        torch.cuda.synchronize(self.model.device)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self._pool):
                bucket.logits = self._forward(bucket)  # recorded, not run: the cache is untouched
        except RuntimeError as exc:
            self.capture, self.capture_error = False, f"{type(exc).__name__}: {exc}"
            bucket.logits = None
            torch.cuda.synchronize(self.model.device)
            return
        bucket.graph = graph
