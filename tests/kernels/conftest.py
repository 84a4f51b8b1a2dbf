"""Kernel tests run Triton's interpreter on the CPU (tiny shapes) and the real compiler on a GPU.

TRITON_INTERPRET must be set before triton is first imported, so this sets it at collection time
when no CUDA device is present. Tests marked `gpu` compare at full gpt-oss shapes and are
skipped without CUDA.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
