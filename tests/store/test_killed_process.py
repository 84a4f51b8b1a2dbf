"""A chat process killed with SIGKILL mid-answer loses nothing complete; resume continues it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gptoss_chat.conversation import message_text
from gptoss_chat.store import MessageState, SessionStore

REPO = Path(__file__).resolve().parents[2]
SLOW_ANSWER = (
    "<|channel|>analysis<|message|>The user wants a long story. I will write one.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>"
    + " ".join(f"chapter{i}" for i in range(400))
    + "<|return|>"
)
QUICK_ANSWER = "<|channel|>final<|message|>Continuing from where we stopped.<|return|>"


def chat(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "gptoss_chat", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def streaming_text(db_path: Path) -> str:
    """The in-flight final answer as another process sees it in the database, or ''."""
    if not db_path.exists():
        return ""
    db = sqlite3.connect(db_path)
    try:
        row = db.execute(
            "SELECT message FROM messages WHERE state = 'streaming' ORDER BY position DESC"
        ).fetchone()
    except sqlite3.OperationalError:  # the child is still creating the schema
        return ""
    finally:
        db.close()
    if row is None:
        return ""
    message = json.loads(row[0])
    return message["content"][0]["text"] if message.get("channel") == "final" else ""


def test_kill_9_mid_answer_then_resume(tmp_path: Path, user_dirs) -> None:
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({"delay": 0.01, "completions": [SLOW_ANSWER]}))
    quick = tmp_path / "quick.json"
    quick.write_text(json.dumps({"completions": [QUICK_ANSWER]}))
    db_path = user_dirs["data"] / "sessions.sqlite3"

    child = chat(["--backend", "replay", str(slow), "tell me a long story"])
    deadline = time.monotonic() + 60
    while "chapter20" not in streaming_text(db_path):
        assert child.poll() is None, child.stderr.read()
        assert time.monotonic() < deadline, "the answer never showed up in the database"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    streamed_output = child.stdout.read()
    child.stdout.close()
    child.stderr.close()

    with SessionStore(db_path) as store:
        saved = store.load("last")
    texts = [message_text(m.message) for m in saved.messages]
    assert texts[0] == "tell me a long story"
    assert texts[1] == "The user wants a long story. I will write one."
    assert [m.state for m in saved.messages] == [
        MessageState.COMPLETE,
        MessageState.COMPLETE,
        MessageState.INTERRUPTED,
    ]
    partial = texts[2]
    assert partial.startswith("chapter0 chapter1") and "chapter20" in partial
    assert "chapter399" not in partial
    # Whatever the user saw on screen before the kill was saved (bar the last throttle window).
    assert len(partial) >= len(streamed_output.strip()) - 200

    resumed = chat(["--resume", saved.info.id, "--backend", "replay", str(quick), "go on"])
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert "Continuing from where we stopped." in out
    with SessionStore(db_path) as store:
        after = store.load(saved.info.id)
        assert len(store.list_sessions()) == 1, "resume continues the session, not a new one"
    assert [message_text(m.message) for m in after.messages][:3] == texts
    assert [m.interrupted for m in after.messages] == [False, False, True, False, False]
    assert message_text(after.messages[3].message) == "go on"


def test_resume_of_an_unknown_session_is_a_clear_error(tmp_path: Path, user_dirs) -> None:
    quick = tmp_path / "quick.json"
    quick.write_text(json.dumps({"completions": [QUICK_ANSWER]}))
    child = chat(["--resume", "deadbeef", "--backend", "replay", str(quick), "hi"])
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 1
    assert "no saved sessions yet" in err or "no saved session 'deadbeef'" in err
