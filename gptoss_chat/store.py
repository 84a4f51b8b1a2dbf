"""Saved chat sessions in SQLite: every message, with the settings that produced it.

One database file (WAL journal) holds all sessions. A message row is written the moment the
message is complete; an answer still streaming is written too, throttled, in a row marked
`streaming`, so a crash or kill -9 loses at most the last fraction of a second of it. Loading
a session turns such leftovers into what they were: a message the model had already finished
(`streamed`) becomes complete, the one it was writing becomes interrupted.

The store knows Harmony messages (stored as Harmony JSON) but nothing of the UI. Writers are
`gptoss_chat.recording.SessionRecorder` (during a chat); readers are `gptoss-chat sessions`,
`--resume` and the TUI's sessions screen.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from openai_harmony import Message

from gptoss_chat import locations

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    message TEXT NOT NULL,
    state TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, position)
);
"""


class MessageState(StrEnum):
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    """Cut short: the user stopped it, an error ended it, or the process died writing it."""
    STREAMING = "streaming"
    """Still being written when last saved; becomes INTERRUPTED when the session is loaded."""
    STREAMED = "streamed"
    """Fully written by the model but not yet confirmed by the core; becomes COMPLETE."""


class StoreError(Exception):
    """The store cannot do what was asked; the message says why."""


class SessionNotFound(StoreError, LookupError):
    pass


@dataclass(frozen=True)
class SessionInfo:
    id: str
    title: str
    model: str
    created_at: float
    """Seconds since the epoch."""
    updated_at: float
    message_count: int = 0

    @property
    def display_title(self) -> str:
        return self.title or "(untitled)"


@dataclass(frozen=True)
class StoredMessage:
    position: int
    message: Message
    state: MessageState
    settings: dict[str, Any]
    """What produced it: reasoning, sampling, tools, model (see recording.settings_snapshot)."""
    created_at: float

    @property
    def interrupted(self) -> bool:
        return self.state is not MessageState.COMPLETE


@dataclass
class SavedSession:
    info: SessionInfo
    messages: list[StoredMessage] = field(default_factory=list)


class SessionStore:
    """All saved sessions. Safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL keeps every commit across a killed process; only power loss may drop the
            # last ones, and it is much cheaper than FULL for a write per streamed chunk.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the sessions database {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    @classmethod
    def open_default(cls) -> SessionStore:
        """The user's sessions database (GPTOSS_CHAT_DATA_DIR moves it)."""
        return cls(locations.sessions_db())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sessions ---------------------------------------------------------------------------

    def create(self, *, title: str = "", model: str = "") -> SessionInfo:
        now = time.time()
        with self._lock:
            while True:
                session_id = secrets.token_hex(4)
                try:
                    self._db.execute(
                        "INSERT INTO sessions (id, title, model, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (session_id, title, model, now, now),
                    )
                    break
                except sqlite3.IntegrityError:  # the same 8 hex digits twice: draw again
                    continue
        return SessionInfo(session_id, title, model, now, now, 0)

    def list_sessions(self, limit: int | None = None) -> list[SessionInfo]:
        """Sessions, most recently used first."""
        query = _INFO_QUERY + " GROUP BY s.id ORDER BY s.updated_at DESC, s.rowid DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (limit,)
        with self._lock:
            return [SessionInfo(*row) for row in self._db.execute(query, params)]

    def find(self, ref: str) -> SessionInfo:
        """A session by id, unique id prefix, or 'last' (the most recently used)."""
        ref = ref.strip()
        if ref in ("", "last"):
            found = self.list_sessions(limit=1)
            if not found:
                raise SessionNotFound("there are no saved sessions yet")
            return found[0]
        with self._lock:
            rows = self._db.execute(
                _INFO_QUERY + " WHERE s.id LIKE ? GROUP BY s.id ORDER BY s.updated_at DESC",
                (ref.replace("%", "").replace("_", "") + "%",),
            ).fetchall()
        exact = [row for row in rows if row[0] == ref]
        if exact or len(rows) == 1:
            return SessionInfo(*(exact or rows)[0])
        if not rows:
            raise SessionNotFound(f"no saved session {ref!r} (see `gptoss-chat sessions list`)")
        ids = ", ".join(row[0] for row in rows[:5])
        raise SessionNotFound(f"{ref!r} matches several sessions ({ids}): give more of the id")

    def rename(self, ref: str, title: str) -> SessionInfo:
        info = self.find(ref)
        with self._lock:
            self._db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, info.id))
        return self.find(info.id)

    def delete(self, ref: str) -> SessionInfo:
        info = self.find(ref)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (info.id,))
        return info

    def load(self, ref: str) -> SavedSession:
        """A session with its messages in order; leftovers of a crash are settled first."""
        info = self.find(ref)
        self.recover(info.id)
        with self._lock:
            rows = self._db.execute(
                "SELECT position, message, state, settings, created_at FROM messages "
                "WHERE session_id = ? ORDER BY position",
                (info.id,),
            ).fetchall()
        messages = []
        for position, text, state, settings, created_at in rows:
            try:
                message = Message.from_dict(json.loads(text))
            except (ValueError, TypeError, KeyError) as exc:
                raise StoreError(
                    f"session {info.id}: message {position} is damaged ({exc})"
                ) from exc
            messages.append(
                StoredMessage(
                    position, message, MessageState(state), json.loads(settings), created_at
                )
            )
        return SavedSession(info, messages)

    # -- messages (the recorder's side) --------------------------------------------------------

    def put_message(
        self,
        session_id: str,
        position: int,
        message: Message,
        state: MessageState = MessageState.COMPLETE,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Write (or overwrite) the message at `position` of a session, committed at once."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO messages "
                    "(session_id, position, message, state, settings, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        position,
                        message.to_json(),
                        MessageState(state).value,
                        json.dumps(settings or {}, sort_keys=True),
                        now,
                    ),
                )
                self._db.execute(
                    "UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_title_if_empty(self, session_id: str, title: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET title = ? WHERE id = ? AND title = ''", (title, session_id)
            )

    def truncate(self, session_id: str, position: int) -> None:
        """Drop the messages at `position` and after (retry, undo)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM messages WHERE session_id = ? AND position >= ?",
                (session_id, position),
            )

    def recover(self, session_id: str) -> int:
        """Settle rows left by a process that died mid-answer; returns how many changed."""
        with self._lock:
            self._db.execute("BEGIN")
            changed = self._db.execute(
                "UPDATE messages SET state = ? WHERE session_id = ? AND state = ?",
                (MessageState.COMPLETE.value, session_id, MessageState.STREAMED.value),
            ).rowcount
            changed += self._db.execute(
                "UPDATE messages SET state = ? WHERE session_id = ? AND state = ?",
                (MessageState.INTERRUPTED.value, session_id, MessageState.STREAMING.value),
            ).rowcount
            self._db.execute("COMMIT")
        return changed


_INFO_QUERY = (
    "SELECT s.id, s.title, s.model, s.created_at, s.updated_at, COUNT(m.position) "
    "FROM sessions s LEFT JOIN messages m ON m.session_id = s.id"
)
