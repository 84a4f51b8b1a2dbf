"""Fixtures for the TUI: real ChatSessions on a ReplayGenerator, small real tools, an app."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import pytest
from openai_harmony import HarmonyEncoding, ToolDescription, ToolNamespaceConfig

from gptoss_chat.conversation import ChatSession
from gptoss_chat.factory import LaunchOptions
from gptoss_chat.generator import CancelToken, ReplayGenerator, SamplingOptions
from gptoss_chat.settings import ChatSettings
from gptoss_chat.tools.base import Proposal, Tool, ToolCall, ToolRegistry, ToolResult, tool_message
from gptoss_chat.ui.app import GptossChatApp, make_app

ANSWER = (
    "<|channel|>analysis<|message|>The user greets me. I should greet back and offer help."
    "<|end|><|start|>assistant<|channel|>final<|message|>Hello! Here is some code:\n\n"
    "```python\nprint('hi')\n```\n\nAnything else?<|return|>"
)
PYTHON_CALL = (
    "<|channel|>analysis<|message|>I will compute it with python.<|end|>"
    "<|start|>assistant<|channel|>analysis to=python code<|message|>print(6 * 7)<|call|>"
)
AFTER_TOOL = (
    "<|channel|>analysis<|message|>The tool said 42.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>The answer is **42**.<|return|>"
)
PATCH = """\
diff --git a/src/app.py b/src/app.py
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,4 @@
 import os
-print("hello")
+print("hello, world")
+print(os.getcwd())
 # end
diff --git a/README.md b/README.md
--- /dev/null
+++ b/README.md
@@ -0,0 +1,2 @@
+# Demo
+A new file.
"""
PATCH_CALL = (
    "<|channel|>analysis<|message|>Edit the files.<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.apply_patch<|message|>"
    "*** Begin Patch\n*** End Patch<|call|>"
)


@pytest.fixture(autouse=True)
def _private_user_dirs(user_dirs: dict[str, Path]) -> dict[str, Path]:
    """Every UI test gets its own config and data folders: an app that loads a model saves
    its chat, and that must never land in the real user's sessions database."""
    return user_dirs


@pytest.fixture(scope="session")
def encoding(harmony_encoding: HarmonyEncoding) -> HarmonyEncoding:
    """The shared offline encoding (tests/conftest.py), under the name these tests use."""
    return harmony_encoding


class EchoPythonTool(Tool):
    """A python tool that does not execute anything: it reports the code it was given.

    Real enough for the UI: it goes through propose → approval → run like any tool.
    """

    name = "python"

    def __init__(self) -> None:
        self.runs: list[str] = []

    def system_config(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig.python()

    def propose(self, call: ToolCall) -> Proposal:
        title = "Run Python code"
        return Proposal(self.name, call, title, call.arguments, "code", language="python")

    def run(self, proposal: Proposal) -> ToolResult:
        self.runs.append(proposal.preview)
        return ToolResult([tool_message("python", "42\n")], summary="exit 0, 1 line")


class FixedPatchTool(Tool):
    """An apply_patch stand-in whose proposal is a fixed two-file diff; records runs and undos."""

    name = "apply_patch"

    def __init__(self) -> None:
        self.runs = 0
        self.undone = 0

    @property
    def recipient_prefix(self) -> str:
        return "functions.apply_patch"

    def function_descriptions(self) -> list[ToolDescription]:
        schema = {"type": "string", "description": "the patch"}
        return [ToolDescription.new("apply_patch", "Edit files.", parameters=schema)]

    def propose(self, call: ToolCall) -> Proposal:
        return Proposal(
            self.name, call, "Apply patch: 2 files (src/app.py, README.md)", PATCH, "diff"
        )

    def run(self, proposal: Proposal) -> ToolResult:
        self.runs += 1
        return ToolResult([tool_message(self.name, "Done!")], summary="Done! 2 files changed")

    def undo(self) -> str:
        self.undone += 1
        return "Reverted the last patch:\nM src/app.py"


class GatedReplay(ReplayGenerator):
    """Stops after `pause_after` tokens of a call until `gate` is set (a model mid-answer)."""

    def __init__(self, scripts: list[list[int]], pause_after: int) -> None:
        super().__init__(scripts)
        self.pause_after = pause_after
        self.gate = threading.Event()
        self.paused = threading.Event()

    def generate(
        self,
        tokens: Sequence[int],
        *,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        inner = super().generate(tokens, stop_tokens=stop_tokens, sampling=sampling, cancel=cancel)

        def gated() -> Iterator[int]:
            for index, token in enumerate(inner):
                if index == self.pause_after:
                    self.paused.set()
                    while not self.gate.wait(0.01):
                        if cancel is not None and cancel.cancelled:
                            break  # the replay sees the cancel on its next token
                yield token

        return gated()


def build_session(
    encoding: HarmonyEncoding,
    completions: list[str],
    *,
    tools: Sequence[Tool] = (),
    generator: ReplayGenerator | None = None,
    settings: ChatSettings | None = None,
) -> ChatSession:
    registry = ToolRegistry()
    for tool in tools:
        registry.add(tool)
    scripts = [encoding.encode(c, allowed_special="all") for c in completions]
    return ChatSession(
        encoding=encoding,
        generator=generator or ReplayGenerator(scripts, name="replay (test)"),
        tools=registry,
        settings=settings or ChatSettings(),
        today=dt.date(2025, 6, 28),
    )


@pytest.fixture
def make_test_app(tmp_path: Path) -> Callable[..., GptossChatApp]:
    """An app around `session`, with options sharing the session's settings."""

    def factory(session: ChatSession | None = None, **kwargs) -> GptossChatApp:
        settings = session.settings if session is not None else ChatSettings()
        theme = kwargs.pop("theme", None)
        options = LaunchOptions(settings=settings, workspace=tmp_path, theme=theme)
        history = kwargs.pop("history_path", tmp_path / "history.jsonl")
        return make_app(options, session=session, history_path=history, **kwargs)

    return factory


async def type_text(pilot, text: str) -> None:
    """Type into the focused prompt the way a user would (one key per character)."""
    keys = ["space" if ch == " " else ch for ch in text]
    await pilot.press(*keys)


async def wait_until(pilot, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` between frames; the turn runs in a worker and a thread, so events
    land at times no single pause can promise."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.02)


async def submit(pilot, text: str) -> None:
    """Put `text` in the prompt and press Enter, as a paste followed by Enter would."""
    from gptoss_chat.ui.widgets.prompt_input import PromptInput

    prompt = pilot.app.query_one(PromptInput)
    prompt.focus()
    prompt.load_text(text)
    await pilot.press("enter")


async def finish_turn(pilot) -> None:
    """Wait until the turn worker is done and the screen has caught up."""
    await wait_until(pilot, lambda: not pilot.app.chat_screen.busy)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
