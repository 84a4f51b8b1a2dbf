"""The SQLite store: sessions, messages, states, lookup by id or prefix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from openai_harmony import Message, Role

from gptoss_chat.store import MessageState, SessionNotFound, SessionStore, StoreError


def user(text: str) -> Message:
    return Message.from_role_and_content(Role.USER, text)


def final(text: str) -> Message:
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel("final")


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    with SessionStore(tmp_path / "s.sqlite3") as opened:
        yield opened


def test_database_uses_wal(store: SessionStore) -> None:
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_messages_round_trip_with_settings_and_order(store: SessionStore) -> None:
    info = store.create(model="replay")
    store.put_message(info.id, 1, final("hi there"), settings={"reasoning": "high"})
    store.put_message(info.id, 0, user("hello"))
    saved = store.load(info.id)
    assert [m.position for m in saved.messages] == [0, 1]
    assert saved.messages[0].message == user("hello")
    assert saved.messages[1].message == final("hi there")
    assert saved.messages[1].settings == {"reasoning": "high"}
    assert saved.info.message_count == 2
    assert saved.info.model == "replay"


def test_put_overwrites_and_truncate_drops_the_tail(store: SessionStore) -> None:
    info = store.create()
    for position, text in enumerate(["a", "b", "c"]):
        store.put_message(info.id, position, user(text))
    store.put_message(info.id, 1, user("B"))
    store.truncate(info.id, 2)
    texts = [m.message.content[0].text for m in store.load(info.id).messages]
    assert texts == ["a", "B"]


def test_loading_settles_what_a_dead_process_left(store: SessionStore) -> None:
    info = store.create()
    store.put_message(info.id, 0, user("q"))
    store.put_message(info.id, 1, final("thought"), MessageState.STREAMED)
    store.put_message(info.id, 2, final("half an ans"), MessageState.STREAMING)
    states = [m.state for m in store.load(info.id).messages]
    assert states == [MessageState.COMPLETE, MessageState.COMPLETE, MessageState.INTERRUPTED]
    assert [m.interrupted for m in store.load(info.id).messages] == [False, False, True]


def test_find_by_id_prefix_and_last(store: SessionStore) -> None:
    first = store.create(title="first")
    second = store.create(title="second")
    store.put_message(first.id, 0, user("touch"))  # first is now the most recent
    assert store.find("last").id == first.id
    assert store.find(second.id).title == "second"
    prefix = next(second.id[:n] for n in range(1, 9) if not first.id.startswith(second.id[:n]))
    assert store.find(prefix).id == second.id


def test_unknown_and_ambiguous_references_say_so(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound, match="no saved sessions yet"):
        store.find("last")
    for _ in range(40):  # 40 ids of 8 hex digits: some share a first digit
        store.create()
    with pytest.raises(SessionNotFound, match="no saved session 'zz'"):
        store.find("zz")
    firsts = [info.id[0] for info in store.list_sessions()]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(SessionNotFound, match="matches several sessions"):
        store.find(shared)


def test_rename_delete_and_list(store: SessionStore) -> None:
    a = store.create(title="a")
    b = store.create(title="b")
    store.put_message(a.id, 0, user("x"))
    assert store.rename(b.id, "renamed").title == "renamed"
    store.delete(a.id)
    assert [(i.id, i.title) for i in store.list_sessions()] == [(b.id, "renamed")]
    with pytest.raises(SessionNotFound):
        store.load(a.id)
    rows = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM messages").fetchone()
    assert rows == (0,), "deleting a session deletes its messages"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the sessions database"):
        SessionStore(path)
