"""The real `python -m gptoss_chat --backend replay … --python` in tmux, through a tool turn.

Drives the terminal as a person would (send-keys) and reads what is on screen (capture-pane):
startup, a first answer, then a turn where the model calls python, the approval modal, `y`,
and the final answer that used the tool's output.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gptoss_chat.demo import DEMO_REPLAY

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _missing_parts() -> list[str]:
    missing = [] if shutil.which("tmux") else ["tmux"]
    for module in ("gptoss_chat.encoding", "gptoss_chat.tools.python_tool"):
        if importlib.util.find_spec(module) is None:
            missing.append(module)
    return missing


class Pane:
    def __init__(self, name: str) -> None:
        self.name = name

    def text(self) -> str:
        result = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if needle in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never appeared; the screen was:\n{self.text()}")


@pytest.mark.skipif(bool(_missing_parts()), reason=f"needs {', '.join(_missing_parts())}")
def test_full_turn_with_tool_approval(tmp_path, harmony_encoding):
    # harmony_encoding fills the session's private GPTOSS_CHAT_CACHE_DIR (inherited below), so
    # the app finds the vocabulary there instead of rebuilding it.
    # A tmux server that is already running starts panes with its own environment, not ours:
    # everything the app needs travels in the command line.
    env = {
        "PYTHONPATH": str(ROOT),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "GPTOSS_CHAT_CACHE_DIR": os.environ["GPTOSS_CHAT_CACHE_DIR"],
    }
    for name in ("PATH", "HOME", "DOCKER_HOST"):
        if name in os.environ:
            env[name] = os.environ[name]
    # COLUMNS/LINES too: a shared tmux server started from a shell that exported them hands
    # them to every pane, and Textual then draws 80x24 in a 140x45 pane.
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    prefix = f"env -u NO_COLOR -u COLUMNS -u LINES {assignments}"
    name = f"gptoss-e2e-{uuid.uuid4().hex[:8]}"
    command = (
        f"{prefix} {sys.executable} -m gptoss_chat --backend replay {DEMO_REPLAY} --python "
        f"--workspace {tmp_path}; echo EXITED-$?; sleep 30"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "140", "-y", "45", command],
        check=True,
        cwd=tmp_path,
    )
    pane = Pane(name)
    try:
        pane.wait_for("replay (replay.json)")
        pane.send("How do I read a huge CSV in Python?", "Enter")
        screen = pane.wait_for("tok/s ·")  # the turn's summary line
        assert "Analysis" in screen and "Stream the file" in screen
        pane.send("What is the 20th Fibonacci number?", "Enter")
        screen = pane.wait_for("python wants to run")
        assert "fib.append(fib[-1] + fib[-2])" in screen
        pane.send("y")
        screen = pane.wait_for("10945", timeout=120)
        assert "⚙ python" in screen
        pane.send("C-q")
        assert "EXITED-0" in pane.wait_for("EXITED-")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)
