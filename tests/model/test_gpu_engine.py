"""CUDA checks of the host-side embedding table and the short-prefill CUDA graphs (tiny model,
bf16, Triton kernels); skipped without a GPU. On the H100: `pytest -m gpu tests/model -q`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gptoss_chat.generator import SamplingOptions
from gptoss_chat.kernels.compact_bf16 import CompactLinear
from gptoss_chat.model.config import TINY
from gptoss_chat.model.generator import LocalGenerator, load_generator
from gptoss_chat.model.layout import Layout
from gptoss_chat.model.prefill_graph import PrefillGraphs
from tests.model.conftest import PROMPT

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
TABLE_BYTES = TINY.vocab_size * TINY.hidden_size * 2
FOLLOW_UPS = ([3575, 553, 261], [29186, 13, 200007, 200006, 1428, 200008, 13225], [11, 1495],
              [200007, 200006, 173781, 31, 5])  # fmt: skip
"""Follow-ups of 2 to 7 ids; each turn prefills them with the last answer token: all in the
16-row bucket, which the second turn captures and the later ones replay."""


def engine(path: Path, **kwargs) -> LocalGenerator:
    generator = load_generator(path, device="cuda", context=256, **kwargs)
    assert generator.model.ops.name == "triton"
    return generator


def eager_padded(generator: LocalGenerator) -> LocalGenerator:
    generator.prefill_graphs = PrefillGraphs(generator.model, generator.cache, capture=False)
    return generator


def test_embedding_table_on_the_host_gives_the_same_tokens(
    tiny_checkpoints: dict[Layout, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tiny_checkpoints[Layout.ORIGINAL]
    # (the compact projections, which only a GPU holding the table gets, sum in another order:
    # the next test)
    monkeypatch.setenv("GPTOSS_COMPACT", "0")
    host, device = engine(path, embedding_on_host=True), engine(path, embedding_on_host=False)
    assert host.model.weights.embedding.device.type == "cpu"
    assert device.model.weights.embedding.is_cuda
    assert host.load_report.host_weight_bytes == TABLE_BYTES
    assert device.load_report.host_weight_bytes == 0
    # a GPU with room for the table also gets the greedy screen of the unembedding
    screen = device.model.weights.unembedding_screen
    assert screen is not None and host.model.weights.unembedding_screen is None
    extra = device.load_report.weight_bytes - host.load_report.weight_bytes
    assert extra == TABLE_BYTES + screen.nbytes
    with torch.inference_mode():
        logits = [g.model.forward(PROMPT, g.cache, all_logits=True) for g in (host, device)]
    assert torch.equal(logits[0], logits[1])  # the same rows reach the same kernels
    greedy = SamplingOptions(temperature=0, max_tokens=16)  # the decode graph, fed from the host
    tokens = [list(g.generate(PROMPT, stop_tokens=(), sampling=greedy)) for g in (host, device)]
    assert tokens[0] == tokens[1]
    assert host.decode_graph is not None and host.decode_graph.graph is not None


def test_compact_projections_decode_like_dense_ones(
    tiny_checkpoints: dict[Layout, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU that holds the table also gets compact copies of the attention projections and the
    unembedding; the load report counts them, a decode step gives the dense weights' logits
    to float32 rounding, and greedy decoding runs through the decode graph (its screened form)."""
    path = tiny_checkpoints[Layout.ORIGINAL]
    compacted = engine(path, embedding_on_host=False)
    monkeypatch.setenv("GPTOSS_COMPACT", "0")
    dense = engine(path, embedding_on_host=False)
    layers = compacted.model.weights.layers
    projections = [w for layer in layers for w in (layer.qkv_weight, layer.out_weight)]
    assert all(isinstance(w, CompactLinear) for w in projections)
    assert all(isinstance(layer.qkv_weight, torch.Tensor) for layer in dense.model.weights.layers)
    unembedding = compacted.model.weights.unembedding_compact
    assert (
        isinstance(unembedding, CompactLinear) and dense.model.weights.unembedding_compact is None
    )
    extra = compacted.load_report.weight_bytes - dense.load_report.weight_bytes
    assert extra == sum(w.nbytes() for w in projections) + unembedding.nbytes()
    steps = []
    for g in (compacted, dense):
        with torch.inference_mode():
            g.model.forward(PROMPT, g.cache)
            steps.append(g.model.forward(PROMPT[-1:], g.cache).float())
    assert float((steps[0] - steps[1]).abs().max()) < 0.05 * float(steps[1].abs().max())
    greedy = SamplingOptions(temperature=0, max_tokens=8)
    assert len(list(compacted.generate(PROMPT, stop_tokens=(), sampling=greedy))) == 8
    assert compacted.decode_graph is not None and compacted.decode_graph.last_graph is not None


def test_graph_prefill_equals_eager(tiny_checkpoints: dict[Layout, Path]) -> None:
    """Replayed short chunks give the eager padded forward's logits and K/V, and the unpadded
    forward's up to bf16 rounding (other tile shapes)."""
    path = tiny_checkpoints[Layout.ORIGINAL]
    graphed, padded, plain = engine(path), eager_padded(engine(path)), engine(path)
    plain.prefill_graphs = None
    generators = (graphed, padded, plain)
    with torch.inference_mode():
        for generator in generators:
            generator._prefill(PROMPT)
        for chunk in ([5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16], [17, 18, 19]):
            logits = [g._prefill(chunk).float().clone() for g in generators]
            # the same kernels on the same shapes: equal unless capture changed an algorithm
            torch.testing.assert_close(logits[0], logits[1], atol=1e-3, rtol=0)
            assert (logits[0] - logits[2]).abs().max() < 0.1
            for g in generators:
                assert int(g.cache.offset) == len(g.cache.tokens)
    assert graphed.prefill_graphs is not None and graphed.prefill_graphs.capture_error is None
    bucket = graphed.prefill_graphs._buckets[16]
    assert bucket.graph is not None  # captured at the first chunk, replayed by the next two
    end = len(graphed.cache.tokens)
    for layer in range(TINY.num_hidden_layers):
        for a, b in ((graphed.cache.k, padded.cache.k), (graphed.cache.v, padded.cache.v)):
            slots = graphed.cache.slots[layer]
            real = torch.arange(max(0, end - slots + 13), end) % slots  # pads: 13 after `end`
            torch.testing.assert_close(a[layer][real], b[layer][real], atol=1e-2, rtol=0)


def test_graph_prefill_greedy_turns_with_prefix_reuse(tiny_checkpoints: dict[Layout, Path]):
    path = tiny_checkpoints[Layout.ORIGINAL]
    graphed, padded = engine(path), eager_padded(engine(path))
    greedy = SamplingOptions(temperature=0, max_tokens=8)
    prompt = list(PROMPT)
    for new in FOLLOW_UPS:
        outputs = [list(g.generate(prompt, stop_tokens=(), sampling=greedy)) for g in
                   (graphed, padded)]  # fmt: skip
        assert outputs[0] == outputs[1]
        assert graphed.last_stats.cached_tokens == padded.last_stats.cached_tokens
        prompt = prompt + outputs[0] + new
    assert graphed.prefill_graphs is not None and graphed.prefill_graphs.capture_error is None
    assert graphed.prefill_graphs._buckets[16].graph is not None
