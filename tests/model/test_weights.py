"""Checkpoint discovery, validation messages and loading, on a micro model (vocab 256)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gptoss_chat.model.config import TINY
from gptoss_chat.model.layout import Layout
from gptoss_chat.model.random_checkpoint import write_random_checkpoint
from gptoss_chat.model.weights import CheckpointError, find_checkpoint, load_weights

MICRO = replace(TINY, vocab_size=256, num_hidden_layers=2)
CPU = torch.device("cpu")


def make(tmp_path: Path, layout: Layout = Layout.ORIGINAL, seed: int = 5) -> Path:
    return write_random_checkpoint(tmp_path / layout.value, MICRO, layout, seed=seed, device=CPU)


def rewrite(path: Path, edit) -> None:
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def load(root: Path):
    return load_weights(find_checkpoint(root), CPU)


def test_same_seed_same_weights_in_both_layouts(tmp_path: Path) -> None:
    original, hf = load(make(tmp_path, Layout.ORIGINAL)), load(make(tmp_path, Layout.HF))
    pairs = [(original.embedding, hf.embedding), (original.unembedding, hf.unembedding)]
    for a, b in zip(original.layers, hf.layers, strict=True):
        pairs += [(x, y) for x, y in zip(vars(a).values(), vars(b).values(), strict=True)
                  if isinstance(x, torch.Tensor)]  # fmt: skip
        pairs += list(zip(vars(a.experts).values(), vars(b.experts).values(), strict=True))
    assert all(torch.equal(x, y) for x, y in pairs)
    assert not torch.equal(load(make(tmp_path / "other", seed=6)).embedding, original.embedding)


def test_experts_stay_packed_and_progress_reaches_total(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    weights = load_weights(find_checkpoint(make(tmp_path)), CPU, lambda d, t: seen.append((d, t)))
    experts = weights.layers[0].experts
    assert experts.mlp1_blocks.dtype == torch.uint8
    assert experts.mlp1_blocks.shape == (8, 128, 2, 16)
    assert experts.mlp2_scales.dtype == torch.uint8
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == seen[-1][1]
    assert weights.layers[0].sinks.dtype == weights.norm.dtype == torch.float32


def test_finds_original_inside_a_downloaded_folder_or_given_directly(tmp_path: Path) -> None:
    root = make(tmp_path)
    assert find_checkpoint(root).layout is Layout.ORIGINAL
    assert find_checkpoint(root / "original").folder == root / "original"
    assert find_checkpoint(make(tmp_path, Layout.HF)).layout is Layout.HF


def test_downloaded_repo_with_partial_original_falls_back_to_hf_layout(tmp_path: Path) -> None:
    root = make(tmp_path, Layout.HF)
    original = make(tmp_path / "o")
    (root / "original").mkdir()
    (root / "original" / "config.json").write_text(
        (original / "original" / "config.json").read_text()
    )
    assert find_checkpoint(root).layout is Layout.HF  # original/ has no weights yet
    (root / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"no \.safetensors file"):
        find_checkpoint(root)


def expect(root: Path, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        load(root)


def test_not_a_folder(tmp_path: Path) -> None:
    expect(tmp_path / "nowhere", "does not exist. Download the weights with")
    (tmp_path / "a-file").write_text("x")
    expect(tmp_path / "a-file", "is not a folder")


def test_not_a_gpt_oss_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    expect(tmp_path, "is not a gpt-oss checkpoint folder")


def test_other_model_type(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    expect(tmp_path, "describes a 'llama' model, not gpt-oss")


def test_config_not_json(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "original" / "config.json").write_text("{not json")
    expect(root, "is not readable JSON")


def test_config_missing_key(tmp_path: Path) -> None:
    root = make(tmp_path)
    path = root / "original" / "config.json"
    data = json.loads(path.read_text())
    del data["head_dim"]
    path.write_text(json.dumps(data))
    expect(root, "lacks head_dim")


def test_inconsistent_config(tmp_path: Path) -> None:
    root = make(tmp_path)
    path = root / "original" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "experts_per_token": 9}))
    expect(root, r"experts_per_token \(9\) exceeds num_experts \(8\)")


def test_config_hidden_size_does_not_match_tensors(tmp_path: Path) -> None:
    root = make(tmp_path)
    path = root / "original" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "hidden_size": 96}))
    expect(root, r"embedding.weight has shape \[256, 64\] but config.json implies \[256, 96\]")


def test_config_layer_count_does_not_match_tensors(tmp_path: Path) -> None:
    root = make(tmp_path, Layout.HF)
    path = root / "config.json"
    data = json.loads(path.read_text())
    data["num_hidden_layers"] = 3
    data["layer_types"] = data["layer_types"] + ["sliding_attention"]
    path.write_text(json.dumps(data))
    expect(root, "num_hidden_layers=3 but the checkpoint holds tensors for 2 layers")


def test_missing_tensor(tmp_path: Path) -> None:
    root = make(tmp_path)
    rewrite(root / "original" / "model.safetensors", lambda t: t.pop("block.1.attn.sinks"))
    expect(root, r"missing tensor\(s\): block.1.attn.sinks")


def test_extra_tensor(tmp_path: Path) -> None:
    root = make(tmp_path)
    rewrite(
        root / "original" / "model.safetensors",
        lambda t: t.update({"block.0.attn.rotary": torch.zeros(3)}),
    )
    expect(root, r"unexpected tensor\(s\): block.0.attn.rotary")


def test_wrong_shape(tmp_path: Path) -> None:
    root = make(tmp_path)
    rewrite(
        root / "original" / "model.safetensors",
        lambda t: t.update({"block.0.mlp.gate.bias": torch.zeros(7, dtype=torch.bfloat16)}),
    )
    expect(root, r"block.0.mlp.gate.bias has shape \[7\] but config.json implies \[8\]")


def test_wrong_dtype(tmp_path: Path) -> None:
    root = make(tmp_path)
    path = root / "original" / "model.safetensors"
    name = "block.0.mlp.mlp1_weight.blocks"
    rewrite(path, lambda t: t.update({name: t[name].to(torch.bfloat16)}))
    expect(root, f"{name} has dtype BF16, expected U8")
    rewrite(path, lambda t: t.update({name: t[name].to(torch.uint8)}))
    rewrite(path, lambda t: t.update({"norm.scale": t["norm.scale"].to(torch.int32)}))
    expect(root, "norm.scale has dtype I32, expected BF16")


def test_truncated_file(tmp_path: Path) -> None:
    root = make(tmp_path)
    path = root / "original" / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    expect(root, "is truncated: it holds")
    path.write_bytes(data[:20])
    expect(root, "is truncated|is not a safetensors file")


def test_header_byte_range_disagrees_with_shape(tmp_path: Path) -> None:
    root = make(tmp_path)
    path = root / "original" / "model.safetensors"
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    begin, end = header["norm.scale"]["data_offsets"]
    header["norm.scale"]["data_offsets"] = [begin, end - 2]
    text = json.dumps(header, separators=(",", ":")).encode().ljust(length)  # same length
    path.write_bytes(data[:8] + text + data[8 + length :])
    expect(root, r"norm.scale: its header gives 126 bytes for shape \[64\] BF16")


def test_garbage_file(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "original" / "model.safetensors").write_bytes(
        b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"x" * 64
    )
    expect(root, "is not a safetensors file")


def test_hf_index_names_a_missing_shard(tmp_path: Path) -> None:
    root = make(tmp_path, Layout.HF)
    shard = sorted(root.glob("model-*.safetensors"))[-1]
    shard.unlink()
    expect(root, f"lists {shard.name}, missing in")


def test_hf_index_not_json(tmp_path: Path) -> None:
    root = make(tmp_path, Layout.HF)
    (root / "model.safetensors.index.json").write_text("[]")
    expect(root, "is not a safetensors index")


def test_hf_config_without_safetensors(tmp_path: Path) -> None:
    root = make(tmp_path, Layout.HF)
    for path in root.glob("*.safetensors*"):
        path.unlink()
    expect(root, "no .safetensors file")


def test_embedding_on_host_is_an_owned_copy_made_in_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a CUDA engine keeps on the host: the same table, in memory of its own (not the
    file mapping), copied 1 KiB at a time here so that the slicing is exercised."""
    from gptoss_chat.model import weights

    monkeypatch.setattr(weights, "HOST_COPY_SLICE_BYTES", 1024)  # 8 rows of 64 bf16
    root = make(tmp_path, Layout.HF)
    mapped, owned = load(root), load_weights(find_checkpoint(root), CPU, embedding_on_host=True)
    assert torch.equal(owned.embedding, mapped.embedding)
    assert owned.embedding.untyped_storage().resizable()  # torch's own allocation
    assert not mapped.embedding.untyped_storage().resizable()  # a view of the mapped file
    assert owned.nbytes("cpu") == owned.nbytes() == mapped.nbytes()
    assert owned.nbytes("cuda") == 0
