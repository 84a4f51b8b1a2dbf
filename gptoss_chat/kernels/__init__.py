"""Triton kernels, each beside a plain-torch reference of the same signature.

`build_ops` is the hook `gptoss_chat.model.ops.select_ops` looks for: it returns the torch table
with the entries these kernels implement replaced. Every replaced entry is graph-safe at T == 1
(no host sync, static launch shapes), so the generator may capture decode as a CUDA graph.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from gptoss_chat.model.ops import Ops


def build_ops(base: Ops, device: torch.device) -> Ops:
    # Imported here so that importing the package never compiles or touches a GPU.
    from gptoss_chat.kernels.attention_decode import attention_decode
    from gptoss_chat.kernels.attention_prefill import attention_prefill
    from gptoss_chat.kernels.gemv import linear, unembedding
    from gptoss_chat.kernels.moe import moe
    from gptoss_chat.kernels.rms_norm import rms_norm
    from gptoss_chat.kernels.rope_cache import rope_cache

    del device  # one table for every CUDA device
    return replace(
        base,
        name="triton",
        rms_norm=rms_norm,
        attention_prefill=attention_prefill,
        attention_decode=attention_decode,
        moe=moe,
        unembedding=unembedding,
        linear=linear,
        rope_cache=rope_cache,
        graph_safe_decode=True,
    )
