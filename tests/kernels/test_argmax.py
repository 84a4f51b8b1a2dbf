"""The sampler's one-launch argmax against torch.argmax: the first index of the largest value."""

from __future__ import annotations

import pytest
import torch

from gptoss_chat.kernels import build_ops
from gptoss_chat.kernels.argmax import argmax, argmax_into
from gptoss_chat.model.ops import TORCH_OPS


def _row(n: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g).to(device)


@pytest.mark.parametrize("n", [1, 5, 1024, 2048, 2049, 6000])  # one block, whole programs, tails
def test_matches_torch(device, n) -> None:
    for seed in range(3):
        row = _row(n, seed, device)
        assert argmax(row).item() == torch.argmax(row).item()


def test_ties_go_to_the_first_index(device) -> None:
    """Within a block, across blocks of one program and across programs: the lowest index."""
    row = torch.zeros(6000, device=device)
    for at in (4100, 2500, 1500, 7):  # programs 2, 1, 0 (second block), 0 (first block)
        row[at] = 3.0
        assert argmax(row).item() == min(i for i in (4100, 2500, 1500, 7) if i >= at)
    assert argmax(torch.zeros(5000, device=device)).item() == 0


def test_special_values(device) -> None:
    row = torch.full((3000,), float("-inf"), device=device)
    assert argmax(row).item() == 0  # all -inf: the first, as torch
    row[2222] = float("nan")
    assert argmax(row).item() == torch.argmax(row).item() == 2222  # NaN counts as the largest


def test_repeated_calls_leave_the_counter_at_zero(device) -> None:
    """The last program resets the arrival counter, so the next call (a graph replay) merges
    again: a different row gets its own answer."""
    first, second = _row(5000, 1, device), _row(5000, 2, device)
    assert argmax(first).item() == torch.argmax(first).item()
    assert argmax(second).item() == torch.argmax(second).item()
    assert argmax(first).item() == torch.argmax(first).item()


def test_rejects_what_it_cannot_take(device) -> None:
    with pytest.raises(ValueError, match="float32 row"):
        argmax(torch.zeros(2, 8, device=device))
    with pytest.raises(ValueError, match="float32 row"):
        argmax(torch.zeros(8, dtype=torch.bfloat16, device=device))


def test_into_writes_the_id_and_gathers_its_row(device) -> None:
    """Greedy decoding's tail in one launch: the id into a [1] buffer and its embedded row
    (bf16, a width that is not a power of two) into the next step's input."""
    table = torch.randn(6000, 40, generator=torch.Generator().manual_seed(0)).to(device)
    table = table.to(torch.bfloat16)
    token = torch.zeros(1, dtype=torch.int64, device=device)
    hidden = torch.zeros(1, 40, dtype=torch.bfloat16, device=device)
    for seed in (1, 2):
        row = _row(6000, seed, device)
        argmax_into(row, token, table, hidden)
        expected = torch.argmax(row).item()
        assert token.item() == expected and torch.equal(hidden[0], table[expected])
    argmax_into(_row(6000, 3, device), token)  # no table: the id only
    assert token.item() == torch.argmax(_row(6000, 3, device)).item()
    host = torch.full((1,), -1, dtype=torch.int64)  # not pinned: copied after the launch
    argmax_into(_row(6000, 4, device), token, host=host)
    assert host.item() == torch.argmax(_row(6000, 4, device)).item() == token.item()
    with pytest.raises(ValueError, match="does not hold"):
        argmax_into(row, token, table, hidden[:, :20])
    with pytest.raises(ValueError, match="one int64"):
        argmax_into(row, token.int(), table, hidden)
    with pytest.raises(ValueError, match="one int64 to the host"):
        argmax_into(row, token, host=torch.zeros(2, dtype=torch.int64))


@pytest.mark.gpu
def test_vocabulary_row_in_a_cuda_graph() -> None:
    """gpt-oss's 201,088 logits, captured in a CUDA graph and replayed over new values."""
    dev = torch.device("cuda")
    logits = _row(201088, 5, dev)
    assert argmax(logits).item() == torch.argmax(logits).item()  # eager first: makes the counter
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        picked = argmax(logits)
    for seed in (6, 7, 8):
        logits.copy_(_row(201088, seed, dev))
        graph.replay()
        torch.cuda.synchronize()
        assert picked.item() == torch.argmax(logits).item()


@pytest.mark.gpu
def test_the_kernel_writes_pinned_host_memory_in_a_graph() -> None:
    """With a pinned host slot the argmax's last program stores the id there itself (no copy
    after the kernel), captured in a CUDA graph: each replay's id is on the host once the
    stream has finished."""
    dev = torch.device("cuda")
    logits = _row(201088, 5, dev)
    token = torch.zeros(1, dtype=torch.int64, device=dev)
    host = torch.full((1,), -1, dtype=torch.int64, pin_memory=True)
    argmax_into(logits, token, host=host)
    torch.cuda.synchronize()
    assert host.item() == torch.argmax(logits).item()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        argmax_into(logits, token, host=host)
    for seed in (6, 7, 8):
        logits.copy_(_row(201088, seed, dev))
        host.fill_(-1)
        graph.replay()
        torch.cuda.synchronize()
        assert host.item() == torch.argmax(logits).item() == token.item()


@pytest.mark.gpu
@pytest.mark.parametrize(("temperature", "top_p"), [(0.0, 1.0), (1.0, 1.0), (0.8, 0.9)])
def test_kernel_sampler_draws_the_reference_ids(temperature, top_p) -> None:
    """build_ops' sampler (this argmax) and the reference draw the same ids from the same
    generator state: greedy, plain sampling and top-p."""
    dev = torch.device("cuda")
    ops = build_ops(TORCH_OPS, dev)
    ours, theirs = torch.Generator(dev).manual_seed(3), torch.Generator(dev).manual_seed(3)
    for seed in range(20):
        logits = _row(201088, seed, dev) * 4
        expected = TORCH_OPS.sample(logits, temperature, top_p, theirs)
        assert ops.sample(logits, temperature, top_p, ours).item() == expected.item()


@pytest.mark.gpu
@pytest.mark.parametrize(("temperature", "top_p"), [(0.0, 1.0), (0.8, 0.9)])
def test_kernel_sample_into_matches_the_reference(temperature, top_p) -> None:
    """build_ops' sample_into (greedy: one launch that also gathers the row) writes the ids and
    rows of the reference's, from the same generator state."""
    dev = torch.device("cuda")
    ops = build_ops(TORCH_OPS, dev)
    table = torch.randn(201088, 2880, device=dev).to(torch.bfloat16)
    ours, theirs = torch.Generator(dev).manual_seed(3), torch.Generator(dev).manual_seed(3)
    (token, row), (ref_token, ref_row) = (
        (torch.zeros(1, dtype=torch.int64, device=dev), torch.zeros(1, 2880, device=dev).bfloat16())
        for _ in range(2)
    )
    host, ref_host = (torch.zeros(1, dtype=torch.int64, pin_memory=True) for _ in range(2))
    for seed in range(10):
        logits = _row(201088, seed, dev) * 4
        ops.sample_into(logits, temperature, top_p, ours, token, table, row, host=host)
        TORCH_OPS.sample_into(logits, temperature, top_p, theirs, ref_token, table, ref_row,
                              host=ref_host)  # fmt: skip
        torch.cuda.synchronize()
        assert torch.equal(token, ref_token) and torch.equal(row, ref_row)
        assert host.item() == ref_host.item() == ref_token.item()
