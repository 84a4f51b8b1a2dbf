"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Config and data folders of a fresh user, for this test only (also seen by children)."""
    dirs = {"config": tmp_path / "config", "data": tmp_path / "data"}
    monkeypatch.setenv("GPTOSS_CHAT_CONFIG_DIR", str(dirs["config"]))
    monkeypatch.setenv("GPTOSS_CHAT_DATA_DIR", str(dirs["data"]))
    monkeypatch.delenv("GPTOSS_CHAT_CONFIG", raising=False)
    return dirs
