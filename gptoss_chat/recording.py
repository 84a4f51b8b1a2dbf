"""Writes a ChatSession into the SessionStore as it runs: the persistence listener.

Attached to `ChatSession.listeners`, it sees every event of every turn whoever drives the
session (TUI, plain REPL, one-shot). Each `MessageAdded` is written at once, at the message's
position in the conversation, with the settings that produced it. The core only adds the
model's messages when its generate call ends, so the recorder also follows the stream itself:
each `ChannelStarted` opens an in-flight message, deltas extend it, and it is saved throttled
(`flush_interval`) as a `streaming` row; the next `ChannelStarted` marks the previous one
`streamed` (fully written). When the core's `MessageAdded` arrives, it overwrites the row.

Positions make retry and undo simple: a turn starts by dropping stored rows at or after the
current length of the conversation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openai_harmony import Message, Role

from gptoss_chat.conversation import ChatSession, Entry, message_text
from gptoss_chat.events import (
    ChannelStarted,
    CommentaryDelta,
    Event,
    MessageAdded,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    TurnDone,
    TurnStarted,
)
from gptoss_chat.store import MessageState, SavedSession, SessionStore

TITLE_LENGTH = 60
_DELTAS = (ReasoningDelta, TextDelta, CommentaryDelta, ToolCallDelta)


def settings_snapshot(session: ChatSession) -> dict[str, Any]:
    """What decides the model's next message, as stored beside each message."""
    settings = session.settings
    sampling = settings.sampling
    return {
        "model": getattr(session.generator, "name", ""),
        "reasoning": settings.reasoning,
        "developer_message": settings.developer_message,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": sampling.seed,
        "max_tokens": sampling.max_tokens,
        "tools": sorted(session.tools.enabled),
    }


@dataclass
class _InFlight:
    channel: str
    recipient: str | None
    text: str = ""
    closed: bool = False
    saved_length: int = -1

    def message(self) -> Message:
        message = Message.from_role_and_content(Role.ASSISTANT, self.text)
        message = message.with_channel(self.channel)
        return message.with_recipient(self.recipient) if self.recipient else message


class SessionRecorder:
    """The listener. The stored session is created with the first message, so an opened and
    abandoned chat leaves nothing behind."""

    def __init__(
        self,
        store: SessionStore,
        *,
        session_id: str | None = None,
        flush_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.flush_interval = flush_interval
        self._clock = clock
        self._base = 0
        self._inflight: list[_InFlight] = []
        self._last_flush = 0.0

    def __call__(self, session: ChatSession, event: Event) -> None:
        if isinstance(event, MessageAdded):
            self._message_added(session, event)
        elif isinstance(event, TurnStarted):
            self._base = len(session.entries)
            self._inflight = []
            if self.session_id is not None:
                self.store.truncate(self.session_id, self._base)
        elif isinstance(event, ChannelStarted):
            if self._inflight:
                self._inflight[-1].closed = True
                self._flush(session, len(self._inflight) - 1)
            self._inflight.append(_InFlight(event.channel, event.recipient))
        elif isinstance(event, _DELTAS) and self._inflight:
            self._inflight[-1].text += event.text
            if self._clock() - self._last_flush >= self.flush_interval:
                self._flush(session, len(self._inflight) - 1)
        elif isinstance(event, TurnDone):
            self._inflight = []
            self.sync(session)

    def sync(self, session: ChatSession) -> None:
        """Forget stored messages beyond the conversation (after /undo or a retry)."""
        if self.session_id is not None:
            self.store.truncate(self.session_id, len(session.entries))

    def resume(self, session: ChatSession, ref: str) -> SavedSession:
        """Replace the conversation of `session` by stored session `ref` ('last', an id or a
        prefix) and record into that one from now on (the TUI's sessions screen)."""
        saved = self.store.load(ref)
        session.clear()
        session.entries = entries_of(saved)
        self.session_id = saved.info.id
        self._inflight = []
        return saved

    def start_new(self) -> None:
        """After /clear: the next message opens a new stored session."""
        self.session_id = None
        self._inflight = []

    def _ensure_session(self, session: ChatSession) -> str:
        if self.session_id is None:
            model = getattr(session.generator, "name", "")
            self.session_id = self.store.create(model=model).id
        return self.session_id

    def _message_added(self, session: ChatSession, event: MessageAdded) -> None:
        session_id = self._ensure_session(session)
        position = len(session.entries) - 1
        state = MessageState.INTERRUPTED if event.interrupted else MessageState.COMPLETE
        self.store.put_message(
            session_id, position, event.message, state, settings_snapshot(session)
        )
        if event.message.author.role == Role.USER:
            title = " ".join(message_text(event.message).split())[:TITLE_LENGTH]
            self.store.set_title_if_empty(session_id, title)

    def _flush(self, session: ChatSession, index: int) -> None:
        inflight = self._inflight[index]
        self._last_flush = self._clock()
        unchanged = inflight.saved_length == len(inflight.text) and not inflight.closed
        if not inflight.text or unchanged:
            return
        inflight.saved_length = len(inflight.text)
        state = MessageState.STREAMED if inflight.closed else MessageState.STREAMING
        self.store.put_message(
            self._ensure_session(session),
            self._base + index,
            inflight.message(),
            state,
            settings_snapshot(session),
        )


def attach_store(
    session: ChatSession, store: SessionStore, *, session_id: str | None = None
) -> SessionRecorder:
    """Record `session` into `store` (a new stored session, or `session_id` continued)."""
    recorder = SessionRecorder(store, session_id=session_id)
    session.listeners.append(recorder)
    return recorder


def entries_of(saved: SavedSession) -> list[Entry]:
    return [Entry(stored.message, stored.interrupted) for stored in saved.messages]


def resume_session(session: ChatSession, store: SessionStore, ref: str) -> SessionRecorder:
    """Load stored session `ref` ('last', an id or a prefix) into `session` and keep recording
    into it. The conversation continues where it stopped; an interrupted answer stays marked."""
    recorder = SessionRecorder(store)
    recorder.resume(session, ref)
    session.listeners.append(recorder)
    return recorder
