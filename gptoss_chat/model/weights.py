"""Find, validate and load a gpt-oss checkpoint in either layout.

Validation reads only the safetensors headers (and file sizes), so a bad checkpoint fails in
milliseconds with a message naming the tensor or file, before any weight is read. Loading then
takes one tensor at a time from the memory-mapped files (`safetensors_io`): a CUDA engine copies
it to the device and drops the host pages, so host memory stays near one tensor; a CPU engine
keeps the mapped pages themselves as its weights (no second copy). The MoE weights stay MXFP4
packed (uint8 blocks + scales): nothing decodes experts at load time.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from gptoss_chat.generator import GeneratorError
from gptoss_chat.model.config import ConfigError, ModelConfig, read_config_json
from gptoss_chat.model.layout import Layout, TensorSpec, tensor_specs
from gptoss_chat.model.ops import ExpertWeights, PreparedLinear
from gptoss_chat.model.safetensors_io import (
    DTYPES,
    MappedFile,
    SafetensorsError,
    TensorEntry,
    read_header,
)

ProgressCallback = Callable[[int, int], None]
"""progress(bytes_loaded, bytes_total), called after each tensor reaches the device."""

FLOAT_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
FLOAT32_TARGETS = ("norm.scale", "attn.sinks")
"""Kept in float32 on the device, as the references do (norm scales, attention sinks)."""


class CheckpointError(GeneratorError):
    """The folder is not a loadable gpt-oss checkpoint; the message says what is wrong."""


@dataclass(frozen=True)
class CheckpointInfo:
    layout: Layout
    folder: Path
    """The folder holding config.json and the safetensors files."""
    config: ModelConfig
    files: tuple[Path, ...]


@dataclass
class LayerWeights:
    attn_norm: torch.Tensor  # [H] float32
    qkv_weight: torch.Tensor | PreparedLinear  # [(Hq + 2 Hkv) D, H] bf16 (`Ops.prepare_linear`)
    qkv_bias: torch.Tensor  # [(Hq + 2 Hkv) D] bf16
    sinks: torch.Tensor  # [Hq] float32
    out_weight: torch.Tensor | PreparedLinear  # [H, Hq D] bf16 (`Ops.prepare_linear`)
    out_bias: torch.Tensor  # [H] bf16
    mlp_norm: torch.Tensor  # [H] float32
    experts: ExpertWeights


@dataclass
class ModelWeights:
    embedding: torch.Tensor  # [V, H] bf16; on the host by default when the rest is on a GPU
    layers: list[LayerWeights]
    norm: torch.Tensor  # [H] float32
    unembedding: torch.Tensor  # [V, H] bf16
    unembedding_screen: object | None = None
    """What `Ops.prepare_unembedding` made of the unembedding for greedy decoding (a kernel's
    int8 screen, 0.58 GB at 20b size), or None."""
    unembedding_compact: PreparedLinear | None = None
    """What `Ops.prepare_linear` made of the unembedding (a kernel's 12-bit copy, 0.87 GB at
    20b size), which the logits of decode-sized rows are computed from, or None."""

    def nbytes(self, device_type: str | None = None) -> int:
        """Bytes of all weights, or of those on devices of `device_type` ("cuda", "cpu"): every
        tensor held here, in the layers, their experts and what the kernels prepared (a
        prepared weight keeps its dense one: each tensor counts once)."""
        tensors = {id(t): t for t in _tensors_in(vars(self).values())}
        return sum(
            t.numel() * t.element_size()
            for t in tensors.values()
            if device_type in (None, t.device.type)
        )


def _tensors_in(values: Iterable[object]) -> Iterator[torch.Tensor]:
    """The tensors among `values`, in lists of them and in the fields of objects among them."""
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, list):
            yield from _tensors_in(value)
        elif hasattr(value, "__dict__"):
            yield from _tensors_in(vars(value).values())


def find_checkpoint(model_dir: str | os.PathLike[str]) -> CheckpointInfo:
    """Recognise the layout: `original/` inside a downloaded folder, an original folder itself,
    or a Hugging Face layout (config.json with model_type gpt_oss). A downloaded repo holds both;
    `original/` wins, unless its files are missing (a partial download) and the top-level
    Hugging Face layout is there."""
    root = Path(model_dir).expanduser()
    if not root.exists():
        raise CheckpointError(
            f"no model at {root}: it does not exist. Download the weights with\n"
            f'  huggingface-cli download openai/gpt-oss-20b --include "original/*" '
            f"--local-dir {root}/"
        )
    if not root.is_dir():
        raise CheckpointError(f"{root} is not a folder")
    first_error: CheckpointError | None = None
    for folder in (root / "original", root):
        try:
            info = _recognise(folder)
        except CheckpointError as exc:
            first_error = first_error or exc
            continue
        if info is not None:
            return info
    if first_error is not None:
        raise first_error
    raise CheckpointError(
        f"{root} is not a gpt-oss checkpoint folder: expected original/config.json with "
        "model.safetensors (OpenAI's layout) or a Hugging Face config.json with model_type "
        "gpt_oss and its safetensors files"
    )


def _recognise(folder: Path) -> CheckpointInfo | None:
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        data = read_config_json(path)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    if "num_experts" in data and "experts_per_token" in data and "model_type" not in data:
        return _checked(Layout.ORIGINAL, folder, data, path)
    if data.get("model_type") == "gpt_oss":
        return _checked(Layout.HF, folder, data, path)
    if "model_type" in data:
        raise CheckpointError(f"{path} describes a {data['model_type']!r} model, not gpt-oss")
    return None


def _checked(layout: Layout, folder: Path, data: dict, path: Path) -> CheckpointInfo:
    try:
        config = ModelConfig.from_json(data) if layout is Layout.ORIGINAL else None
        config = config or ModelConfig.from_hf_json(data)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return CheckpointInfo(layout, folder, config, _safetensors_files(layout, folder))


def _safetensors_files(layout: Layout, folder: Path) -> tuple[Path, ...]:
    index_path = folder / "model.safetensors.index.json"
    if layout is Layout.HF and index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text())["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{index_path} is not a safetensors index: {exc}") from None
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise CheckpointError(f"{index_path} lists {', '.join(missing)}, missing in {folder}")
        return tuple(folder / n for n in names)
    files = tuple(sorted(folder.glob("*.safetensors")))
    if not files:
        raise CheckpointError(f"{folder} has a gpt-oss config.json but no .safetensors file")
    return files


def validate(info: CheckpointInfo) -> tuple[list[TensorSpec], dict[str, TensorEntry]]:
    """Check names, shapes and dtypes of every tensor against the config; no weight is read."""
    entries: dict[str, TensorEntry] = {}
    for path in info.files:
        try:
            header = read_header(path)
        except SafetensorsError as exc:
            raise CheckpointError(str(exc)) from None
        for name, entry in header.items():
            if name in entries:
                raise CheckpointError(f"tensor {name} appears in {entries[name].file} and {path}")
            entries[name] = entry
    specs = tensor_specs(info.config, info.layout)
    expected = {s.name for s in specs}
    missing = [s.name for s in specs if s.name not in entries]
    extra = sorted(set(entries) - expected)
    layers = info.config.num_hidden_layers
    if extra or missing:
        found_layers = _layer_count(entries, info.layout)
        if found_layers != layers:
            raise CheckpointError(
                f"config.json says num_hidden_layers={layers} but the checkpoint holds tensors "
                f"for {found_layers} layers: the config does not match the tensors"
            )
    if missing:
        raise CheckpointError(f"missing tensor(s): {_some(missing)} (in {info.folder})")
    if extra:
        raise CheckpointError(f"unexpected tensor(s): {_some(extra)} (in {info.folder})")
    for spec in specs:
        entry = entries[spec.name]
        if spec.dtype == torch.uint8 and entry.dtype != "U8":
            raise CheckpointError(f"{spec.name} has dtype {entry.dtype}, expected U8 (MXFP4)")
        if spec.dtype != torch.uint8 and entry.dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{spec.name} has dtype {entry.dtype}, expected BF16")
        if entry.shape != spec.shape:
            raise CheckpointError(
                f"{spec.name} has shape {list(entry.shape)} but config.json implies "
                f"{list(spec.shape)}: the config does not match the tensors"
            )
        if entry.nbytes != math.prod(entry.shape) * DTYPES[entry.dtype].itemsize:
            raise CheckpointError(
                f"{spec.name}: its header gives {entry.nbytes} bytes for shape "
                f"{list(entry.shape)} {entry.dtype} (a corrupt file?)"
            )
    return specs, entries


def _layer_count(entries: dict[str, TensorEntry], layout: Layout) -> int:
    prefix = "block." if layout is Layout.ORIGINAL else "model.layers."
    numbers = {
        int(name[len(prefix) :].split(".", 1)[0])
        for name in entries
        if name.startswith(prefix) and name[len(prefix) :].split(".", 1)[0].isdigit()
    }
    return max(numbers) + 1 if numbers else 0


def _some(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_weights(
    info: CheckpointInfo,
    device: torch.device,
    progress: ProgressCallback | None = None,
    *,
    dtype: torch.dtype = torch.bfloat16,
    embedding_on_host: bool = False,
) -> ModelWeights:
    """Validate, then stream every tensor to `device` one by one (MXFP4 stays packed).

    `dtype` is the activation/weight dtype (bf16; float32 only for exact parity checks).
    `embedding_on_host` keeps the embedding table in host memory, as a copy that owns its pages
    (not the file mapping, which the kernel could evict): a forward reads only T of its rows
    (`Transformer.embed`). The copy is not pinned: the rows reach the GPU from small pinned
    staging blocks, and torch's pinned allocator would round the table up to 2 GiB of locked
    memory (it allocates powers of two)."""
    specs, entries = validate(info)
    total = sum(entries[s.name].nbytes for s in specs)
    loaded = 0
    params: dict[str, torch.Tensor] = {}
    parts: dict[str, list[torch.Tensor]] = {}
    pending = Counter(spec.target for spec in specs)  # HF qkv: three tensors make one target
    try:
        files = {path: MappedFile(path) for path in info.files}
        for spec in specs:
            entry = entries[spec.name]
            mapped = files[entry.file].tensor(entry)
            if embedding_on_host and spec.target == "embedding.weight":
                tensor = _host_copy(mapped, files[entry.file], entry, _target_dtype(spec, dtype))
            else:
                tensor = mapped.to(device, _target_dtype(spec, dtype))
            if tensor.data_ptr() != mapped.data_ptr():
                files[entry.file].release(entry)  # copied: drop the host pages
            parts.setdefault(spec.target, []).append(tensor)
            del mapped, tensor
            pending[spec.target] -= 1
            if not pending[spec.target]:
                pieces = parts.pop(spec.target)
                params[spec.target] = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
            loaded += entries[spec.name].nbytes
            if progress is not None:
                progress(loaded, total)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"reading {info.folder} failed: {exc}") from exc
    return _assemble(info.config, params)


HOST_COPY_SLICE_BYTES = 64 * 1024**2


def _host_copy(
    mapped: torch.Tensor, file: MappedFile, entry: TensorEntry, dtype: torch.dtype
) -> torch.Tensor:
    """An owned host copy of a mapped [rows, ...] tensor, made a slice at a time with each
    slice's file pages dropped once copied: host memory peaks near the copy plus one slice
    instead of twice the tensor (1.16 GB for the 20b embedding table)."""
    out = torch.empty(mapped.shape, dtype=dtype)
    rows = mapped.shape[0]
    row_bytes = entry.nbytes // max(rows, 1)
    step = max(1, HOST_COPY_SLICE_BYTES // max(row_bytes, 1))
    for first in range(0, rows, step):
        count = min(step, rows - first)
        out[first : first + count].copy_(mapped[first : first + count])
        file.release_range(entry.offset + first * row_bytes, count * row_bytes)
    return out


def _target_dtype(spec: TensorSpec, dtype: torch.dtype) -> torch.dtype:
    if spec.dtype == torch.uint8:
        return torch.uint8
    return torch.float32 if spec.target.endswith(FLOAT32_TARGETS) else dtype


def _assemble(config: ModelConfig, p: dict[str, torch.Tensor]) -> ModelWeights:
    layers = []
    for n in range(config.num_hidden_layers):
        b = f"block.{n}."
        experts = ExpertWeights(
            gate_weight=p.pop(b + "mlp.gate.weight"),
            gate_bias=p.pop(b + "mlp.gate.bias"),
            mlp1_blocks=p.pop(b + "mlp.mlp1_weight.blocks"),
            mlp1_scales=p.pop(b + "mlp.mlp1_weight.scales"),
            mlp1_bias=p.pop(b + "mlp.mlp1_bias"),
            mlp2_blocks=p.pop(b + "mlp.mlp2_weight.blocks"),
            mlp2_scales=p.pop(b + "mlp.mlp2_weight.scales"),
            mlp2_bias=p.pop(b + "mlp.mlp2_bias"),
        )
        layers.append(
            LayerWeights(
                attn_norm=p.pop(b + "attn.norm.scale"),
                qkv_weight=p.pop(b + "attn.qkv.weight"),
                qkv_bias=p.pop(b + "attn.qkv.bias"),
                sinks=p.pop(b + "attn.sinks"),
                out_weight=p.pop(b + "attn.out.weight"),
                out_bias=p.pop(b + "attn.out.bias"),
                mlp_norm=p.pop(b + "mlp.norm.scale"),
                experts=experts,
            )
        )
    return ModelWeights(
        embedding=p.pop("embedding.weight"),
        layers=layers,
        norm=p.pop("norm.scale"),
        unembedding=p.pop("unembedding.weight"),
    )
