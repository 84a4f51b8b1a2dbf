"""Where gptoss-chat keeps its files: every path in one place.

Defaults follow the platform's conventions (XDG on Linux) through platformdirs. Environment
variables move them, which tests and portable installs use:

- GPTOSS_CHAT_CONFIG_DIR: the folder of config.toml
- GPTOSS_CHAT_CONFIG: the config file itself (overrides the folder)
- GPTOSS_CHAT_DATA_DIR: sessions database and prompt history
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "gptoss-chat"


def config_dir() -> Path:
    override = os.environ.get("GPTOSS_CHAT_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def config_file() -> Path:
    override = os.environ.get("GPTOSS_CHAT_CONFIG")
    return Path(override) if override else config_dir() / "config.toml"


def data_dir() -> Path:
    override = os.environ.get("GPTOSS_CHAT_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def sessions_db() -> Path:
    return data_dir() / "sessions.sqlite3"


def history_file() -> Path:
    """Prompt history of the plain REPL (prompt_toolkit's FileHistory)."""
    return data_dir() / "plain_history"


def tui_history_file() -> Path:
    """Prompt history of the TUI (JSON lines, gptoss_chat.ui.prompt_history)."""
    return data_dir() / "prompt_history.jsonl"
