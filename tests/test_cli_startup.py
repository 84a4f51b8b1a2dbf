"""`gptoss-chat --help` must stay light: no torch, no textual (timing: benchmarks/cli_help.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKTREE = Path(__file__).resolve().parents[1]


def imported_modules(command: list[str]) -> tuple[set[str], str]:
    """Modules a fresh interpreter imports running `command`, from -X importtime; and stdout."""
    env = {**os.environ, "PYTHONPATH": str(WORKTREE), "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return modules, done.stdout


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_help_imports_neither_torch_nor_textual(argv: list[str]) -> None:
    modules, stdout = imported_modules([sys.executable, "-m", "gptoss_chat", *argv])
    assert stdout.startswith("usage: gptoss-chat")
    assert "gptoss_chat.cli" in modules  # the report covers our own imports
    assert not top_level(modules) & {"torch", "textual"}


def test_import_report_would_catch_textual() -> None:
    """The check above can fail: the same report names textual when it is imported."""
    modules, _ = imported_modules([sys.executable, "-c", "import textual.app"])
    assert "textual" in top_level(modules)
