"""Decode one step ahead: the GPU computes token N+1 while the host still handles token N.

Unpipelined (`GPTOSS_PIPELINE=0`, `LocalGenerator._steps`) the host waits for each token
(`int(sample)`), hands it to the consumer, embeds it and only then launches the next step, and
the GPU idles through all of it: ~50 us a token on an H100 with an empty consumer, more behind a
UI thread. Here one step is: forward the row in `hidden` (the decode graph), sample the next id
into the device buffer `token` and gather that id's embedded row into `hidden` when the
embedding table is on the device, and put the id into a slot of pinned host memory
(`ops.sample_into`, which never syncs; greedy with the kernels is one launch that also writes
the host slot), behind an event. The loop launches step N+1 *before* it waits for token N, so
the GPU always has a step queued. With the table on the host the row can only be gathered once
token N is on the host: then step N+1 is launched right after the wait, before the consumer
sees token N, and the GPU works while the consumer does.

A step launched ahead guesses that token N will be fed back. When token N ends the call (a stop
token, or a cancel seen after the consumer had it) the guess is dropped: it wrote K/V at
position L (the host mirror's length) and moved the device offset to L + 1, so the offset goes
back to L (`discard`). Position L is recorded as written scratch when the step is launched
(`KVCache.extend(padding=1)`), because in a sliding layer's ring it evicted position L - S:
`reusable_prefix` then refuses a rollback that would need that key. The one consequence: the
next call rolling back exactly `max_step` tokens (8,193 at the default slack) from the end of a
call that stopped at a stop token re-prefills instead of reusing. Limits known in advance
(max_tokens, a full context) never launch a step ahead, and nothing else the consumer sees
changes: the same ids (the sampler draws what it drew before, in the same order), stop reasons,
stats, cache contents and prefix reuse.

Greedy steps over a model whose kernels screen the unembedding (`Ops.prepare_unembedding`) stop
the forward before the final norm (`DecodeGraph.forward_last`) and pick the id with
`Ops.greedy_into`, which reads a fraction of the unembedding and gives the full argmax's id.

On CUDA the sample (and the gather) after a replayed forward is a second, small captured graph
per sampling setting, registered with the sampling generator so that each replay advances its
Philox offset exactly as the eager ops do: seeded runs give the ids of the eager sampler. A torch
without `CUDAGraph.register_generator_state`, or a failed capture, leaves that setting's sampling
eager (still on the device, still without a sync, so still pipelined; `capture_error` says why).
On the CPU the same loop runs eagerly: the tests in tests/model/test_decode_pipeline.py pin it
against the unpipelined loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import torch

from gptoss_chat.generator import GenerationStats
from gptoss_chat.model.decode_graph import DecodeGraph
from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.transformer import Transformer

PIPELINE_ENV = "GPTOSS_PIPELINE"

_SamplingKey = tuple[float, float, torch.Generator | None]


def pipeline_enabled() -> bool:
    """False when GPTOSS_PIPELINE is 0/false/no/off: decode the unpipelined way (for A/B)."""
    return os.environ.get(PIPELINE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class PipelinedDecode:
    """Static buffers and launches of device-fed decode steps over one model and KV cache."""

    def __init__(
        self, model: Transformer, cache: KVCache, graph: DecodeGraph | None, *, capture: bool = True
    ) -> None:
        self.model = model
        self.cache = cache
        self.graph = graph
        device = model.device
        if graph is not None:
            self.hidden = graph.hidden  # the decode graph's static input [1, H]
        else:
            self.hidden = torch.zeros(1, model.config.hidden_size, dtype=model.dtype, device=device)
        self.token = torch.zeros(1, dtype=torch.int64, device=device)  # [1] the last sampled id
        self.feeds_on_device = model.weights.embedding.device == device
        """Whether a step gathers the next row itself (else the host embeds each token)."""
        cuda = device.type == "cuda"
        # Two slots: the token waited on and the one launched ahead are in flight at once.
        self._host = torch.zeros(2, dtype=torch.int64, pin_memory=cuda)
        self._events = [torch.cuda.Event() if cuda else None for _ in range(2)]
        self._slot = 0
        self._sampling: _SamplingKey = (0.0, 1.0, None)
        self.capture = capture and graph is not None
        self._tails: dict[tuple[_SamplingKey, int, bool], torch.cuda.CUDAGraph | None] = {}
        """Captured sample(+gather) graphs by sampling setting, host slot and whether the step
        is screened (`_screened`); None: that setting runs eagerly."""
        self.capture_error: str | None = None
        self._launched = False
        """Whether a step ran before. The first one compiles and tunes every kernel (seconds):
        it waits until the first token is on the host, so that token's latency stays as it was."""

    def tokens(
        self,
        logits: torch.Tensor,
        *,
        prompt_tokens: int,
        stop_tokens: frozenset[int],
        limit: int | None,
        stats: GenerationStats,
        started: float,
        stopped: Callable[[], bool],
    ) -> Iterator[int]:
        """Yield ids sampled from `logits` [1, V] (the prompt's last position) and onwards, with
        `LocalGenerator._steps`'s checks in its order; `stopped()` says the consumer cancelled.
        The caller has checked cancel and max_tokens before the first token, and calls `discard`
        when this iterator ends, however it ends."""
        context = self.cache.context
        pending = self.first(logits)
        while True:
            produced = stats.generated_tokens + 1  # counting the token waited on below
            more = (limit is None or produced < limit) and prompt_tokens + produced < context
            ahead, failure = None, None
            if more and self.feeds_on_device and self._launched:
                ahead, failure = self._launch_keeping_oom(None)
            token = self.wait(pending)
            if more and ahead is None and failure is None and token not in stop_tokens:
                # the table is on the host, or the first step ever (see `_launched`)
                ahead, failure = self._launch_keeping_oom(None if self.feeds_on_device else token)
            stats.record_token(started)
            yield token
            if token in stop_tokens:
                stats.stop_reason = "stop"
            elif prompt_tokens + stats.generated_tokens >= context:
                stats.stop_reason = "context"
            elif stopped():
                stats.stop_reason = "cancelled"
            elif limit is not None and stats.generated_tokens >= limit:
                stats.stop_reason = "length"
            else:
                if failure is not None:
                    raise failure  # where the unpipelined loop's forward of `token` fails
                assert ahead is not None  # `more` held: every limit known in advance passed
                self.cache.extend([token])  # keep the step that forwarded it
                pending = ahead
                continue
            return

    def configure(self, temperature: float, top_p: float, rng: torch.Generator | None) -> None:
        """The sampling setting of the coming steps (`ops.sample`'s arguments)."""
        self._sampling = (0.0, 1.0, None) if temperature <= 0 else (temperature, top_p, rng)

    def first(self, logits: torch.Tensor) -> int:
        """Sample from a prefill's logits [1, V] into `token` (and its row into `hidden`) and
        into a host slot. Returns the slot to `wait` on."""
        slot = self._next_slot()
        self._sample_eagerly(logits, slot)
        return self._publish(slot)

    def launch(self, token: int | None = None) -> int:
        """Forward the last sampled id at cache.offset (its row is in `hidden`; or `token`,
        embedded on the host), sample the next one, start copying it to the host. The host
        mirror is not extended: the loop does that once it keeps the step (`discard` drops it).
        Returns the slot to `wait` on."""
        if token is not None:
            self.model.embed([token], out=self.hidden)
        self._launched = True
        self.cache.extend([], padding=1)  # this step writes position L (module docstring)
        screened = self._screened()
        if screened:  # the last layer's row only: `Ops.greedy_into` needs no full logits
            if self.graph is not None:
                out = self.graph.forward_last()
            else:
                out = self.model.forward_last(self.hidden, self.cache)
        elif self.graph is not None:
            out = self.graph.forward()
        else:
            out = self.model.forward_hidden(self.hidden, self.cache)
        slot = self._next_slot()
        tail = self._tail(out, slot, screened)
        if tail is not None:
            tail.replay()
        else:
            self._finish_eagerly(out, slot, screened)
        return self._publish(slot)

    def _screened(self) -> bool:
        """Whether the coming step is greedy over a model with an unembedding screen: then it
        forwards to the last layer's row and `Ops.greedy_into` picks the id from it."""
        weights = self.model.weights
        return self._sampling[0] <= 0 and weights.unembedding_screen is not None

    def _launch_keeping_oom(
        self, token: int | None
    ) -> tuple[int | None, torch.OutOfMemoryError | None]:
        """`launch`, with an out-of-memory error kept for the loop to raise where the
        unpipelined loop meets it: after the consumer got the token, and only if it is fed back.
        The token waited on is safe: its copy to the host was queued before this launch."""
        try:
            return self.launch(token), None
        except torch.OutOfMemoryError as exc:
            return None, exc

    def wait(self, slot: int) -> int:
        """The id copied into `slot`, once it has arrived (the one host sync of a step)."""
        event = self._events[slot]
        if event is not None:
            event.synchronize()
        return int(self._host[slot])

    def discard(self) -> None:
        """Drop every step not kept: the device offset goes back to the host mirror's length."""
        self.cache.truncate(len(self.cache.tokens))

    def _next_slot(self) -> int:
        # Slot reuse is safe: the loop read this slot (wait) before launching the step after.
        slot, self._slot = self._slot, 1 - self._slot
        return slot

    def _publish(self, slot: int) -> int:
        """Mark the end of the work that writes `slot` (the sampler wrote the id there)."""
        event = self._events[slot]
        if event is not None:
            event.record()
        return slot

    def _finish_eagerly(self, out: torch.Tensor, slot: int, screened: bool) -> None:
        """The step's sampling from its logits, or with `screened` its greedy pick from the
        last layer's row `out`: the id into `token` and the host slot, its row into `hidden`."""
        if not screened:
            self._sample_eagerly(out, slot)
            return
        weights, eps = self.model.weights, self.model.config.rms_norm_eps
        table = weights.embedding if self.feeds_on_device else None
        self.model.ops.greedy_into(out, weights.norm, eps, weights.unembedding,
                                   weights.unembedding_screen, self.token, table, self.hidden,
                                   host=self._host[slot : slot + 1])  # fmt: skip

    def _sample_eagerly(self, logits: torch.Tensor, slot: int) -> None:
        temperature, top_p, rng = self._sampling
        table = self.model.weights.embedding if self.feeds_on_device else None
        # The sampler also puts the id into the slot: greedy with the kernels writes it from its
        # own kernel into pinned memory, without the copy (and the copy engine's start-up, ~5 us
        # a token on an H100) that would otherwise follow it on the stream.
        self.model.ops.sample_into(logits[0], temperature, top_p, rng, self.token, table,
                                   self.hidden, host=self._host[slot : slot + 1])  # fmt: skip

    def _tail(self, out: torch.Tensor, slot: int, screened: bool) -> torch.cuda.CUDAGraph | None:
        """The captured sampling (or greedy pick, `screened`) for the current setting and host
        slot when `out` is the decode graph's static output; captured at its first use (the
        same ops have run eagerly by then: `first` samples, and a screened step's first pick
        runs eagerly because its forward did, so nothing is initialised inside the capture)."""
        if not self.capture or self.graph is None:
            return None
        if out is not (self.graph.last if screened else self.graph.logits):
            return None
        key = (self._sampling, slot, screened)
        if key not in self._tails:
            self._tails[key] = self._capture_tail(out, self._sampling[2], slot, screened)
        return self._tails[key]

    def _capture_tail(
        self, out: torch.Tensor, rng: torch.Generator | None, slot: int, screened: bool
    ) -> torch.cuda.CUDAGraph | None:
        graph = torch.cuda.CUDAGraph()
        if rng is not None:
            register = getattr(graph, "register_generator_state", None)
            if register is None:  # torch < 2.4: its capture only takes the default generator
                self.capture_error = "this torch cannot capture a torch.Generator's draws"
                return None
            register(rng)
        try:
            with torch.cuda.graph(graph):  # synchronizes first; records, runs nothing
                self._finish_eagerly(out, slot, screened)
        except RuntimeError as exc:
            self.capture_error = f"{type(exc).__name__}: {exc}"
            torch.cuda.synchronize(self.model.device)
            return None
        return graph
