"""Config parsing of both layouts' config.json, presets, and context sizing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from gptoss_chat.model.config import (
    GPT_OSS_20B,
    GPT_OSS_120B,
    PRESETS,
    ConfigError,
    ModelConfig,
    yarn_bounds,
)
from gptoss_chat.model.generator import choose_context
from gptoss_chat.model.kv_cache import cache_bytes

# The figures of openai/gpt-oss-20b's two config.json files (original/ and the HF layout).
ORIGINAL_20B = {
    "num_hidden_layers": 24, "num_experts": 32, "experts_per_token": 4, "vocab_size": 201088,
    "hidden_size": 2880, "intermediate_size": 2880, "swiglu_limit": 7.0, "head_dim": 64,
    "num_attention_heads": 64, "num_key_value_heads": 8, "sliding_window": 128,
    "initial_context_length": 4096, "rope_theta": 150000, "rope_scaling_factor": 32.0,
    "rope_ntk_alpha": 1, "rope_ntk_beta": 32,
}  # fmt: skip
HF_20B = {
    "architectures": ["GptOssForCausalLM"], "attention_bias": True, "eos_token_id": 200002,
    "experts_per_token": 4, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2880,
    "initial_context_length": 4096, "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
    "max_position_embeddings": 131072, "model_type": "gpt_oss", "num_attention_heads": 64,
    "num_experts_per_tok": 4, "num_hidden_layers": 24, "num_key_value_heads": 8,
    "num_local_experts": 32, "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                     "original_max_position_embeddings": 4096, "rope_type": "yarn",
                     "truncate": False},
    "rope_theta": 150000, "sliding_window": 128, "swiglu_limit": 7.0, "vocab_size": 201088,
    "quantization_config": {"quant_method": "mxfp4"},
}  # fmt: skip


def test_released_configs_parse_to_the_presets() -> None:
    assert ModelConfig.from_json(ORIGINAL_20B) == GPT_OSS_20B
    assert ModelConfig.from_hf_json(HF_20B) == GPT_OSS_20B
    assert ModelConfig.from_hf_json(GPT_OSS_120B.to_hf_json()) == GPT_OSS_120B
    assert GPT_OSS_20B.max_context_length == 131072


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_round_trip(name: str) -> None:
    config = PRESETS[name]
    config.validate()
    assert ModelConfig.from_json(config.to_json()) == config
    assert ModelConfig.from_hf_json(config.to_hf_json()) == config
    low, high = yarn_bounds(config)
    assert 0 < low < high < config.head_dim / 2 - 1  # what YaRN's ramp needs


def test_hf_layer_types_must_alternate() -> None:
    data = {**HF_20B, "layer_types": ["full_attention"] * 24}
    with pytest.raises(ConfigError, match="alternate sliding/full"):
        ModelConfig.from_hf_json(data)


def test_hf_config_missing_key() -> None:
    data = {k: v for k, v in HF_20B.items() if k != "num_local_experts"}
    with pytest.raises(ConfigError, match="lacks num_local_experts"):
        ModelConfig.from_hf_json(data)


def test_context_shrinks_to_what_fits() -> None:
    cpu = torch.device("cpu")
    assert choose_context(GPT_OSS_20B, 8192, cpu) == (8192, "")
    # 64 KV heads over 36 layers would need ~300 GB at 131072 tokens: more than this machine.
    huge = replace(GPT_OSS_120B, num_key_value_heads=64)
    context, note = choose_context(huge, None, cpu)
    assert context < huge.max_context_length and context % 1024 == 0
    assert "context limited to" in note
    assert cache_bytes(huge, context) < cache_bytes(huge, huge.max_context_length)
    # a smaller workspace (the Triton table's on a GPU) leaves more room for the cache
    roomy, _ = choose_context(huge, None, cpu, workspace=0)
    tight, _ = choose_context(huge, None, cpu, workspace=16 * 1024**3)
    assert roomy > tight


def test_embedding_stays_on_a_gpu_only_when_weights_and_full_context_fit(tmp_path) -> None:
    from gptoss_chat.model.config import GPT_OSS_20B
    from gptoss_chat.model.generator import TRITON_WORKSPACE_BYTES, embedding_fits_on_device
    from gptoss_chat.model.layout import Layout
    from gptoss_chat.model.weights import CheckpointInfo

    shard = tmp_path / "model.safetensors"
    shard.write_bytes(b"\0" * 4096)  # stands for the checkpoint's 13.8 GB
    info = CheckpointInfo(Layout.ORIGINAL, tmp_path, GPT_OSS_20B, (shard,))
    needed = 4096 + cache_bytes(GPT_OSS_20B, GPT_OSS_20B.max_context_length)
    assert embedding_fits_on_device(info, needed + TRITON_WORKSPACE_BYTES)
    assert not embedding_fits_on_device(info, needed + TRITON_WORKSPACE_BYTES - 1)


def test_decoding_aids_take_gpu_memory_only_after_the_context(monkeypatch) -> None:
    """The screen and the compact copies (`aid_fits`): never with the table on the host, and
    only when the free memory holds them beside the KV cache of the context and the workspace;
    a CPU table builds whatever it likes (its hooks return nothing)."""
    from gptoss_chat.model import generator
    from gptoss_chat.model.config import GPT_OSS_20B

    cuda = torch.device("cuda")
    cache = cache_bytes(GPT_OSS_20B, 8192) + generator.TRITON_WORKSPACE_BYTES
    compact = generator.compact_bytes(GPT_OSS_20B)
    assert 1.8e9 < compact < 1.9e9  # 12 bits a weight of the projections and the unembedding
    monkeypatch.setattr(generator, "free_memory", lambda device: cache + compact)
    assert generator.compact_fits(GPT_OSS_20B, cuda, False, 8192)
    assert not generator.compact_fits(GPT_OSS_20B, cuda, True, 8192)  # the 16 GB-card setup
    assert not generator.compact_fits(GPT_OSS_20B, cuda, False, 16384)  # the context comes first
    assert generator.screen_fits(GPT_OSS_20B, cuda, False, 8192)  # the screen is smaller
    assert generator.compact_fits(GPT_OSS_20B, torch.device("cpu"), True, None)
