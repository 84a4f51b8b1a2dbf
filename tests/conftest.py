"""Fixtures shared by every test file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding


@pytest.fixture(scope="session")
def harmony_encoding(tmp_path_factory: pytest.TempPathFactory) -> HarmonyEncoding:
    """The gpt-oss Harmony encoding, loaded offline through our own loader.

    The vocabulary cache lives in a fresh temporary folder per test session, so tests never read
    or write the user's cache (the first load rebuilds it from quicktok, about a second).
    """
    from gptoss_chat.encoding import load_encoding

    return load_encoding(cache_dir=tmp_path_factory.mktemp("gptoss-chat-cache"))
