"""Decoding one step ahead changes nothing the consumer sees (`decode_pipeline`).

Every test runs the pipelined loop eagerly on the CPU against the unpipelined loop
(`LocalGenerator.pipeline = False`) on the same tiny checkpoint, in float32, and compares what a
consumer observes: ids, stop reason, stats, the cache's host mirror and device offset, its K/V
rows, and what the following call reuses. Both ways of feeding a step run here: the row gathered
by the step itself (the table on the device) and embedded by the host after the wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from gptoss_chat.generator import CancelToken, GeneratorError, SamplingOptions
from gptoss_chat.model.decode_graph import DecodeGraph
from gptoss_chat.model.decode_pipeline import PipelinedDecode
from gptoss_chat.model.generator import LocalGenerator, load_generator

TURN_1 = [5, 17, 300, 42, 42, 7, 99, 250, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]  # 20 > window 8
USER_2 = [400, 401, 402, 403, 404, 405]
GREEDY = SamplingOptions(temperature=0, max_tokens=16)
HOT = SamplingOptions(temperature=1.0, top_p=0.9, seed=21, max_tokens=16)
WARM = SamplingOptions(temperature=0.8, seed=5, max_tokens=16)
FEEDS = ("device", "host")


def engine(
    path: Path, *, pipeline: bool, feed: str = "device", static: bool = False, **kwargs
) -> LocalGenerator:
    """`static`: steps go through a DecodeGraph's static buffers, uncaptured (what a GPU
    engine's pipeline shares with its decode graph)."""
    options = {"context": 256, "dtype": torch.float32, **kwargs}
    generator = load_generator(path, device="cpu", backend="torch", **options)
    generator.pipeline = pipeline
    if static:
        generator.decode_graph = DecodeGraph(generator.model, generator.cache, capture=False)
    if pipeline:
        steps = PipelinedDecode(generator.model, generator.cache, generator.decode_graph)
        steps.feeds_on_device = feed == "device"  # "host": embed each id as a host table does
        generator._pipelined = steps
    return generator


@dataclass
class Observed:
    tokens: list[int]
    stop_reason: str
    generated: int
    cached: int
    prompt: int
    mirror: list[int]
    offset: int


def run(
    generator: LocalGenerator,
    prompt: list[int],
    sampling: SamplingOptions = GREEDY,
    *,
    stop: frozenset[int] = frozenset(),
    cancel_after: int | None = None,
) -> Observed:
    cancel = CancelToken()
    tokens = []
    for token in generator.generate(prompt, stop_tokens=stop, sampling=sampling, cancel=cancel):
        tokens.append(token)
        if len(tokens) == cancel_after:
            cancel.cancel()
    stats, cache = generator.last_stats, generator.cache
    return Observed(tokens, stats.stop_reason, stats.generated_tokens, stats.cached_tokens,
                    stats.prompt_tokens, list(cache.tokens), int(cache.offset))  # fmt: skip


def same_kv(a: LocalGenerator, b: LocalGenerator) -> None:
    """The K/V rows of every position the caches hold are equal (bit for bit: same ops). In a
    ring, the oldest position may have been evicted by a dropped step (see the last tests)."""
    end = len(a.cache.tokens)
    assert end == len(b.cache.tokens)
    for layer, slots in enumerate(a.cache.slots):
        held = torch.arange(max(0, end - slots + 1), end) % slots
        assert torch.equal(a.cache.k[layer][held], b.cache.k[layer][held])
        assert torch.equal(a.cache.v[layer][held], b.cache.v[layer][held])


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("sampling", [GREEDY, HOT, WARM], ids=["greedy", "top-p", "temperature"])
def test_same_tokens_stats_and_cache(micro_checkpoint: Path, feed: str, sampling) -> None:
    piped = engine(micro_checkpoint, pipeline=True, feed=feed)
    plain = engine(micro_checkpoint, pipeline=False)
    first = run(piped, TURN_1, sampling)
    assert first == run(plain, TURN_1, sampling)
    assert first.stop_reason == "length" and len(first.tokens) == 16
    assert first.offset == len(first.mirror) == len(TURN_1) + 15
    same_kv(piped, plain)
    # The next turn reuses the same prefix and continues the same way.
    turn_2 = TURN_1 + first.tokens + USER_2
    second = run(piped, turn_2, sampling)
    assert second == run(plain, turn_2, sampling)
    assert second.cached == len(TURN_1) + 15
    same_kv(piped, plain)


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("sampling", [GREEDY, HOT], ids=["greedy", "top-p"])
def test_through_the_decode_graphs_buffers(micro_checkpoint: Path, feed: str, sampling) -> None:
    piped = engine(micro_checkpoint, pipeline=True, feed=feed, static=True)
    plain = engine(micro_checkpoint, pipeline=False, static=True)
    assert piped._pipelined is not None and piped._pipelined.hidden is piped.decode_graph.hidden
    stop = frozenset({run(plain, TURN_1, sampling).tokens[9]})
    plain.reset()
    assert run(piped, TURN_1, sampling, stop=stop) == run(plain, TURN_1, sampling, stop=stop)
    same_kv(piped, plain)
    assert piped.decode_graph.eager_steps > 5 and not piped._pipelined._tails


@pytest.mark.parametrize("feed", FEEDS)
def test_the_next_step_is_queued_before_the_consumer_sees_a_token(micro_checkpoint: Path, feed):
    """While the consumer holds token N the device has already forwarded it (offset one past
    the host mirror); unpipelined it has not. The last token (max_tokens) launches nothing."""
    for pipeline, ahead in ((True, 1), (False, 0)):
        generator = engine(micro_checkpoint, pipeline=pipeline, feed=feed)
        stream = generator.generate(TURN_1, stop_tokens=(), sampling=GREEDY)
        leads = [int(generator.cache.offset) - len(generator.cache.tokens) for _ in stream]
        assert leads == [ahead] * 15 + [0]


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("sampling", [GREEDY, HOT], ids=["greedy", "top-p"])
def test_stop_token_anywhere(micro_checkpoint: Path, feed: str, sampling) -> None:
    reference = run(engine(micro_checkpoint, pipeline=False), TURN_1, sampling).tokens
    firsts = [i for i, token in enumerate(reference) if token not in reference[:i]]
    assert len(firsts) >= 3
    for index in (firsts[0], firsts[len(firsts) // 2], firsts[-1]):
        stop = frozenset({reference[index]})
        piped = engine(micro_checkpoint, pipeline=True, feed=feed)
        plain = engine(micro_checkpoint, pipeline=False)
        observed = run(piped, TURN_1, sampling, stop=stop)
        assert observed == run(plain, TURN_1, sampling, stop=stop)
        assert observed.tokens == reference[: index + 1] and observed.stop_reason == "stop"
        assert observed.offset == len(observed.mirror)  # the step launched ahead was dropped
        same_kv(piped, plain)
        follow_up = TURN_1 + observed.tokens + USER_2
        assert run(piped, follow_up, sampling) == run(plain, follow_up, sampling)


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("limit", [0, 1, 2, 7])
def test_max_tokens(micro_checkpoint: Path, feed: str, limit: int) -> None:
    sampling = SamplingOptions(temperature=0, max_tokens=limit)
    piped = engine(micro_checkpoint, pipeline=True, feed=feed)
    plain = engine(micro_checkpoint, pipeline=False)
    observed = run(piped, TURN_1, sampling)
    assert observed == run(plain, TURN_1, sampling)
    assert len(observed.tokens) == limit and observed.stop_reason == "length"
    # A limit known in advance launches no step past it: nothing was written beyond the mirror.
    assert piped.cache.written == plain.cache.written


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("after", [1, 3, 8])
def test_cancel_mid_stream(micro_checkpoint: Path, feed: str, after: int) -> None:
    endless = SamplingOptions(temperature=0)
    piped = engine(micro_checkpoint, pipeline=True, feed=feed)
    plain = engine(micro_checkpoint, pipeline=False)
    observed = run(piped, TURN_1, endless, cancel_after=after)
    assert observed == run(plain, TURN_1, endless, cancel_after=after)
    assert len(observed.tokens) == after and observed.stop_reason == "cancelled"
    assert observed.offset == len(observed.mirror)
    follow_up = TURN_1 + observed.tokens + USER_2
    assert run(piped, follow_up) == run(plain, follow_up)


def test_cancel_before_the_first_token(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint, pipeline=True)
    cancel = CancelToken()
    cancel.cancel()
    assert list(generator.generate(TURN_1, stop_tokens=(), sampling=GREEDY, cancel=cancel)) == []
    assert generator.last_stats.stop_reason == "cancelled"
    assert int(generator.cache.offset) == len(generator.cache.tokens) == len(TURN_1)


@pytest.mark.parametrize("feed", FEEDS)
def test_context_exhaustion(micro_checkpoint: Path, feed: str) -> None:
    endless = SamplingOptions(temperature=0)
    piped = engine(micro_checkpoint, pipeline=True, feed=feed, context=24)
    plain = engine(micro_checkpoint, pipeline=False, context=24)
    observed = run(piped, TURN_1, endless)
    assert observed == run(plain, TURN_1, endless)
    assert len(observed.tokens) == 4 and observed.stop_reason == "context"
    assert observed.offset == len(observed.mirror) == 23


def test_abandoned_iterator_then_a_new_call(micro_checkpoint: Path) -> None:
    """An iterator left at a yield has a step launched ahead; the next call truncates it away,
    and the old iterator, resumed, stops without touching the new call's cache."""
    observed, streams = [], []
    for pipeline in (True, False):
        generator = engine(micro_checkpoint, pipeline=pipeline)
        stream = generator.generate(TURN_1, stop_tokens=(), sampling=GREEDY)
        partial = [next(stream) for _ in range(3)]
        lead = int(generator.cache.offset) - len(generator.cache.tokens)
        assert lead == (1 if pipeline else 0)
        observed.append(run(generator, TURN_1 + partial + USER_2))
        streams.append(stream)
        assert list(stream) == []
        assert int(generator.cache.offset) == len(generator.cache.tokens)
    assert observed[0] == observed[1]
    assert observed[0].cached == len(TURN_1) + 2


def test_closed_iterator_drops_its_step_ahead(micro_checkpoint: Path) -> None:
    piped = engine(micro_checkpoint, pipeline=True)
    stream = piped.generate(TURN_1, stop_tokens=(), sampling=GREEDY)
    next(stream), next(stream)
    stream.close()  # the consumer went away (GeneratorExit at the yield)
    assert int(piped.cache.offset) == len(piped.cache.tokens) == len(TURN_1) + 1


def test_a_dropped_step_counts_as_written_for_ring_rollback(micro_checkpoint: Path) -> None:
    """The one visible difference: the step dropped after a stop token wrote position L, which
    in a sliding ring evicted L - S. A later rollback of exactly max_step tokens would need that
    key, so it re-prefills (unpipelined it reuses); the ids are right either way."""
    piped = engine(micro_checkpoint, pipeline=True, sliding_slack=2)  # max_step 3
    plain = engine(micro_checkpoint, pipeline=False, sliding_slack=2)
    reference = run(plain, TURN_1, GREEDY).tokens
    stop = frozenset({reference[5]})
    observed = [run(g, TURN_1, GREEDY, stop=stop) for g in (piped, plain)]
    assert observed[0] == observed[1]
    end = len(observed[0].mirror)
    assert (piped.cache.written, plain.cache.written) == (end + 1, end)
    rollback = observed[0].mirror[: end - 3] + USER_2
    again = [run(g, rollback) for g in (piped, plain)]
    assert (again[0].cached, again[1].cached) == (0, end - 3)
    assert again[0].tokens == again[1].tokens


def failing_at_decode(generator: LocalGenerator, failing: int) -> LocalGenerator:
    """Make the `failing`-th one-token forward raise torch.OutOfMemoryError (a CPU cannot run
    out of memory on cue)."""
    real_forward = generator.model.forward_hidden
    calls = [0]

    def forward_hidden(x: torch.Tensor, cache, **kwargs) -> torch.Tensor:
        if x.shape[0] == 1:
            calls[0] += 1
            if calls[0] == failing:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(x, cache, **kwargs)

    generator.model.forward_hidden = forward_hidden  # type: ignore[method-assign]
    return generator


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("failing", [1, 3])
def test_out_of_memory_is_the_same_generator_error(micro_checkpoint: Path, feed, failing: int):
    """A step launched ahead that runs out of memory raises the same GeneratorError after the
    same tokens as unpipelined (the error waits until its token is fed back), and the cache
    stays usable."""
    outcomes = []
    for pipeline in (True, False):
        generator = engine(micro_checkpoint, pipeline=pipeline, feed=feed)
        failing_at_decode(generator, failing)
        got = []
        with pytest.raises(GeneratorError, match="ran out of memory while generating"):
            for token in generator.generate(TURN_1, stop_tokens=(), sampling=GREEDY):
                got.append(token)
        assert int(generator.cache.offset) == len(generator.cache.tokens)
        outcomes.append((got, run(generator, TURN_1 + got + USER_2)))
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0][0]) == failing


def test_out_of_memory_ahead_of_a_stop_token_is_never_seen(micro_checkpoint: Path) -> None:
    """Unpipelined, a stop token is never forwarded, so its forward cannot fail."""
    reference = run(engine(micro_checkpoint, pipeline=False), TURN_1).tokens
    stop = frozenset({reference[0]})
    piped = failing_at_decode(engine(micro_checkpoint, pipeline=True), 1)
    observed = run(piped, TURN_1, stop=stop)
    assert observed.tokens == reference[:1] and observed.stop_reason == "stop"
    assert observed.offset == len(observed.mirror)


def test_environment_switch(micro_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load = {"device": "cpu", "backend": "torch", "context": 64}
    assert load_generator(micro_checkpoint, **load).pipeline
    monkeypatch.setenv("GPTOSS_PIPELINE", "0")
    assert not load_generator(micro_checkpoint, **load).pipeline
