"""Fixtures shared by every test file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point GPTOSS_CHAT_CACHE_DIR at a fresh folder for the whole session.

    Tests that go through the app's own door (the CLI, the launcher) load the encoding without
    a cache argument; this keeps them, too, away from the user's real cache.
    """
    path = tmp_path_factory.mktemp("gptoss-chat-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("GPTOSS_CHAT_CACHE_DIR", str(path))
    yield path
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def private_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Config and data folders of a made-up user for the whole session (children see them too):
    no test reads the real user's config or writes into their sessions database."""
    root = tmp_path_factory.mktemp("gptoss-chat-user")
    patch = pytest.MonkeyPatch()
    patch.setenv("GPTOSS_CHAT_CONFIG_DIR", str(root / "config"))
    patch.setenv("GPTOSS_CHAT_DATA_DIR", str(root / "data"))
    patch.delenv("GPTOSS_CHAT_CONFIG", raising=False)
    yield root
    patch.undo()


@pytest.fixture(scope="session")
def harmony_encoding(private_cache_dir: Path) -> HarmonyEncoding:
    """The gpt-oss Harmony encoding, loaded offline through our own loader.

    The first load in a session rebuilds the vocabulary from quicktok into the session's
    private cache (about a second); later loads in the same session, by any test, reuse it.
    """
    from gptoss_chat.encoding import load_encoding

    return load_encoding(cache_dir=private_cache_dir)


@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Config and data folders of a fresh user, for this test only (also seen by children)."""
    dirs = {"config": tmp_path / "config", "data": tmp_path / "data"}
    monkeypatch.setenv("GPTOSS_CHAT_CONFIG_DIR", str(dirs["config"]))
    monkeypatch.setenv("GPTOSS_CHAT_DATA_DIR", str(dirs["data"]))
    monkeypatch.delenv("GPTOSS_CHAT_CONFIG", raising=False)
    return dirs
