"""Fixtures for the apply_patch tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def harmony_encoding():
    """The real gpt-oss Harmony encoding, built offline (see tests/_harmony_vocab.py)."""
    from tests._harmony_vocab import load_encoding

    return load_encoding()
