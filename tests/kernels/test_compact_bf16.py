"""The 12-bit lossless bf16 format and its decode GEMV (kernels/compact_bf16.py): the format
gives back every bit of the dense weight, and the GEMV computes the dense weight's exact
products (interpreter on the CPU at tiny sizes; the compiled byte permutes at full gpt-oss
shapes on a GPU)."""

from __future__ import annotations

import pytest
import torch

import gptoss_chat.kernels.compact_bf16 as compact_module
from gptoss_chat.kernels import build_ops, prepare_linear
from gptoss_chat.kernels.compact_bf16 import CompactLinear, compact, compact_gemv, decompress
from gptoss_chat.kernels.gemv import linear_residual, norm_linear, unembedding
from gptoss_chat.kernels.rms_norm import rms_norm
from gptoss_chat.model.ops import TORCH_OPS, dense_weight

EPS = 1e-5


def _weight(n: int, k: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """N(0, 1/k) like the random checkpoints, plus the values the format treats apart: zeros
    of both signs, a denormal, values far below and far above the window (exceptions), inf."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    w = (torch.randn(n, k, generator=g) * k**-0.5).to(torch.bfloat16)
    specials = [0.0, -0.0, 1e-39, -3e-38, 1e-30, 2e-12, -7e-9, 3e4, -1e30, float("inf")]
    for i, value in enumerate(specials):
        w[(5 * i) % n, (11 * i + 3) % k] = value
    return w.to(device)


def _ref(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    y = x.double() @ w.double().T
    return y + bias.double() if bias is not None else y


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int16)


@pytest.mark.parametrize(("n", "k"), [(48, 96), (8, 16), (40, 128)])
def test_every_bit_comes_back(n, k) -> None:
    """decompress(compact(w)) is w bit for bit: signs of zero, denormals, NaN and inf included."""
    w = _weight(n, k, torch.device("cpu"))
    w[1, 1] = float("nan")
    c = compact(w)
    assert isinstance(c, CompactLinear) and c.dense is w
    assert torch.equal(_bits(decompress(c)), _bits(w))
    assert c.low.shape == (n, k // 4) and c.codes.shape == (n, k // 4)
    assert 0 < int((c.exc_index >= 0).sum()) <= len(range(11))
    cap = c.exc_index.shape[1]
    assert c.nbytes() == n * k * 3 // 2 + n // 8 * cap * 6 + 8  # 12 bits a value, the lists


def test_coding_in_chunks_of_rows_changes_nothing(monkeypatch) -> None:
    """`compact` codes CHUNK_ROWS rows at a time (the unembedding at once would need ~12 GB of
    temporaries): 6 chunks of 8 rows give the one-chunk result."""
    w = _weight(48, 96, torch.device("cpu"))
    whole = compact(w)
    monkeypatch.setattr(compact_module, "CHUNK_ROWS", 8)
    chunked = compact(w)
    for name in ("low", "codes", "exc_index", "exc_value", "table"):
        assert torch.equal(getattr(chunked, name), getattr(whole, name)), name
    assert chunked.base == whole.base


def test_what_does_not_compact_stays_dense() -> None:
    """Shapes outside the format, other dtypes, and a matrix whose exponents spread so wide that
    a block of 8 rows holds more than MAX_CAP exceptions: None (the dense GEMV reads them)."""
    cpu = torch.device("cpu")
    assert compact(_weight(12, 64, cpu)) is None  # rows not a multiple of 8
    assert compact(_weight(8, 60, cpu)) is None  # columns not a multiple of 8
    assert compact(_weight(8, 64, cpu).float()) is None
    g = torch.Generator().manual_seed(1)
    wide = torch.exp2(torch.randint(-100, 100, (16, 64), generator=g).float()).to(torch.bfloat16)
    assert compact(wide) is None


def test_one_hot_columns_give_each_weight_exactly(device) -> None:
    """x = e_j returns column j of the dense weight exactly (float32 out): every value decodes
    to its own bits, exceptions included."""
    w = _weight(16, 64, device)
    w[w.isinf()] = -5e35  # (0 * inf would be NaN for the other columns, as in any product)
    c = compact(w)
    for col in range(64):
        x = torch.zeros(1, 64, dtype=torch.bfloat16, device=device)
        x[0, col] = 1.0
        y = compact_gemv(x, c, None, out_dtype=torch.float32)
        assert torch.equal(y[0], w[:, col].float()), col


@pytest.mark.parametrize("tokens", [1, 2])
def test_products_match_the_dense_weight(device, tokens) -> None:
    """Plain, with the RMSNorm in the prologue, and with the residual in the epilogue: the same
    exact products as the dense weight's, summed in another order (float32 rounding only)."""
    w = _weight(48, 96, device)
    w[w.isinf()] = 1.0  # finite sums to compare
    c = compact(w)
    g = torch.Generator(device="cpu").manual_seed(2)
    x = torch.randn(tokens, 96, generator=g).to(torch.bfloat16).to(device)
    bias = torch.randn(48, generator=g).to(torch.bfloat16).to(device)
    scale = (torch.rand(96, generator=g) + 0.5).to(device)
    scale_of = (x.double().abs() @ w.double().abs().T) + 1.0  # the sums' own magnitude
    y = compact_gemv(x, c, bias, out_dtype=torch.float32)
    assert float(((y.double() - _ref(x, w, bias)).abs() / scale_of).max()) < 1e-6
    normed = rms_norm(x, scale, EPS)
    y = compact_gemv(x, c, bias, norm=(scale, EPS), out_dtype=torch.float32)
    assert float(((y.double() - _ref(normed, w, bias)).abs() / scale_of).max()) < 1e-6
    residual = torch.randn(tokens, 48, generator=g).to(torch.bfloat16).to(device)
    y = compact_gemv(x, c, None, residual=residual)
    expect = _ref(x, w).to(torch.bfloat16).double() + residual.double()
    assert float(((y.double() - expect).abs() / (scale_of + expect.abs())).max()) < 2**-7


def test_the_gemv_entries_read_the_compact_weight_at_decode_sizes(device) -> None:
    """gemv.py's `norm_linear`, `linear_residual` and `unembedding` take a CompactLinear: its
    GEMV for up to 8 tokens, the dense weight for more; the torch references read its dense
    weight."""
    w = _weight(32, 64, device)
    w[w.isinf()] = 1.0
    c = compact(w)
    g = torch.Generator(device="cpu").manual_seed(3)
    scale = (torch.rand(64, generator=g) + 0.5).to(device)
    for tokens in (1, 9):
        x = torch.randn(tokens, 64, generator=g).to(torch.bfloat16).to(device)
        residual = torch.randn(tokens, 32, generator=g).to(torch.bfloat16).to(device)
        for ours, ref in (
            (norm_linear(x, scale, EPS, c, None), TORCH_OPS.norm_linear(x, scale, EPS, c, None)),
            (
                linear_residual(x, c, None, residual),
                TORCH_OPS.linear_residual(x, c, None, residual),
            ),
        ):
            expect = ref.double()
            assert float(((ours.double() - expect).abs() / (expect.abs() + 1)).max()) < 2**-6
        # the unembedding's float32 logits (sampled decoding reads them from the compact copy)
        logits = unembedding(x, c)
        assert logits.dtype == torch.float32
        expect = TORCH_OPS.unembedding(x, c).double()
        assert float(((logits.double() - expect).abs() / (expect.abs() + 1)).max()) < 2**-6
    assert dense_weight(c) is w and dense_weight(w) is w


def test_the_table_prepares_projections_only_on_a_gpu() -> None:
    """The reference table keeps the weight; the Triton table's hook too on the CPU (the
    interpreter reads dense weights)."""
    w = _weight(16, 64, torch.device("cpu"))
    assert TORCH_OPS.prepare_linear(w) is w
    assert build_ops(TORCH_OPS, torch.device("cpu")).prepare_linear(w) is w
    assert prepare_linear(w) is w


@pytest.mark.gpu
def test_the_table_compacts_unless_told_not_to_or_out_of_memory(monkeypatch) -> None:
    """A CompactLinear on a GPU; the dense weight with GPTOSS_COMPACT=0 and when the GPU has no
    memory left for the copy."""
    w = _weight(64, 128, torch.device("cuda"))
    assert isinstance(prepare_linear(w), CompactLinear)
    monkeypatch.setenv("GPTOSS_COMPACT", "0")
    assert prepare_linear(w) is w
    monkeypatch.delenv("GPTOSS_COMPACT")

    def out_of_memory(weight):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(compact_module, "compact", out_of_memory)
    assert prepare_linear(w) is w


@pytest.mark.gpu
@pytest.mark.parametrize(("n", "k", "form"), [(5120, 2880, "norm"), (2880, 4096, "residual")])
def test_full_shapes_on_a_gpu(n, k, form) -> None:
    """gpt-oss's qkv (RMSNorm fused) and out (residual fused) projections through the compiled
    byte permutes, with programmatic dependent launch: 256 one-hot columns give the weight's
    values exactly, and random rows the dense GEMV's result to float32 rounding."""
    device = torch.device("cuda")
    w = _weight(n, k, device)
    w[w.isinf()] = 1.0
    c = compact(w)
    assert c is not None and torch.equal(_bits(decompress(c)), _bits(w))
    g = torch.Generator(device="cpu").manual_seed(5)
    for col in torch.randint(0, k, (256,), generator=g).tolist():
        x = torch.zeros(1, k, dtype=torch.bfloat16, device=device)
        x[0, col] = 1.0
        assert torch.equal(compact_gemv(x, c, None, out_dtype=torch.float32)[0], w[:, col].float())
    x = torch.randn(1, k, generator=g).to(torch.bfloat16).to(device)
    scale_of = (x.double().abs() @ w.double().abs().T) + 1.0
    y = compact_gemv(x, c, None, out_dtype=torch.float32, pdl=True)
    assert float(((y.double() - _ref(x, w)).abs() / scale_of).max()) < 1e-6
    bias = torch.randn(n, generator=g).to(torch.bfloat16).to(device)
    if form == "norm":
        scale = (torch.rand(k, generator=g) + 0.5).to(device)
        ours = norm_linear(x, scale, EPS, c, bias)
        dense = norm_linear(x, scale, EPS, w, bias)
    else:
        residual = torch.randn(1, n, generator=g).to(torch.bfloat16).to(device)
        ours = linear_residual(x, c, bias, residual)
        dense = linear_residual(x, w, bias, residual)
    # bf16 outputs: the same but where the two float32 sums round to neighbouring values
    assert (
        float((ours.float() - dense.float()).abs().max()) <= float(dense.float().abs().max()) / 64
    )
    assert float((ours == dense).float().mean()) > 0.99
