"""Random gpt-oss checkpoints in either layout, for tests and benchmarks.

Every engine parameter piece is drawn in fixed row chunks, each from its own generator seeded by
(seed, piece key, chunk index), so one seed writes the same numbers in both layouts (on the same
kind of device: CPU and CUDA random streams differ). Values keep activations finite: linear
weights ~ N(0, 1/fan_in), MXFP4 scales chosen so a decoded expert has the same spread, norms
near 1. Tensors stream to disk chunk by chunk in the safetensors format, so writing the 13 GB
20b preset holds about one chunk (128 MiB) in memory, never the checkpoint twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from gptoss_chat.model.config import ModelConfig
from gptoss_chat.model.layout import Layout, Piece, TensorSpec, tensor_specs

CHUNK_ELEMENTS = 64 * 1024 * 1024
FP4_RMS = math.sqrt(sum(v * v for v in (0, 0.5, 1, 1.5, 2, 3, 4, 6)) / 8)
"""Root mean square of an fp4 code drawn uniformly (about 2.93)."""
HF_SHARD_TARGET_BYTES = 4 * 1024**3
SAFETENSORS_DTYPES = {torch.bfloat16: "BF16", torch.uint8: "U8", torch.float32: "F32"}

ProgressCallback = Callable[[int, int], None]

# With every weight at N(0, 1/fan_in), 24 random layers are chaotic: bf16 rounding flips
# near-tied experts in the router and the difference grows layer by layer, so no two correct
# implementations agree token for token (measured on the H100: torch engine vs transformers,
# 3.7% argmax agreement). Residual branches at a quarter of the stream's scale and a router with
# wider logit gaps keep the model's shape and cost while making parity checks meaningful.
GAINS = {".attn.out.weight": 0.25, ".mlp2_weight.scales": 0.25, ".mlp.gate.weight": 4.0}


def _gain(key: str) -> float:
    return next((gain for suffix, gain in GAINS.items() if key.endswith(suffix)), 1.0)


def _chunk_seed(seed: int, key: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{key}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _draw(piece: Piece, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    device = gen.device
    if piece.kind == "blocks":
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen, device=device)
    if piece.kind == "scales":
        # 2**e * FP4_RMS ~ 1/sqrt(fan_in); a +-1 jitter keeps the scales varied.
        exponent = round(math.log2(_gain(piece.key) / (FP4_RMS * math.sqrt(piece.fan_in))))
        jitter = torch.randint(-1, 2, shape, dtype=torch.int16, generator=gen, device=device)
        return (127 + exponent + jitter).to(torch.uint8)
    normal = torch.randn(shape, generator=gen, device=device, dtype=torch.float32)
    std = {"embedding": 1.0, "bias": 0.1, "norm": 0.1, "sinks": 1.0}.get(piece.kind)
    if piece.kind == "linear":
        std = _gain(piece.key) / math.sqrt(piece.fan_in)
    values = normal * std + (1.0 if piece.kind == "norm" else 0.0)
    return values.to(torch.bfloat16)


def draw_piece(piece: Piece, seed: int, device: torch.device) -> Iterator[torch.Tensor]:
    """The piece's values as CPU chunks along dim 0, always cut the same way."""
    rows = piece.shape[0]
    row_elements = math.prod(piece.shape[1:])
    rows_per_chunk = max(1, CHUNK_ELEMENTS // max(row_elements, 1))
    for index, first in enumerate(range(0, rows, rows_per_chunk)):
        gen = torch.Generator(device=device)
        gen.manual_seed(_chunk_seed(seed, piece.key, index))
        shape = (min(rows_per_chunk, rows - first), *piece.shape[1:])
        yield _draw(piece, shape, gen).cpu().contiguous()


def write_safetensors(
    path: Path,
    specs: list[TensorSpec],
    chunks: Callable[[TensorSpec], Iterator[torch.Tensor]],
    on_bytes: Callable[[int], None] = lambda n: None,
) -> None:
    """Write `specs` to `path` in the safetensors format, streaming each tensor's chunks."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for spec in specs:
        header[spec.name] = {
            "dtype": SAFETENSORS_DTYPES[spec.dtype],
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # data starts 8-byte aligned
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for spec in specs:
            written = 0
            for chunk in chunks(spec):
                if chunk.dtype != spec.dtype:
                    raise TypeError(f"{spec.name}: drew {chunk.dtype}, expected {spec.dtype}")
                data = chunk.reshape(-1).view(torch.uint8).numpy()
                out.write(memoryview(data))
                written += data.nbytes
                on_bytes(data.nbytes)
            if written != spec.nbytes:
                raise RuntimeError(f"{spec.name}: wrote {written} bytes, expected {spec.nbytes}")


def _shards(specs: list[TensorSpec], target_bytes: int) -> list[list[TensorSpec]]:
    """Consecutive groups of about `target_bytes`; at least two, so loaders meet an index."""
    total = sum(s.nbytes for s in specs)
    target = min(target_bytes, max(total // 2, 1))
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if shards[-1] and size + spec.nbytes > target:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


def write_random_checkpoint(
    directory: Path,
    config: ModelConfig,
    layout: Layout,
    *,
    seed: int = 0,
    device: torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write a random checkpoint; returns the folder a loader should be given (`directory`).

    original: directory/original/{config.json, model.safetensors}, as in the downloaded repo.
    hf: directory/{config.json, model-0000k-of-0000n.safetensors, model.safetensors.index.json}.
    """
    config.validate()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    specs = tensor_specs(config, layout)
    total = sum(s.nbytes for s in specs)
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    def chunks(spec: TensorSpec) -> Iterator[torch.Tensor]:
        for piece in spec.pieces:
            yield from draw_piece(piece, seed, device)

    directory.mkdir(parents=True, exist_ok=True)
    if layout is Layout.ORIGINAL:
        folder = directory / "original"
        folder.mkdir(exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
        write_safetensors(folder / "model.safetensors", specs, chunks, on_bytes)
        return directory
    shards = _shards(specs, HF_SHARD_TARGET_BYTES)
    weight_map: dict[str, str] = {}
    for number, shard in enumerate(shards, start=1):
        file_name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(directory / file_name, shard, chunks, on_bytes)
        weight_map.update({spec.name: file_name for spec in shard})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (directory / "config.json").write_text(json.dumps(config.to_hf_json(), indent=2) + "\n")
    return directory
