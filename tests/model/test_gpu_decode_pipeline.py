"""CUDA checks of decoding one step ahead (`decode_pipeline`): the captured forward + sampling
graphs against the unpipelined loop and against the eager (uncaptured) pipeline, on the tiny
model in bf16 with the Triton kernels; skipped without a GPU. On the H100:
`pytest -m gpu tests/model/test_gpu_decode_pipeline.py -q`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gptoss_chat.generator import CancelToken, SamplingOptions
from gptoss_chat.model.generator import LocalGenerator, load_generator
from gptoss_chat.model.layout import Layout
from tests.model.conftest import PROMPT

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
GREEDY = SamplingOptions(temperature=0, max_tokens=32)
TOP_P = SamplingOptions(temperature=1.0, top_p=0.9, seed=17, max_tokens=32)
WARM = SamplingOptions(temperature=0.8, seed=3, max_tokens=32)
FOLLOW_UP = [3575, 553, 261, 29186, 13]


def engine(path: Path, *, pipeline: bool, graphs: bool = True, **kwargs) -> LocalGenerator:
    generator = load_generator(path, device="cuda", context=256, **kwargs)
    assert generator.model.ops.name == "triton"
    generator.pipeline = pipeline
    if not graphs:
        generator.decode_graph = None  # the pipeline then forwards and samples eagerly
    return generator


def observe(generator: LocalGenerator, prompt: list[int], sampling: SamplingOptions, **kwargs):
    stream = generator.generate(prompt, stop_tokens=kwargs.pop("stop", ()), sampling=sampling,
                                **kwargs)  # fmt: skip
    tokens = list(stream)
    stats, cache = generator.last_stats, generator.cache
    assert int(cache.offset) == len(cache.tokens)  # no step launched ahead is left over
    return tokens, stats.stop_reason, stats.generated_tokens, stats.cached_tokens


@pytest.mark.parametrize("sampling", [GREEDY, TOP_P, WARM], ids=["greedy", "top-p", "temp"])
def test_graph_pipeline_equals_unpipelined(tiny_checkpoints: dict[Layout, Path], sampling):
    """Same forward graph, same sampler: the same ids, also seeded (a captured draw advances
    the generator exactly as the eager one), and the next turn reuses the same prefix."""
    path = tiny_checkpoints[Layout.ORIGINAL]
    piped, plain = engine(path, pipeline=True), engine(path, pipeline=False)
    prompt = list(PROMPT)
    for _ in range(2):
        outcomes = [observe(g, prompt, sampling) for g in (piped, plain)]
        assert outcomes[0] == outcomes[1]
        prompt = prompt + outcomes[0][0] + FOLLOW_UP
    steps = piped._pipelined
    assert steps is not None and steps.feeds_on_device
    # greedy steps go through the unembedding's screen: their forward stops before the norm
    screened = steps._screened()
    assert screened == (sampling.temperature == 0)
    graph = piped.decode_graph
    assert graph is not None and (graph.last_graph if screened else graph.graph) is not None
    tails = [steps._tails.get((steps._sampling, slot, screened)) for slot in (0, 1)]  # per slot
    if sampling.temperature == 0 or hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        assert all(t is not None for t in tails), steps.capture_error  # sampled inside graphs
    else:
        assert tails == [None, None] and steps.capture_error


def test_graph_pipeline_equals_eager_pipeline(tiny_checkpoints: dict[Layout, Path]) -> None:
    path = tiny_checkpoints[Layout.ORIGINAL]
    graphed, eager = engine(path, pipeline=True), engine(path, pipeline=True, graphs=False)
    for sampling in (GREEDY, TOP_P):
        outcomes = [observe(g, list(PROMPT), sampling) for g in (graphed, eager)]
        assert outcomes[0] == outcomes[1]
        for g in (graphed, eager):
            g.reset()
    assert eager._pipelined is not None and not eager._pipelined._tails


def test_stop_and_cancel_roll_back_on_the_device(tiny_checkpoints: dict[Layout, Path]) -> None:
    path = tiny_checkpoints[Layout.ORIGINAL]
    piped, plain = engine(path, pipeline=True), engine(path, pipeline=False)
    reference, *_ = observe(plain, list(PROMPT), GREEDY)
    index = next(i for i in range(5, len(reference)) if reference[i] not in reference[:i])
    stop = {reference[index]}
    for g in (piped, plain):
        g.reset()
    outcomes = [observe(g, list(PROMPT), GREEDY, stop=stop) for g in (piped, plain)]
    assert outcomes[0] == outcomes[1] and outcomes[0][1] == "stop"
    follow_up = list(PROMPT) + outcomes[0][0] + FOLLOW_UP
    assert observe(piped, follow_up, GREEDY) == observe(plain, follow_up, GREEDY)
    cancel = CancelToken()
    got = []
    for token in piped.generate(PROMPT, stop_tokens=(), sampling=GREEDY, cancel=cancel):
        got.append(token)
        if len(got) == 4:
            cancel.cancel()
    assert len(got) == 4 and piped.last_stats.stop_reason == "cancelled"
    assert int(piped.cache.offset) == len(piped.cache.tokens)


def test_host_table_pipeline_equals_unpipelined(tiny_checkpoints: dict[Layout, Path]) -> None:
    path = tiny_checkpoints[Layout.ORIGINAL]
    piped = engine(path, pipeline=True, embedding_on_host=True)
    plain = engine(path, pipeline=False, embedding_on_host=True)
    for sampling in (GREEDY, TOP_P):
        outcomes = [observe(g, list(PROMPT), sampling) for g in (piped, plain)]
        assert outcomes[0] == outcomes[1]
    assert piped._pipelined is not None and not piped._pipelined.feeds_on_device
