"""Tiny random checkpoints (both layouts, one seed) and transformers' outputs on them.

The checkpoints are written once per test session into a temporary folder, never into git.
transformers' `GptOssForCausalLM` reads the Hugging Face layout checkpoint on CPU, decoding the
MXFP4 experts to bf16/float32: it is the oracle the engine is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from gptoss_chat.model.config import TINY
from gptoss_chat.model.layout import Layout
from gptoss_chat.model.random_checkpoint import write_random_checkpoint

SEED = 1234
PROMPT = [200006, 17360, 200008, 3575, 553, 261, 10297, 29186, 13, 200007, 200006, 1428,
          200008, 13225, 11, 1495, 553, 481, 30, 200007, 200006, 173781, 31, 5]  # fmt: skip
"""24 ids (Harmony-like), three times the tiny sliding window of 8."""
CONTINUATION = 12


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """These models are far too small to gain from threads, and on a shared CPU torch's spinning
    worker threads make each tiny op 20x slower."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[Layout, Path]:
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    cpu = torch.device("cpu")
    return {
        layout: write_random_checkpoint(root / layout.value, TINY, layout, seed=SEED, device=cpu)
        for layout in Layout
    }


@dataclass
class Reference:
    """transformers' outputs on PROMPT: logits [T, V] float32 and a greedy continuation."""

    logits: torch.Tensor
    greedy: list[int]
    greedy_logits: torch.Tensor
    """Logits [CONTINUATION, V] that picked each greedy token (for near-tie analysis)."""


@pytest.fixture(scope="session")
def transformers_reference(tiny_checkpoints: dict[Layout, Path]) -> dict[torch.dtype, Reference]:
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    references = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = transformers.GptOssForCausalLM.from_pretrained(
            str(tiny_checkpoints[Layout.HF]), dtype=dtype
        )
        model.eval()
        ids = torch.tensor([PROMPT])
        with torch.no_grad():
            logits = model(ids).logits[0].float()
            out = model.generate(
                ids, max_new_tokens=CONTINUATION, do_sample=False, min_new_tokens=CONTINUATION,
                output_scores=True, return_dict_in_generate=True, pad_token_id=None,
                eos_token_id=None,
            )  # fmt: skip
        greedy = out.sequences[0, len(PROMPT) :].tolist()
        greedy_logits = torch.stack([s[0].float() for s in out.scores])
        references[dtype] = Reference(logits, greedy, greedy_logits)
        del model
    return references


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny with a 512-token vocabulary: for engine behaviour tests that need no real ids."""
    from dataclasses import replace

    config = replace(TINY, vocab_size=512)
    root = tmp_path_factory.mktemp("micro-checkpoint")
    return write_random_checkpoint(
        root, config, Layout.ORIGINAL, seed=SEED, device=torch.device("cpu")
    )
