"""The local generator: prefix reuse, sampling, stop tokens, limits, cancellation, errors.

Prefix reuse is checked token for token in float32, where a cached and a fresh computation agree
to ~1e-6, so the tokens prove the cache holds the right keys at the right positions. In bf16 the
two differ by rounding (a matmul over 7 new tokens does not round like one over 38), so a bf16
check compares the logits within bf16 error instead.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from gptoss_chat.generator import (
    CancelToken,
    ContextOverflowError,
    Generator,
    GeneratorError,
    SamplingOptions,
)
from gptoss_chat.model.generator import LocalGenerator, load_generator

GREEDY = SamplingOptions(temperature=0, max_tokens=12)
TURN_1 = [5, 17, 300, 42, 42, 7, 99, 250, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]  # 20 > window 8
USER_2 = [400, 401, 402, 403, 404, 405]


def engine(path: Path, **kwargs) -> LocalGenerator:
    options = {"context": 256, "dtype": torch.float32, **kwargs}
    return load_generator(path, device="cpu", backend="torch", **options)


def run(generator: LocalGenerator, prompt: list[int], sampling=GREEDY, **kwargs) -> list[int]:
    return list(generator.generate(prompt, stop_tokens=kwargs.pop("stop", ()), sampling=sampling,
                                   **kwargs))  # fmt: skip


def fresh(generator: LocalGenerator, prompt: list[int], sampling=GREEDY) -> list[int]:
    generator.reset()
    tokens = run(generator, prompt, sampling)
    assert generator.last_stats.cached_tokens == 0
    return tokens


def test_is_a_generator(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    assert isinstance(generator, Generator)
    assert generator.context_length == 256
    assert generator.name.startswith("local gpt-oss") and "cpu, torch" in generator.name


def test_next_turn_prefills_only_the_new_tokens_and_matches_fresh(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    first = run(generator, TURN_1)
    turn_2 = TURN_1 + first + USER_2
    reused = run(generator, turn_2)
    stats = generator.last_stats
    # The last generated token was yielded but never fed back, so it is not cached.
    assert stats.cached_tokens == len(TURN_1) + len(first) - 1
    assert stats.prompt_tokens == len(turn_2)
    assert reused == fresh(engine(micro_checkpoint), turn_2)


def test_bf16_next_turn_logits_match_fresh(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint, dtype=torch.bfloat16)
    first = run(generator, TURN_1)
    turn_2 = TURN_1 + first + USER_2
    generator.cache.truncate(generator.cache.reusable_prefix(turn_2))
    reused = len(generator.cache.tokens)
    assert reused == len(TURN_1) + len(first) - 1
    with torch.inference_mode():
        cached = generator.model.forward(torch.tensor(turn_2[reused:]), generator.cache)
        generator.reset()
        full = generator.model.forward(torch.tensor(turn_2), generator.cache)
    assert (cached - full).abs().max() < 0.1


def test_rollback_within_the_ring_reuses_the_common_prefix(micro_checkpoint: Path) -> None:
    """Harmony drops the last turn's analysis: the next prompt diverges before the cache end."""
    generator = engine(micro_checkpoint)
    run(generator, TURN_1)
    turn_3 = TURN_1[:15] + USER_2
    tokens = run(generator, turn_3)
    assert generator.last_stats.cached_tokens == 15
    assert tokens == fresh(engine(micro_checkpoint), turn_3)


def test_rollback_past_the_ring_falls_back_to_a_full_prefill(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint, sliding_slack=2)  # ring of 8 + 2: rollback <= 3
    assert generator.cache.max_step == 3
    run(generator, TURN_1)
    turn = TURN_1[:10] + USER_2
    tokens = run(generator, turn)
    assert generator.last_stats.cached_tokens == 0
    assert tokens == fresh(engine(micro_checkpoint), turn)
    # The full prefill above ran in chunks of 3 through the small rings. A rollback of 2
    # (the cache holds turn + tokens[:-1]) still reuses.
    assert generator.prefill_chunk == 3
    nearly = [*turn, *tokens[:9], 7]
    again = run(generator, nearly)
    assert generator.last_stats.cached_tokens == len(turn) + 9
    assert again == fresh(engine(micro_checkpoint), nearly)


def test_abandoned_iterator_leaves_a_consistent_cache(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    stream = generator.generate(TURN_1, stop_tokens=(), sampling=GREEDY)
    partial = [next(stream) for _ in range(3)]
    tokens = run(generator, TURN_1 + partial + USER_2)
    assert list(stream) == []  # the older call stops once a newer one started
    assert tokens == fresh(engine(micro_checkpoint), TURN_1 + partial + USER_2)


def test_seeded_sampling_is_reproducible(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    hot = SamplingOptions(temperature=1.0, top_p=0.95, seed=11, max_tokens=16)
    a, b = fresh(generator, TURN_1, hot), fresh(generator, TURN_1, hot)
    other = fresh(generator, TURN_1, SamplingOptions(temperature=1.0, seed=12, max_tokens=16))
    assert a == b
    assert a != other
    assert run(generator, TURN_1, hot) == a  # with prefix reuse too


def test_tiny_top_p_is_greedy(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    narrow = SamplingOptions(temperature=1.0, top_p=1e-9, seed=3, max_tokens=12)
    assert fresh(generator, TURN_1, narrow) == fresh(generator, TURN_1)


def test_stop_token_ends_generation_and_is_yielded_last(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    tokens = fresh(generator, TURN_1)
    index = next(i for i in range(2, len(tokens)) if tokens[i] not in tokens[:i])
    generator.reset()
    stopped = run(generator, TURN_1, stop={tokens[index]})
    assert stopped == tokens[: index + 1]
    assert generator.last_stats.stop_reason == "stop"


def test_max_tokens_and_stats(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    tokens = run(generator, TURN_1, SamplingOptions(temperature=0, max_tokens=5))
    stats = generator.last_stats
    assert len(tokens) == stats.generated_tokens == 5
    assert stats.stop_reason == "length"
    assert stats.time_to_first_token > 0 and stats.decode_tokens_per_second > 0


def test_cancel_between_tokens(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    cancel = CancelToken()
    got = []
    for token in generator.generate(TURN_1, stop_tokens=(), sampling=GREEDY, cancel=cancel):
        got.append(token)
        if len(got) == 2:
            cancel.cancel()
    assert len(got) == 2
    assert generator.last_stats.stop_reason == "cancelled"
    # The cache kept what was computed: the next call still matches a fresh one.
    assert run(generator, TURN_1 + got) == fresh(engine(micro_checkpoint), TURN_1 + got)


def test_cancel_from_another_thread(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    cancel = CancelToken()
    first_token = threading.Event()
    got: list[int] = []

    def consume() -> None:
        endless = SamplingOptions(temperature=0)
        for token in generator.generate(TURN_1, stop_tokens=(), sampling=endless, cancel=cancel):
            got.append(token)
            first_token.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert first_token.wait(timeout=60)
    cancel.cancel()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert generator.last_stats.stop_reason == "cancelled"
    assert 1 <= len(got) < 256 - len(TURN_1)


def test_prompt_that_does_not_fit_raises_before_generating(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint, context=20)
    with pytest.raises(ContextOverflowError, match="needs 21 tokens but the context holds 20"):
        generator.generate(TURN_1, stop_tokens=(), sampling=GREEDY)


def test_full_context_stops_generation(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint, context=24)
    tokens = run(generator, TURN_1, SamplingOptions(temperature=0))
    assert len(tokens) == 4
    assert generator.last_stats.stop_reason == "context"


@pytest.mark.parametrize(
    ("prompt", "message"),
    [([], "the prompt is empty"), ([1, 512], "token id 512 is outside the vocabulary")],
)
def test_bad_prompts(micro_checkpoint: Path, prompt: list[int], message: str) -> None:
    with pytest.raises(GeneratorError, match=message):
        engine(micro_checkpoint).generate(prompt, stop_tokens=(), sampling=GREEDY)


def test_bad_context_and_device(micro_checkpoint: Path) -> None:
    with pytest.raises(GeneratorError, match="--context must be between 1 and 131072"):
        engine(micro_checkpoint, context=200000)
    with pytest.raises(GeneratorError, match="triton backend needs a CUDA device"):
        load_generator(micro_checkpoint, device="cpu", backend="triton")
