"""The recorder listener: what a running chat writes, when, and how resume reads it back."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from openai_harmony import Role

from gptoss_chat.conversation import message_text
from gptoss_chat.events import TextDelta, TurnDone
from gptoss_chat.recording import SessionRecorder, attach_store, resume_session
from gptoss_chat.store import MessageState, SessionStore
from tests.store.conftest import drain, make_chat

LONG = (
    "<|channel|>analysis<|message|>Think first.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>"
    + " ".join(f"word{i}" for i in range(200))
    + "<|return|>"
)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    with SessionStore(tmp_path / "s.sqlite3") as opened:
        yield opened


def rows(store: SessionStore) -> list[tuple[int, str, str]]:
    """(position, state, message json) straight from the file, as another process sees it."""
    db = sqlite3.connect(store.path)
    try:
        query = "SELECT position, state, message FROM messages ORDER BY position"
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_every_message_is_stored_with_its_settings(encoding, store) -> None:
    chat = make_chat(encoding)
    chat.settings.reasoning = "high"
    recorder = attach_store(chat, store)
    asyncio.run(drain(chat.send("hi there")))
    saved = store.load(recorder.session_id)
    assert [m.message for m in saved.messages] == chat.messages
    roles = [m.message.author.role for m in saved.messages]
    assert roles == [Role.USER, Role.ASSISTANT, Role.ASSISTANT]
    assert all(m.state is MessageState.COMPLETE for m in saved.messages)
    assert saved.messages[2].settings["reasoning"] == "high"
    assert saved.messages[2].settings["model"] == "replay"
    assert saved.info.title == "hi there"


def test_the_user_message_is_saved_before_the_model_answers(encoding, store) -> None:
    chat = make_chat(encoding)
    attach_store(chat, store)
    seen: list[list] = []

    async def run() -> None:
        async for event in chat.send("question"):
            if isinstance(event, TextDelta) and not seen:
                seen.append(rows(store))

    asyncio.run(run())
    assert [(p, s) for p, s, _ in seen[0][:1]] == [(0, "complete")]


def test_a_streaming_answer_is_saved_as_it_grows_and_marked_when_stopped(encoding, store) -> None:
    chat = make_chat(encoding, LONG, delay=0.002)
    recorder = SessionRecorder(store, flush_interval=0.0)
    chat.listeners.append(recorder)
    snapshots: list[list] = []

    async def run() -> None:
        deltas = 0
        async for event in chat.send("write a lot"):
            if isinstance(event, TextDelta):
                deltas += 1
                if deltas == 30:
                    snapshots.append(rows(store))
                    chat.cancel()

    asyncio.run(run())
    during = {position: (state, text) for position, state, text in snapshots[0]}
    assert during[1][0] == "streamed", "the analysis was finished when the final began"
    assert during[2][0] == "streaming" and "word" in during[2][1]
    saved = store.load(recorder.session_id)
    assert [m.state for m in saved.messages] == [
        MessageState.COMPLETE,
        MessageState.COMPLETE,
        MessageState.INTERRUPTED,
    ]
    assert message_text(saved.messages[2].message) == message_text(chat.messages[2])
    assert chat.entries[2].interrupted


def test_retry_replaces_the_old_answer(encoding, store) -> None:
    first = ANSWER_A = "<|channel|>final<|message|>first answer<|return|>"
    second = "<|channel|>final<|message|>second answer<|return|>"
    chat = make_chat(encoding, first, second)
    recorder = attach_store(chat, store)
    asyncio.run(drain(chat.send("q")))
    asyncio.run(drain(chat.retry()))
    texts = [message_text(m.message) for m in store.load(recorder.session_id).messages]
    assert texts == ["q", "second answer"]
    assert ANSWER_A not in texts


def test_undo_is_synced_and_clear_starts_a_new_session(encoding, store) -> None:
    chat = make_chat(encoding)
    recorder = attach_store(chat, store)
    asyncio.run(drain(chat.send("one")))
    asyncio.run(drain(chat.send("two")))
    first_id = recorder.session_id
    del chat.entries[3:]
    recorder.sync(chat)
    assert len(store.load(first_id).messages) == 3
    chat.clear()
    recorder.start_new()
    asyncio.run(drain(chat.send("fresh")))
    assert recorder.session_id != first_id
    assert [i.title for i in store.list_sessions()] == ["fresh", "one"]


def test_resume_rebuilds_the_conversation_and_keeps_recording(encoding, store) -> None:
    chat = make_chat(encoding, LONG, delay=0.001)
    recorder = attach_store(chat, store)

    async def interrupted_turn() -> None:
        async for event in chat.send("tell me everything"):
            if isinstance(event, TextDelta):
                chat.cancel()

    asyncio.run(interrupted_turn())
    resumed = make_chat(encoding)
    resume_session(resumed, store, "last")
    assert resumed.messages == chat.messages
    assert [e.interrupted for e in resumed.entries] == [False, False, True]
    events = asyncio.run(drain(resumed.send("go on")))
    assert isinstance(events[-1], TurnDone)
    prompt = encoding.decode(resumed.generator.prompts[0])
    assert "tell me everything" in prompt and "go on" in prompt
    saved = store.load(recorder.session_id)
    assert [message_text(m.message) for m in saved.messages][3] == "go on"
    assert [m.interrupted for m in saved.messages] == [False, False, True, False, False, False]


def test_a_running_chat_switches_to_another_stored_session(encoding, store) -> None:
    chat = make_chat(encoding)
    recorder = attach_store(chat, store)
    asyncio.run(drain(chat.send("first chat")))
    first = recorder.session_id
    recorder.start_new()
    chat.clear()
    asyncio.run(drain(chat.send("second chat")))
    saved = recorder.resume(chat, first)
    assert saved.info.id == first == recorder.session_id
    assert message_text(chat.messages[0]) == "first chat" and len(chat.entries) == 3
    asyncio.run(drain(chat.send("back again")))
    assert len(store.load(first).messages) == 6
    assert len(store.load("last").messages) == 6, "the resumed session is now the latest"


def test_save_sessions_false_records_nothing(encoding, user_dirs) -> None:
    from gptoss_chat.config import defaults
    from gptoss_chat.factory import LaunchOptions, attach_persistence

    config = defaults()
    config.set("save_sessions", False, "test")
    chat = make_chat(encoding)
    assert attach_persistence(chat, LaunchOptions.from_config(config)) is None
    assert chat.listeners == []
    assert not (user_dirs["data"] / "sessions.sqlite3").exists()
