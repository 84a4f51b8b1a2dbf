"""Greedy decoding through the int8 screen of the unembedding (unembedding_screen.py).

The screen may only skip rows that provably cannot hold the largest logit, so every test holds it
to the full unembedding + argmax: the same id, ties, NaN and inf included, and bounds that
contain every logit. On CPU the kernels run in Triton's interpreter at tiny sizes; on a GPU the
last test runs gpt-oss's full vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gptoss_chat.generator import SamplingOptions
from gptoss_chat.kernels import greedy_into, prepare_unembedding
from gptoss_chat.kernels import unembedding_screen as screen_module
from gptoss_chat.kernels.argmax import argmax_into
from gptoss_chat.kernels.gemv import unembedding
from gptoss_chat.kernels.rms_norm import rms_norm
from gptoss_chat.kernels.unembedding_screen import (
    UnembeddingScreen,
    build_screen,
    screened_argmax_into,
    screened_argmax_ref,
)
from gptoss_chat.model.config import TINY
from gptoss_chat.model.generator import load_generator
from gptoss_chat.model.layout import Layout
from gptoss_chat.model.ops import TORCH_OPS
from gptoss_chat.model.random_checkpoint import write_random_checkpoint
from gptoss_chat.model.transformer import Transformer

EPS = 1e-5


def _model(rows: int, cols: int, device: torch.device, seed: int = 0):
    # drawn where they live: the full vocabulary's float32 draw on the host would leave the
    # test process with a 3 GB peak RSS, which the fresh-process load probe then inherits
    g = torch.Generator(device=device).manual_seed(seed)
    weight = (torch.randn(rows, cols, generator=g, device=device) * 0.02).to(torch.bfloat16)
    norm_scale = 1 + 0.1 * torch.randn(cols, generator=g, device=device)
    return weight, norm_scale


def _last(cols: int, device: torch.device, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator(device=device).manual_seed(seed)
    return (torch.randn(1, cols, generator=g, device=device) * scale).to(torch.bfloat16)


def _full_argmax(last, norm_scale, weight) -> int:
    """The path the screen replaces: the norm kernel, the unembedding GEMV, the argmax."""
    out = torch.zeros(1, dtype=torch.int64, device=last.device)
    argmax_into(unembedding(rms_norm(last, norm_scale, EPS), weight)[0], out)
    return int(out.item())


def _screened(last, norm_scale, weight, screen, **outputs) -> int:
    out = torch.zeros(1, dtype=torch.int64, device=last.device)
    screened_argmax_into(last, norm_scale, EPS, weight, screen, out, **outputs)
    return int(out.item())


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e3])
def test_every_logit_lies_within_its_bounds(device, scale) -> None:
    """Upper ends at or above every logit, the largest lower end at or below the largest logit;
    and the screen is worth its name: the winner passes, most rows do not."""
    weight, norm_scale = _model(1200, 2880, device)
    weight[3] = 0  # an all-zero row: scale 1, codes 0, bound 0
    screen = build_screen(weight)
    last = _last(2880, device, seed=1, scale=scale)
    screen_module._final_norm_kernel[(1,)](
        last, norm_scale, screen.normed, screen.words, screen.steps, screen.norms, EPS, K=2880,
        BLOCK=4096, FINE=screen_module._FINE_X,
    )  # fmt: skip
    screen_module._launch_screen(screen)
    assert torch.equal(screen.normed, rms_norm(last, norm_scale, EPS))  # the norm kernel's row
    logits = unembedding(screen.normed, weight)[0]
    exact = (screen.normed.double() @ weight.double().T)[0]
    lower_max = screen.lower_max.item()
    screen.lower_max.fill_(-math.inf)
    assert (screen.upper >= logits).all() and (screen.upper >= exact.float()).all()
    assert lower_max <= logits.max().item()
    passed = screen.upper >= lower_max
    assert passed[logits.argmax()] and passed.sum().item() < 1200 // 4


def test_the_bound_holds_where_it_is_tight(device) -> None:
    """x along one row's quantisation error makes that row's proxy as wrong as Cauchy-Schwarz
    allows: its logit still lies below its upper end, which it nearly reaches."""
    weight, _ = _model(64, 2880, device)
    screen = build_screen(weight)
    error = weight[9].double() - screen.scale[9].double() * screen.codes[9].double()
    last = (error / error.abs().max()).to(torch.bfloat16)[None, :]
    ones = torch.ones(2880, device=device)
    screen_module._final_norm_kernel[(1,)](
        last, ones, screen.normed, screen.words, screen.steps, screen.norms, EPS, K=2880,
        BLOCK=4096, FINE=screen_module._FINE_X,
    )  # fmt: skip
    screen_module._launch_screen(screen)
    screen.lower_max.fill_(-math.inf)
    logit = (screen.normed.double() @ weight[9].double())[0]
    x = screen.normed.double()[0]
    proxy = screen.scale[9].double() * (screen.codes[9].double() @ x)  # up to x's rounding
    bound = screen.upper[9].double() - proxy
    assert screen.upper[9].item() >= logit.item()
    assert (logit - proxy) / bound > 0.5  # the row's own error, most of the bound


@pytest.mark.parametrize("seed", range(2))
def test_same_id_as_the_full_unembedding(device, seed) -> None:
    weight, norm_scale = _model(1000, 2880, device)
    screen = build_screen(weight)
    for scale in (1.0, 30.0):
        last = _last(2880, device, seed=10 + seed, scale=scale)
        expected = _full_argmax(last, norm_scale, weight)
        assert _screened(last, norm_scale, weight, screen) == expected
        assert screened_argmax_ref(last, norm_scale, EPS, weight).item() == expected


def test_ties_go_to_the_lowest_id(device) -> None:
    """The winning row copied below and above it: the lowest copy wins, as in argmax."""
    weight, norm_scale = _model(1000, 2880, device)
    last = _last(2880, device, seed=5)
    winner = _full_argmax(last, norm_scale, weight)
    for copy in (winner // 3, min(999, winner + 300)):
        weight[copy] = weight[winner]
    screen = build_screen(weight)
    expected = _full_argmax(last, norm_scale, weight)
    assert expected == min(winner // 3, winner)
    assert _screened(last, norm_scale, weight, screen) == expected


def test_non_finite_rows_and_inputs(device) -> None:
    """A NaN input makes every logit NaN (id 0, as argmax); an inf weight row keeps its rows
    candidates, so the id is still the full argmax's."""
    weight, norm_scale = _model(1000, 2880, device)
    last = _last(2880, device, seed=6)
    broken = last.clone()
    broken[0, 17] = float("nan")
    screen = build_screen(weight)
    assert _screened(broken, norm_scale, weight, screen) == _full_argmax(broken, norm_scale,
                                                                         weight) == 0  # fmt: skip
    weight[900, 5] = float("inf")
    screen = build_screen(weight)
    assert screen.bound_x[900].item() == math.inf
    for seed in (6,):
        last = _last(2880, device, seed=seed)
        assert _screened(last, norm_scale, weight, screen) == _full_argmax(last, norm_scale,
                                                                           weight)  # fmt: skip


def test_outputs_and_state_between_calls(device) -> None:
    """The id also goes to the host slot and its embedded row to row_out; every call leaves the
    largest lower end at -inf and the ticket counter at zero, so the next call (a graph replay)
    answers for its own row."""
    weight, norm_scale = _model(1000, 2880, device)
    screen = build_screen(weight)
    table = torch.randn(1000, 64).to(torch.bfloat16).to(device)
    row_out = torch.zeros(1, 64, dtype=torch.bfloat16, device=device)
    host = torch.zeros(1, dtype=torch.int64)
    for seed in (1, 2, 1):
        last = _last(2880, device, seed=seed)
        got = _screened(last, norm_scale, weight, screen, table=table, row_out=row_out, host=host)
        assert got == _full_argmax(last, norm_scale, weight) == host.item()
        assert torch.equal(row_out[0], table[got])
        assert screen.lower_max.item() == -math.inf


def test_rejects_what_it_cannot_take(device) -> None:
    weight, norm_scale = _model(300, 2880, device)
    screen = build_screen(weight)
    out = torch.zeros(1, dtype=torch.int64, device=device)
    with pytest.raises(ValueError, match="bf16 row"):
        screened_argmax_into(_last(2880, device, 1).float(), norm_scale, EPS, weight, screen, out)
    with pytest.raises(ValueError, match="another model"):
        other, _ = _model(301, 2880, device)
        screened_argmax_into(_last(2880, device, 1), norm_scale, EPS, other, screen, out)
    with pytest.raises(ValueError, match="multiple of 32"):
        build_screen(torch.zeros(4, 40, dtype=torch.bfloat16))


def test_no_screen_on_the_cpu() -> None:
    """The reference table's argmax needs none (`build_ops` is for CUDA; its hook still says so)."""
    weight, _ = _model(64, 64, torch.device("cpu"))
    assert prepare_unembedding(weight) is None


@pytest.mark.gpu
def test_the_table_builds_a_screen_unless_told_not_to_or_out_of_memory(monkeypatch) -> None:
    """A screen on a GPU; None with GPTOSS_SCREEN=0, and when the GPU has no memory left for it
    (greedy decoding then reads the whole unembedding)."""
    weight, _ = _model(64, 64, torch.device("cuda"))
    assert isinstance(prepare_unembedding(weight), UnembeddingScreen)
    monkeypatch.setenv("GPTOSS_SCREEN", "0")
    assert prepare_unembedding(weight) is None
    monkeypatch.delenv("GPTOSS_SCREEN")

    def out_of_memory(weight):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(screen_module, "build_screen", out_of_memory)
    assert prepare_unembedding(weight) is None


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("screen-checkpoint")
    config = replace(TINY, vocab_size=512)
    return write_random_checkpoint(
        root, config, Layout.ORIGINAL, seed=4, device=torch.device("cpu")
    )


def test_pipelined_greedy_decoding_through_the_screen(small_vocab: Path) -> None:
    """The pipelined decode loop with a screened table: steps stop before the final norm, the
    screen picks each id, and the ids are those of the same table without a screen."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        greedy_into(*args, **kwargs)

    runs = []
    for screened in (True, False):
        gen = load_generator(small_vocab, device="cpu", backend="torch", context=64)
        gen.pipeline = True
        model = gen.model
        # the interpreter's norm and GEMV, so that both ways see the same normed rows
        ops = replace(TORCH_OPS, rms_norm=rms_norm, unembedding=unembedding, greedy_into=counted)
        if screened:
            model.weights.unembedding_screen = build_screen(model.weights.unembedding)
        gen.model = Transformer(model.config, model.weights, ops, gen.cache.context)
        prompt = [5, 17, 300, 42, 7, 99, 250, 1, 2, 3]
        greedy = SamplingOptions(temperature=0, max_tokens=6)
        runs.append(list(gen.generate(prompt, stop_tokens=(), sampling=greedy)))
    assert runs[0] == runs[1] and len(runs[0]) == 6
    assert len(calls) == 5  # every step after the prefill's token, screened; none without


@pytest.mark.gpu
def test_full_vocabulary_on_a_gpu() -> None:
    """gpt-oss's 201,088 x 2,880 unembedding on the GPU's compiled kernels: the same ids as the
    full GEMV + argmax for random rows and planted ties."""
    device = torch.device("cuda")
    weight, norm_scale = _model(201088, 2880, device)
    screen = build_screen(weight)
    for seed in range(16):
        last = _last(2880, device, seed=seed, scale=1 + seed)
        assert _screened(last, norm_scale, weight, screen) == _full_argmax(last, norm_scale,
                                                                           weight)  # fmt: skip
    winner = _full_argmax(last, norm_scale, weight)
    weight[winner // 2] = weight[winner]
    assert _screened(last, norm_scale, weight, build_screen(weight)) == winner // 2
