"""The Generator protocol: token ids in, token ids out.

A generator knows nothing of Harmony. The conversation core renders the prompt, hands the ids
to a generator, and parses what comes back. Implementations: the in-process engine
(`gptoss_chat.model.generator`), a remote server (vLLM), and `ReplayGenerator`, which plays
back recorded ids for tests and demos and is never presented as a model.

Generators block (GPU work, HTTP): callers run them off the UI's event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick the next token. temperature 0 means greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    """Upper bound on generated tokens for one call (None: until a stop token or the context)."""


class CancelToken:
    """Set from any thread to stop a generation between two tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class GenerationStats:
    """Figures for one `generate` call; the UI's status bar and the benchmarks read them."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens whose KV entries were reused from an earlier call (prefix reuse)."""
    generated_tokens: int = 0
    time_to_first_token: float = 0.0
    """Seconds from the call to the first generated token (prefill of the uncached suffix)."""
    decode_seconds: float = 0.0
    """Seconds spent after the first token."""
    stop_reason: str = ""
    """'stop' (a stop token), 'length' (max_tokens), 'cancelled', 'context' (context full)."""

    def record_token(self, started: float) -> None:
        """Count one generated token; `started` is the call's perf_counter() at its start."""
        elapsed = time.perf_counter() - started
        if self.generated_tokens == 0:
            self.time_to_first_token = elapsed
        else:
            self.decode_seconds = elapsed - self.time_to_first_token
        self.generated_tokens += 1

    @property
    def decode_tokens_per_second(self) -> float:
        steps = self.generated_tokens - 1
        return steps / self.decode_seconds if steps > 0 and self.decode_seconds > 0 else 0.0

    @property
    def prefill_tokens_per_second(self) -> float:
        fresh = self.prompt_tokens - self.cached_tokens
        t = self.time_to_first_token
        return fresh / t if fresh > 0 and t > 0 else 0.0


class GeneratorError(RuntimeError):
    """A generator failed in a way the user should read (bad checkpoint, server error)."""


class ContextOverflowError(GeneratorError):
    """The prompt plus the tokens to generate do not fit the context window."""

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(
            f"the conversation needs {needed} tokens but the context holds {available}; "
            "start a new conversation (/clear) or raise --context"
        )
        self.needed = needed
        self.available = available


@runtime_checkable
class Generator(Protocol):
    """Anything that continues a token sequence."""

    name: str
    """Shown in the status bar, e.g. 'local gpt-oss-20b (cuda, triton)'."""

    context_length: int
    """The most tokens (prompt + generated) one call may hold."""

    last_stats: GenerationStats
    """Figures of the most recent call, complete once its iterator is exhausted."""

    def generate(
        self,
        tokens: Sequence[int],
        *,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        """Yield generated ids one by one; the stop token that ended generation is yielded last.

        Stops at a stop token, after `sampling.max_tokens`, when `cancel` is set (checked between
        tokens) or when the context is full. Raises ContextOverflowError before generating
        anything if the prompt alone does not fit.
        """
        ...


@dataclass
class ReplayGenerator:
    """Plays back recorded completions, one per `generate` call, for tests and demos.

    Each script is the list of ids the model would produce; it is cut at the first stop token
    in `stop_tokens`, as a real model would stop there. `delay` paces tokens to imitate a model.
    When the scripts run out, the last one repeats.
    """

    scripts: list[list[int]]
    delay: float = 0.0
    name: str = "replay"
    context_length: int = 131072
    last_stats: GenerationStats = field(default_factory=GenerationStats)
    prompts: list[list[int]] = field(default_factory=list)
    """Every prompt seen, so tests can check what the core rendered."""
    _calls: int = 0

    def generate(
        self,
        tokens: Sequence[int],
        *,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        if not self.scripts:
            raise GeneratorError("the replay generator has no recorded completions")
        if len(tokens) >= self.context_length:
            raise ContextOverflowError(len(tokens) + 1, self.context_length)
        script = self.scripts[min(self._calls, len(self.scripts) - 1)]
        self._calls += 1
        self.prompts.append(list(tokens))
        return self._play(script, len(tokens), stop_tokens, sampling, cancel)

    def _play(
        self,
        script: list[int],
        prompt_tokens: int,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None,
    ) -> Iterator[int]:
        stats = GenerationStats(prompt_tokens=prompt_tokens)
        self.last_stats = stats
        start = time.perf_counter()
        limit = sampling.max_tokens if sampling.max_tokens is not None else len(script)
        stats.stop_reason = "length"
        for token in script[:limit]:
            if cancel is not None and cancel.cancelled:
                stats.stop_reason = "cancelled"
                break
            if self.delay:
                time.sleep(self.delay)
            stats.record_token(start)
            yield token
            if token in stop_tokens:
                stats.stop_reason = "stop"
                break
