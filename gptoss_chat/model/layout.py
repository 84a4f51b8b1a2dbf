"""Tensor names and shapes of the two gpt-oss checkpoint layouts.

The engine names its parameters as OpenAI's `original/model.safetensors` does
(`block.{n}.mlp.mlp1_weight.blocks`, ...). The Hugging Face layout stores the same numbers under
other names and splits the fused qkv projection into q_proj/k_proj/v_proj; the MXFP4 tensors
keep the same [experts, rows, cols/32, 16] shape in both (transformers' `convert_moe_packed_tensors`
transposes only after decoding). One table per layout, used by the loader to validate and map,
and by `make-checkpoint` to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch

from gptoss_chat.model.config import ModelConfig


class Layout(StrEnum):
    ORIGINAL = "original"
    HF = "hf"


@dataclass(frozen=True)
class Piece:
    """A slice of an engine parameter along dim 0; its `key` seeds random checkpoints, so a seed
    gives the same numbers in either layout."""

    key: str
    shape: tuple[int, ...]
    kind: str
    """embedding, linear, bias, norm, sinks, blocks or scales: how make-checkpoint draws it."""
    fan_in: int = 0


@dataclass(frozen=True)
class TensorSpec:
    name: str
    """Name in the checkpoint."""
    target: str
    """Engine parameter (original-layout name); pieces of one target concatenate in table order."""
    pieces: tuple[Piece, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.pieces[0].shape
        return (sum(p.shape[0] for p in self.pieces), *first[1:])

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8 if self.pieces[0].kind in ("blocks", "scales") else torch.bfloat16

    @property
    def nbytes(self) -> int:
        count = 1
        for d in self.shape:
            count *= d
        return count * self.dtype.itemsize


def _layer_pieces(c: ModelConfig, n: int) -> dict[str, tuple[Piece, ...]]:
    """Engine parameter -> its pieces, for layer n."""
    h, e, i = c.hidden_size, c.num_experts, c.intermediate_size
    q_rows, kv_rows = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
    b = f"block.{n}"

    def qkv(suffix: str, kind: str, extra: tuple[int, ...]) -> tuple[Piece, ...]:
        name = f"{b}.attn.qkv.{suffix}"
        return tuple(
            Piece(f"{name}:{part}", (rows, *extra), kind, h)
            for part, rows in (("q", q_rows), ("k", kv_rows), ("v", kv_rows))
        )

    return {
        f"{b}.attn.norm.scale": (Piece(f"{b}.attn.norm.scale", (h,), "norm"),),
        f"{b}.attn.qkv.weight": qkv("weight", "linear", (h,)),
        f"{b}.attn.qkv.bias": qkv("bias", "bias", ()),
        f"{b}.attn.sinks": (Piece(f"{b}.attn.sinks", (c.num_attention_heads,), "sinks"),),
        f"{b}.attn.out.weight": (Piece(f"{b}.attn.out.weight", (h, q_rows), "linear", q_rows),),
        f"{b}.attn.out.bias": (Piece(f"{b}.attn.out.bias", (h,), "bias"),),
        f"{b}.mlp.norm.scale": (Piece(f"{b}.mlp.norm.scale", (h,), "norm"),),
        f"{b}.mlp.gate.weight": (Piece(f"{b}.mlp.gate.weight", (e, h), "linear", h),),
        f"{b}.mlp.gate.bias": (Piece(f"{b}.mlp.gate.bias", (e,), "bias"),),
        f"{b}.mlp.mlp1_weight.blocks": (
            Piece(f"{b}.mlp.mlp1_weight.blocks", (e, 2 * i, h // 32, 16), "blocks", h),
        ),
        f"{b}.mlp.mlp1_weight.scales": (
            Piece(f"{b}.mlp.mlp1_weight.scales", (e, 2 * i, h // 32), "scales", h),
        ),
        f"{b}.mlp.mlp1_bias": (Piece(f"{b}.mlp.mlp1_bias", (e, 2 * i), "bias"),),
        f"{b}.mlp.mlp2_weight.blocks": (
            Piece(f"{b}.mlp.mlp2_weight.blocks", (e, h, i // 32, 16), "blocks", i),
        ),
        f"{b}.mlp.mlp2_weight.scales": (
            Piece(f"{b}.mlp.mlp2_weight.scales", (e, h, i // 32), "scales", i),
        ),
        f"{b}.mlp.mlp2_bias": (Piece(f"{b}.mlp.mlp2_bias", (e, h), "bias"),),
    }


def _global_pieces(c: ModelConfig) -> dict[str, tuple[Piece, ...]]:
    v, h = c.vocab_size, c.hidden_size
    return {
        "embedding.weight": (Piece("embedding.weight", (v, h), "embedding"),),
        "norm.scale": (Piece("norm.scale", (h,), "norm"),),
        "unembedding.weight": (Piece("unembedding.weight", (v, h), "linear", h),),
    }


# Engine parameter suffix -> HF name suffix, per layer (qkv handled apart: it splits in three).
_HF_LAYER_NAMES = {
    "attn.norm.scale": "input_layernorm.weight",
    "attn.sinks": "self_attn.sinks",
    "attn.out.weight": "self_attn.o_proj.weight",
    "attn.out.bias": "self_attn.o_proj.bias",
    "mlp.norm.scale": "post_attention_layernorm.weight",
    "mlp.gate.weight": "mlp.router.weight",
    "mlp.gate.bias": "mlp.router.bias",
    "mlp.mlp1_weight.blocks": "mlp.experts.gate_up_proj_blocks",
    "mlp.mlp1_weight.scales": "mlp.experts.gate_up_proj_scales",
    "mlp.mlp1_bias": "mlp.experts.gate_up_proj_bias",
    "mlp.mlp2_weight.blocks": "mlp.experts.down_proj_blocks",
    "mlp.mlp2_weight.scales": "mlp.experts.down_proj_scales",
    "mlp.mlp2_bias": "mlp.experts.down_proj_bias",
}
_HF_GLOBAL_NAMES = {
    "embedding.weight": "model.embed_tokens.weight",
    "norm.scale": "model.norm.weight",
    "unembedding.weight": "lm_head.weight",
}


def tensor_specs(config: ModelConfig, layout: Layout) -> list[TensorSpec]:
    """Every tensor a checkpoint of this config holds, in writing order (embedding, layers,
    final norm, unembedding)."""
    globals_ = _global_pieces(config)
    specs: list[TensorSpec] = []

    def add(name: str, target: str, pieces: tuple[Piece, ...]) -> None:
        specs.append(TensorSpec(name, target, pieces))

    name_of = (lambda t: t) if layout is Layout.ORIGINAL else _HF_GLOBAL_NAMES.__getitem__
    add(name_of("embedding.weight"), "embedding.weight", globals_["embedding.weight"])
    for n in range(config.num_hidden_layers):
        for target, pieces in _layer_pieces(config, n).items():
            if layout is Layout.ORIGINAL:
                add(target, target, pieces)
                continue
            suffix = target.removeprefix(f"block.{n}.")
            hf = f"model.layers.{n}."
            if suffix.startswith("attn.qkv."):
                kind = suffix.removeprefix("attn.qkv.")
                for piece, proj in zip(pieces, ("q_proj", "k_proj", "v_proj"), strict=True):
                    add(f"{hf}self_attn.{proj}.{kind}", target, (piece,))
            else:
                add(hf + _HF_LAYER_NAMES[suffix], target, pieces)
    for target in ("norm.scale", "unembedding.weight"):
        add(name_of(target), target, globals_[target])
    return specs
