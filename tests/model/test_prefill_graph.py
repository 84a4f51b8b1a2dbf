"""Embedding split, padded short chunks (what the prefill CUDA graphs run) and their bookkeeping.

On the CPU the padded chunks run eagerly (`PrefillGraphs(capture=False)`): the same forward a
graph captures, so these tests pin down the padding itself. float32 with the torch table, where
a padded and an unpadded forward agree to rounding; tests/model/test_gpu_engine.py replays the
graphs on a GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gptoss_chat.generator import SamplingOptions
from gptoss_chat.model.config import TINY
from gptoss_chat.model.generator import LocalGenerator, load_generator
from gptoss_chat.model.kv_cache import KVCache
from gptoss_chat.model.prefill_graph import PrefillGraphs

HISTORY = [5, 17, 300, 42, 42, 7, 99, 250, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
"""22 ids: longer than the tiny sliding window (8) and than the small rings below (16 slots)."""
CHUNK = [400, 401, 402, 403, 404]
SLACK = 8
"""Sliding rings of 8 + 8 = 16 slots, max_step 9: the history wraps them."""


def engine(path: Path, **kwargs) -> LocalGenerator:
    options = {"context": 64, "dtype": torch.float32, "sliding_slack": SLACK, **kwargs}
    return load_generator(path, device="cpu", backend="torch", **options)


def padded(generator: LocalGenerator, buckets: tuple[int, ...] = (4, 8)) -> LocalGenerator:
    generator.prefill_graphs = PrefillGraphs(
        generator.model, generator.cache, buckets=buckets, capture=False
    )
    return generator


def test_embed_then_forward_hidden_is_forward(micro_checkpoint: Path) -> None:
    generator = engine(micro_checkpoint)
    model, cache = generator.model, generator.cache
    with torch.inference_mode():
        rows = model.embed(HISTORY)
        assert torch.equal(rows, model.weights.embedding[torch.tensor(HISTORY)])
        into = torch.zeros_like(rows)
        assert model.embed(torch.tensor(HISTORY), out=into) is into and torch.equal(into, rows)
        whole = model.forward(HISTORY, cache, all_logits=True)
        cache.reset()
        split = model.forward_hidden(rows, cache, all_logits=True)
    assert torch.equal(whole, split)
    assert int(cache.offset) == len(HISTORY)


def test_host_rows_are_gathered_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path of a host table on a GPU engine (unpinned here): slices of 4 rows."""
    from gptoss_chat.model import transformer

    monkeypatch.setattr(transformer, "EMBED_SLICE_ROWS", 4)
    table = torch.randn(50, 6).to(torch.bfloat16)
    ids = torch.tensor([3, 49, 0, 3, 7, 8, 9, 10, 11, 12, 13])  # 11 rows: slices of 4, 4, 3
    out = torch.full((11, 6), float("nan"), dtype=torch.bfloat16)
    assert transformer.gather_host_rows(table, ids, out, pin=False) is out
    assert torch.equal(out, table[ids])


def _kv(cache: KVCache, layer: int, position: int) -> torch.Tensor:
    slot = position % cache.slots[layer]
    return torch.cat([cache.k[layer][slot], cache.v[layer][slot]])


def test_padded_chunk_matches_the_unpadded_one(micro_checkpoint: Path) -> None:
    """Same logits, same K/V at every real position the rings still hold, offset advanced by
    the real length; the next step (which overwrites the pads' slots) agrees too."""
    plain, pads = engine(micro_checkpoint), padded(engine(micro_checkpoint))
    with torch.inference_mode():
        for generator in (plain, pads):
            generator.cache.extend(HISTORY)
            generator.model.forward(HISTORY, generator.cache)
        rows = pads.prefill_graphs.bucket_for(len(CHUNK), len(HISTORY))
        assert rows == 8
        expected = plain.model.forward(CHUNK, plain.cache)
        got = pads.prefill_graphs.run(CHUNK, rows)
        end = len(HISTORY) + len(CHUNK)
        assert int(pads.cache.offset) == end
        assert (got - expected).abs().max() < 1e-5
        for layer, slots in enumerate(pads.cache.slots):
            for position in range(max(0, end + rows - len(CHUNK) - slots), end):
                assert torch.allclose(
                    _kv(pads.cache, layer, position), _kv(plain.cache, layer, position), atol=1e-5
                ), (layer, position)
        # the pads did write past the end of a full layer (what the next real token overwrites)
        full = next(i for i in range(TINY.num_hidden_layers) if not TINY.is_sliding(i))
        assert _kv(pads.cache, full, end).abs().sum() > 0
        assert _kv(plain.cache, full, end).abs().sum() == 0
        after = [g.model.forward([77], g.cache) for g in (plain, pads)]
        assert (after[1] - after[0]).abs().max() < 1e-5


def test_buckets_only_where_the_pads_fit(micro_checkpoint: Path) -> None:
    graphs = padded(engine(micro_checkpoint), buckets=(4, 8, 16)).prefill_graphs
    assert graphs is not None
    assert [graphs.bucket_for(n, 0) for n in (1, 4, 5, 8, 9)] == [4, 4, 8, 8, None]  # max_step 9
    assert graphs.bucket_for(3, 60) == 4 and graphs.bucket_for(3, 61) is None  # context 64
    big = padded(engine(micro_checkpoint, sliding_slack=64), buckets=(16,)).prefill_graphs
    assert big is not None and big.bucket_for(12, 0) == 16 and big.bucket_for(17, 0) is None
    with pytest.raises(ValueError, match="do not fit"):
        graphs.run([1] * 5, 4)


def test_rollback_is_bounded_by_the_highest_position_written() -> None:
    cache = KVCache(TINY, 64, torch.device("cpu"), sliding_slack=SLACK)
    assert cache.max_step == 9
    cache.extend(list(range(20)))
    assert cache.reusable_prefix([*range(11), 99]) == 11  # back 9: the ring still holds it
    cache.extend([20], padding=3)  # a chunk padded to 4 rows wrote positions up to 23
    assert cache.written == 24 and len(cache.tokens) == 21
    assert cache.reusable_prefix([*range(14), 99]) == 0  # 24 - 14 > 9: evicted by the pads
    assert cache.reusable_prefix([*range(15), 99]) == 15
    cache.truncate(15)
    assert cache.written == 24  # the evictions happened; rolling back does not undo them
    assert cache.reusable_prefix([*range(14), 99]) == 0
    cache.reset()
    assert cache.written == 0


def test_padded_generator_matches_the_plain_one_over_turns(micro_checkpoint: Path) -> None:
    """Greedy turns with prefix reuse and a rollback: identical tokens, offset == the host
    mirror after every call, and the short chunks really ran padded."""
    plain, pads = engine(micro_checkpoint), padded(engine(micro_checkpoint))
    greedy = SamplingOptions(temperature=0, max_tokens=6)
    prompt = list(HISTORY)
    for turn, new in enumerate(([400, 401], [402, 403, 404, 405, 406], [407])):
        outputs = []
        for generator in (plain, pads):
            outputs.append(list(generator.generate(prompt, stop_tokens=(), sampling=greedy)))
            assert int(generator.cache.offset) == len(generator.cache.tokens)
        assert outputs[0] == outputs[1], turn
        assert plain.last_stats.cached_tokens == pads.last_stats.cached_tokens
        prompt = prompt + outputs[0] + new
    rollback = [*prompt[: len(prompt) - 4], 408, 409, 410]  # Harmony drops a turn's analysis
    one = SamplingOptions(temperature=0, max_tokens=1)  # no decode step after the prefill
    results = [list(g.generate(rollback, stop_tokens=(), sampling=one)) for g in (plain, pads)]
    assert results[0] == results[1]
    assert pads.last_stats.cached_tokens > 0
    assert pads.cache.written > len(pads.cache.tokens)  # its last chunk ran padded
