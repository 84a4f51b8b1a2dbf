"""The plain REPL driven in a real terminal (tmux): input, approvals, Ctrl-C, commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gptoss_chat.conversation import message_text
from gptoss_chat.store import SessionStore

REPO = Path(__file__).resolve().parents[2]
CALL = (
    "<|channel|>analysis<|message|>I should edit the file.<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.edit_file <|constrain|>json"
    '<|message|>{{"line": "{line}"}}<|call|>'
)
COMPLETIONS = [
    CALL.format(line="hello world"),
    "<|channel|>final<|message|>Edited the **file** for you.<|return|>",
    CALL.format(line="rm everything"),
    "<|channel|>final<|message|>Understood, leaving it alone.<|return|>",
    "<|channel|>final<|message|>Got both lines.<|return|>",
    "<|channel|>final<|message|>" + " ".join(f"story{i}" for i in range(600)) + "<|return|>",
    "<|channel|>final<|message|>Short answer.<|return|>",
]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Terminal:
    """A tmux pane on a private server: type into it, read what it shows."""

    def __init__(self, directory: Path, command: str, env: dict[str, str]) -> None:
        self.command = command
        self.env = env
        self.socket = f"gptoss-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        shell = f"cd {shlex.quote(str(directory))} && env {exports} {command}"
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "110",
            "-y",
            "40",
            f"{shell}; echo EXITED $?; sleep 60",
        )

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True
        ).stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)

    def screen(self, *, colours: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", "t", "-S", "-3000"]
        text = self._tmux(*args, *(["-e"] if colours else []))
        # Without the pane's empty bottom rows, the text only grows: offsets stay valid.
        return "\n".join(line.rstrip() for line in text.splitlines()).rstrip() + "\n"

    def mark(self) -> int:
        """Offset of the last line (the prompt being typed on) for wait_for(after=...)."""
        return self.screen().rstrip("\n").rfind("\n") + 1

    def wait_for(
        self, pattern: str, timeout: float = 30.0, *, after: int = 0, joined: bool = False
    ) -> str:
        """Wait until `pattern` (regex) shows up after the first `after` characters;
        `joined` undoes the terminal's line wrapping first."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen[after:].replace("\n", "") if joined else screen[after:]):
                return screen
            if time.monotonic() > deadline or (
                "EXITED" in screen[after:] and "EXITED" not in pattern
            ):
                raise AssertionError(f"{pattern!r} never appeared; screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path, user_dirs, request):
    mode = getattr(request, "param", "--plain")
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"delay": 0.01, "completions": COMPLETIONS}))
    target = tmp_path / "notes.txt"
    target.write_text("old\n")
    env = {
        "PYTHONPATH": str(REPO),
        "GPTOSS_CHAT_CONFIG_DIR": str(user_dirs["config"]),
        "GPTOSS_CHAT_DATA_DIR": str(user_dirs["data"]),
        "HOME": os.environ.get("HOME", "/root"),
        "TERM": "tmux-256color",
        "GPTOSS_CHAT_CACHE_DIR": os.environ["GPTOSS_CHAT_CACHE_DIR"],  # the session's vocab
    }
    command = (
        f"{shlex.quote(sys.executable)} -m tests.ui._plain_child "
        f"{shlex.quote(str(target))} --backend replay {shlex.quote(str(replay))} {mode}"
    )
    term = Terminal(REPO, command, env)
    term.target = target
    yield term
    term.close()


def test_plain_session_with_approvals_commands_and_ctrl_c(terminal, user_dirs) -> None:
    term = terminal
    term.wait_for(r"Ctrl-D quits\n›")

    # An approved tool call: the diff is shown in colour, "y" lets the tool run.
    term.type("please edit the file")
    term.keys("Enter")
    screen = term.wait_for(r"Allow\? \[y\]es")
    assert "Edit notes.txt" in screen and "+hello world" in screen
    coloured = next(line for line in term.screen(colours=True).splitlines() if "+hello" in line)
    assert "\x1b[" in coloured.split("+hello")[0], "the added line is coloured"
    term.type("y")
    term.keys("Enter")
    term.wait_for(r"Edited the file for you\.")
    assert term.target.read_text() == "old\nhello world\n"
    assert "✓ edit: 1 file changed" in term.screen()

    # A denied one, with a reason the model gets to read.
    mark = term.mark()
    term.type("now delete everything")
    term.keys("Enter")
    term.wait_for(r"Allow\? \[y\]es", after=mark)
    term.type("n too risky")
    term.keys("Enter")
    term.wait_for(r"Understood, leaving it alone\.", after=mark)
    assert "declined: too risky" in term.screen()
    assert term.target.read_text() == "old\nhello world\n"

    # Multi-line input (Alt+Enter) and completion of slash commands (Tab).
    term.type("line one")
    term.keys("Escape", "Enter")
    term.type("line two")
    term.keys("Enter")
    term.wait_for(r"Got both lines\.")
    mark = term.mark()
    term.type("/reas")
    term.wait_for(r"set the reasoning effort", after=mark)  # the completion menu
    term.keys("Tab")
    term.wait_for(r"› /reasoning", after=mark)
    term.type(" high")
    term.keys("Enter")
    term.wait_for(r"reasoning effort: high", after=mark)

    # Ctrl-C stops a long answer and the REPL stays.
    mark = term.mark()
    term.type("tell me a long story")
    term.keys("Enter")
    term.wait_for(r"story30\b", after=mark)
    term.keys("C-c")
    term.wait_for(r"interrupted\)", after=mark)
    mark = term.mark()
    term.type("still there?")
    term.keys("Enter")
    term.wait_for(r"Short answer\.", after=mark)

    term.type("/quit")
    term.keys("Enter")
    term.wait_for(r"EXITED 0")

    with SessionStore(user_dirs["data"] / "sessions.sqlite3") as store:
        saved = store.load("last")
    texts = [message_text(m.message) for m in saved.messages]
    assert "line one\nline two" in texts
    assert "The user declined this tool call. Reason: too risky" in texts
    story = next(m for m in saved.messages if message_text(m.message).startswith("story0"))
    assert story.interrupted and "story599" not in message_text(story.message)
    assert saved.messages[-1].settings["reasoning"] == "high"
    history = (user_dirs["data"] / "plain_history").read_text()
    assert "please edit the file" in history and "/quit" in history


@pytest.mark.parametrize("terminal", ["--raw"], indirect=True)
def test_raw_mode_prints_the_harmony_token_stream(terminal) -> None:
    term = terminal
    term.wait_for(r"Ctrl-D quits\n›")
    term.type("please edit the file")
    term.keys("Enter")
    screen = term.wait_for(r"Allow\? \[y\]es")
    assert "<|start|>system<|message|>You are ChatGPT" in screen
    assert "<|start|>user<|message|>please edit the file<|end|><|start|>assistant" in screen
    assert (
        "<|channel|>commentary to=functions.edit_file <|constrain|>json<|message|>"
        '{"line": "hello world"}<|call|>' in screen.replace("\n", "")
    )
    term.type("y")
    term.keys("Enter")
    screen = term.wait_for(r"Edited the \*\*file\*\* for you\.<\|return\|>", joined=True)
    flat = screen.replace("\n", "")
    assert (
        "<|start|>functions.edit_file to=assistant<|channel|>commentary<|message|>edited"
        "<|end|><|start|>assistant<|channel|>final<|message|>Edited" in flat
    )
    assert flat.count("<|start|>system") == 1, "the system message is shown once"


def test_piped_input_answers_approvals_line_by_line(tmp_path: Path, user_dirs) -> None:
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"completions": COMPLETIONS}))
    target = tmp_path / "notes.txt"
    target.write_text("old\n")
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ui._plain_child",
            str(target),
            "--backend",
            "replay",
            str(replay),
            "--plain",
        ],
        input="please edit the file\na\n/tools\n",
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    assert "Allow? [y]es" in child.stdout and "+hello world" in child.stdout
    assert "Edited the file for you." in child.stdout
    assert "edit: on (approval: ask)" in child.stdout
    assert target.read_text() == "old\nhello world\n"
    assert "Warning" not in child.stderr


def test_resume_shows_the_conversation_and_continues_it(terminal, user_dirs) -> None:
    from openai_harmony import Message, Role

    from gptoss_chat.store import MessageState

    with SessionStore(user_dirs["data"] / "sessions.sqlite3") as store:
        info = store.create(title="earlier")
        store.put_message(info.id, 0, Message.from_role_and_content(Role.USER, "first question"))
        answer = Message.from_role_and_content(Role.ASSISTANT, "a half-written ans")
        store.put_message(info.id, 1, answer.with_channel("final"), MessageState.STREAMING)
    term = terminal
    term.close()
    term.__init__(REPO, term.command + " --resume", term.env)
    screen = term.wait_for(r"Ctrl-D quits\n›")
    assert f"resumed session {info.id}" in screen
    assert "first question" in screen and "a half-written ans" in screen
    assert "(interrupted)" in screen
    term.type("/undo")
    term.keys("Enter")
    term.wait_for("removed your last message")
    term.type("second try")
    term.keys("Enter")
    term.wait_for(r"Allow\? \[y\]es")
    term.keys("C-c")
    term.wait_for(r"interrupted\)\n›")
    term.keys("C-d")
    term.wait_for("EXITED 0")
    with SessionStore(user_dirs["data"] / "sessions.sqlite3") as store:
        saved = store.load(info.id)
        assert len(store.list_sessions()) == 1
    assert message_text(saved.messages[0].message) == "second try"
    assert "The user declined this tool call. Reason: the user stopped the turn" in [
        message_text(m.message) for m in saved.messages
    ]
