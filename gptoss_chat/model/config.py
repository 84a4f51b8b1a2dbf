"""gpt-oss model configuration, read from either checkpoint layout.

Field names equal the keys of the `original/config.json` that OpenAI ships, so that file loads
as `ModelConfig(**json)`. The Hugging Face layout's `config.json` names the same figures
differently (`num_local_experts`, `rope_scaling.beta_fast`, ...); `from_hf_json` maps them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config.json that is missing, unreadable or not a consistent gpt-oss configuration."""


@dataclass(frozen=True)
class ModelConfig:
    num_hidden_layers: int = 24
    num_experts: int = 32
    experts_per_token: int = 4
    vocab_size: int = 201088
    hidden_size: int = 2880
    intermediate_size: int = 2880
    swiglu_limit: float = 7.0
    head_dim: int = 64
    num_attention_heads: int = 64
    num_key_value_heads: int = 8
    sliding_window: int = 128
    initial_context_length: int = 4096
    rope_theta: float = 150000.0
    rope_scaling_factor: float = 32.0
    rope_ntk_alpha: float = 1.0
    rope_ntk_beta: float = 32.0

    # Not in config.json: fixed by the architecture, named here so the code says where they live.
    swiglu_alpha = 1.702
    rms_norm_eps = 1e-5
    mxfp4_block = 32
    """Values per MXFP4 block: 32 fp4 numbers (16 bytes) share one e8m0 scale byte."""

    @property
    def max_context_length(self) -> int:
        """The context YaRN extends to: 4096 * 32 = 131072 for the released models."""
        return int(self.initial_context_length * max(self.rope_scaling_factor, 1.0))

    @property
    def qkv_dim(self) -> int:
        return self.head_dim * (self.num_attention_heads + 2 * self.num_key_value_heads)

    def is_sliding(self, layer: int) -> bool:
        """Even layers attend to a sliding window, odd layers to the whole context."""
        return layer % 2 == 0 and self.sliding_window > 0

    def validate(self) -> None:
        """Raise ConfigError if the figures cannot describe a gpt-oss model."""
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                problems.append(f"{f.name} must be a non-negative number, got {value!r}")
        if problems:
            raise ConfigError("; ".join(problems))
        positive = ("num_hidden_layers", "num_experts", "experts_per_token", "vocab_size")
        positive += ("hidden_size", "intermediate_size", "head_dim", "num_attention_heads")
        positive += ("num_key_value_heads", "initial_context_length")
        problems = [f"{name} must be > 0" for name in positive if getattr(self, name) <= 0]
        if self.experts_per_token > self.num_experts:
            problems.append(
                f"experts_per_token ({self.experts_per_token}) exceeds num_experts "
                f"({self.num_experts})"
            )
        if self.num_key_value_heads and self.num_attention_heads % self.num_key_value_heads:
            problems.append(
                f"num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        for name in ("hidden_size", "intermediate_size"):
            if getattr(self, name) % self.mxfp4_block:
                problems.append(f"{name} must be a multiple of {self.mxfp4_block} (MXFP4 blocks)")
        if self.head_dim % 2:
            problems.append("head_dim must be even (rotary embedding)")
        if problems:
            raise ConfigError("; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_hf_json(self) -> dict[str, Any]:
        """The Hugging Face `config.json` of this model (what transformers' GptOssConfig reads)."""
        return {
            "architectures": ["GptOssForCausalLM"],
            "model_type": "gpt_oss",
            "num_hidden_layers": self.num_hidden_layers,
            "num_local_experts": self.num_experts,
            "num_experts_per_tok": self.experts_per_token,
            "experts_per_token": self.experts_per_token,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "swiglu_limit": self.swiglu_limit,
            "head_dim": self.head_dim,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "sliding_window": self.sliding_window,
            "layer_types": [
                "sliding_attention" if self.is_sliding(i) else "full_attention"
                for i in range(self.num_hidden_layers)
            ],
            "max_position_embeddings": self.max_context_length,
            "initial_context_length": self.initial_context_length,
            "rope_theta": self.rope_theta,
            "rope_scaling": {
                "rope_type": "yarn",
                "factor": self.rope_scaling_factor,
                "beta_fast": self.rope_ntk_beta,
                "beta_slow": self.rope_ntk_alpha,
                "truncate": False,
                "original_max_position_embeddings": self.initial_context_length,
            },
            "rms_norm_eps": self.rms_norm_eps,
            "attention_bias": True,
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            # Harmony's <|return|> and <|endoftext|>; absent from a shrunken test vocabulary.
            "eos_token_id": 200002 if self.vocab_size > 200002 else None,
            "pad_token_id": 199999 if self.vocab_size > 199999 else None,
            "quantization_config": {
                "quant_method": "mxfp4",
                "modules_to_not_convert": [
                    "model.layers.*.self_attn",
                    "model.layers.*.mlp.router",
                    "model.embed_tokens",
                    "lm_head",
                ],
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """Read an `original/config.json`; unknown keys are ignored, missing keys are an error."""
        names = {f.name for f in fields(cls)}
        missing = sorted(names - data.keys())
        if missing:
            raise ConfigError(f"config.json lacks {', '.join(missing)}")
        config = cls(**{k: data[k] for k in names})
        config.validate()
        return config

    @classmethod
    def from_hf_json(cls, data: dict[str, Any]) -> ModelConfig:
        """Read a Hugging Face layout `config.json` (model_type gpt_oss)."""
        rope = data.get("rope_scaling") or data.get("rope_parameters") or {}
        theta = data.get("rope_theta", rope.get("rope_theta", 150000.0))
        try:
            config = cls(
                num_hidden_layers=data["num_hidden_layers"],
                num_experts=data["num_local_experts"],
                experts_per_token=data.get("num_experts_per_tok", data.get("experts_per_token")),
                vocab_size=data["vocab_size"],
                hidden_size=data["hidden_size"],
                intermediate_size=data["intermediate_size"],
                swiglu_limit=data.get("swiglu_limit", 7.0),
                head_dim=data.get("head_dim", data["hidden_size"] // data["num_attention_heads"]),
                num_attention_heads=data["num_attention_heads"],
                num_key_value_heads=data["num_key_value_heads"],
                sliding_window=data.get("sliding_window") or 0,
                initial_context_length=rope.get(
                    "original_max_position_embeddings", data.get("initial_context_length", 4096)
                ),
                rope_theta=theta,
                rope_scaling_factor=rope.get("factor", 1.0),
                rope_ntk_alpha=rope.get("beta_slow", 1.0),
                rope_ntk_beta=rope.get("beta_fast", 32.0),
            )
        except KeyError as exc:
            raise ConfigError(f"config.json lacks {exc.args[0]}") from None
        config.validate()
        layer_types = data.get("layer_types")
        if layer_types is not None:
            expected = [
                "sliding_attention" if config.is_sliding(i) else "full_attention"
                for i in range(config.num_hidden_layers)
            ]
            if list(layer_types) != expected:
                raise ConfigError(
                    "config.json layer_types must alternate sliding/full attention starting with "
                    "sliding, as gpt-oss does"
                )
        return config


def read_config_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return data


GPT_OSS_20B = ModelConfig()
GPT_OSS_120B = replace(GPT_OSS_20B, num_hidden_layers=36, num_experts=128)
TINY = replace(
    GPT_OSS_20B,
    num_hidden_layers=4,
    num_experts=8,
    hidden_size=64,
    intermediate_size=64,
    head_dim=16,
    num_attention_heads=4,
    num_key_value_heads=2,
    sliding_window=8,
)
"""A model small enough for CPU tests that keeps the real vocabulary (Harmony ids stay valid).

head_dim 16 still satisfies YaRN's 0 < low < high < head_dim/2 - 1 at the real rope settings."""

PRESETS: dict[str, ModelConfig] = {"tiny": TINY, "20b": GPT_OSS_20B, "120b": GPT_OSS_120B}


def yarn_bounds(config: ModelConfig) -> tuple[float, float]:
    """YaRN's NTK-by-parts ramp bounds in rotary dimensions (low: beta, high: alpha)."""
    d_half = config.head_dim / 2
    base = math.log(config.rope_theta)
    ctx = config.initial_context_length
    low = d_half * math.log(ctx / (config.rope_ntk_beta * 2 * math.pi)) / base
    high = d_half * math.log(ctx / (config.rope_ntk_alpha * 2 * math.pi)) / base
    return low, high
