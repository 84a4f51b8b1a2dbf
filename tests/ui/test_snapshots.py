"""SVG snapshots of the main screens (review diffs like code: `pytest --snapshot-update`).

Deterministic by construction: a fixed conversation date, replayed tokens, a generator held at
a fixed token (GatedReplay) for the mid-stream shot, no cursor blink, and no timing figures on
screen (the error turn fails before its first token).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import pytest

from gptoss_chat.generator import CancelToken, GeneratorError, ReplayGenerator, SamplingOptions
from gptoss_chat.ui.screens.approval_modal import ApprovalModal
from gptoss_chat.ui.screens.patch_review_modal import PatchReviewModal
from gptoss_chat.ui.widgets.prompt_input import PromptInput
from gptoss_chat.ui.widgets.turn_view import TurnView
from tests.ui.conftest import (
    AFTER_TOOL,
    PATCH_CALL,
    PYTHON_CALL,
    EchoPythonTool,
    FixedPatchTool,
    GatedReplay,
    build_session,
    submit,
    wait_until,
)

SIZE = (120, 36)
STREAMING = (
    "<|channel|>analysis<|message|>The user wants a quick way to reverse a string in Python. "
    "Slicing with a negative step is the idiom; reversed() with join also works but is "
    "slower for short strings.\n\nI will show the slice first, then mention the other way."
    "<|end|><|start|>assistant<|channel|>final<|message|>Use slicing with a step of -1:\n\n"
    "```python\ntext = 'stressed'\nprint(text[::-1])  # desserts\n```\n\n"
    "This works for any sequence, including lists and tuples. If you need an iterator "
    "instead of a new string, use reversed(text) and join it.<|return|>"
)


class FailAtStart(ReplayGenerator):
    def generate(
        self,
        tokens: Sequence[int],
        *,
        stop_tokens: Collection[int],
        sampling: SamplingOptions,
        cancel: CancelToken | None = None,
    ) -> Iterator[int]:
        raise GeneratorError(
            "the conversation needs 140000 tokens but the context holds 131072; "
            "start a new conversation (/clear) or raise --context"
        )


async def settle(pilot) -> None:
    pilot.app.query_one(PromptInput).cursor_blink = False
    await pilot.pause(0.3)
    await pilot.wait_for_scheduled_animations()


@pytest.fixture
def snapshot_app(make_test_app, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    return make_test_app


def test_empty_screen(snap_compare, snapshot_app, encoding):
    app = snapshot_app(build_session(encoding, [STREAMING], tools=[EchoPythonTool()]))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_mid_stream_with_analysis(snap_compare, snapshot_app, encoding):
    script = encoding.encode(STREAMING, allowed_special="all")
    cut = len(encoding.encode(STREAMING.split("slicing with a step")[0], allowed_special="all"))
    generator = GatedReplay([script], pause_after=cut + 3)
    app = snapshot_app(build_session(encoding, [], generator=generator))

    async def run_before(pilot) -> None:
        await submit(pilot, "How do I reverse a string in Python?")
        await wait_until(pilot, generator.paused.is_set)
        turn = pilot.app.query_one(TurnView)
        await wait_until(pilot, lambda: "Use slicing" in turn.answer_text)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_tool_approval(snap_compare, snapshot_app, encoding):
    session = build_session(encoding, [PYTHON_CALL, AFTER_TOOL], tools=[EchoPythonTool()])
    app = snapshot_app(session)

    async def run_before(pilot) -> None:
        await submit(pilot, "What is six times seven?")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ApprovalModal))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_patch_review(snap_compare, snapshot_app, encoding):
    session = build_session(encoding, [PATCH_CALL, AFTER_TOOL], tools=[FixedPatchTool()])
    app = snapshot_app(session)

    async def run_before(pilot) -> None:
        await submit(pilot, "Make it greet the world.")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, PatchReviewModal))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_error(snap_compare, snapshot_app, encoding):
    session = build_session(encoding, [], generator=FailAtStart([[1]], name="replay (test)"))
    app = snapshot_app(session)

    async def run_before(pilot) -> None:
        await submit(pilot, "Summarise this very long document.")
        await wait_until(pilot, lambda: bool(pilot.app.query(".inline-error")))
        await pilot.app.workers.wait_for_complete()
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sessions_screen(snap_compare, snapshot_app, encoding, monkeypatch):
    import sqlite3
    import time

    from openai_harmony import Message, Role

    from gptoss_chat import locations
    from gptoss_chat.store import MessageState, SessionStore
    from gptoss_chat.ui.screens.sessions_screen import SessionsScreen

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    rows = [
        ("a1b2c3d4e5f6", "Reverse a string in Python", "gpt-oss-20b", 1751100000.0, 4),
        ("0f9e8d7c6b5a", "How caches evict pages", "gpt-oss-120b (vllm)", 1751000000.0, 7),
    ]
    with SessionStore.open_default() as store:
        for session_id, title, model, updated, count in rows:
            created = store.create(title=title, model=model).id
            for position in range(count):
                message = Message.from_role_and_content(Role.USER, f"message {position}")
                store.put_message(created, position, message, MessageState.COMPLETE, {})
            # Fixed ids and times, so the picture does not change from run to run.
            db = sqlite3.connect(locations.sessions_db(), isolation_level=None)
            db.execute(
                "UPDATE messages SET session_id = ? WHERE session_id = ?", (session_id, created)
            )
            db.execute(
                "UPDATE sessions SET id = ?, created_at = ?, updated_at = ? WHERE id = ?",
                (session_id, updated, updated, created),
            )
            db.close()
    app = snapshot_app(build_session(encoding, [STREAMING]))

    async def run_before(pilot) -> None:
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
        await settle(pilot)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        monkeypatch.undo()
        time.tzset()
