"""The python tool without a Docker engine: description, proposals, output bounds, and the
messages for an unusable Docker (dead socket, permission denied, not installed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_chat.tools.base import ToolCall, ToolCallError
from gptoss_chat.tools.python_tool import PythonTool
from gptoss_chat.tools.sandbox.config import SandboxConfig
from gptoss_chat.tools.sandbox.engine import Problem
from gptoss_chat.tools.sandbox.output import BoundedOutput

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None, prefix=()):
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "gptoss_chat", "sandbox", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("config", "expected", "absent"),
    [
        (
            SandboxConfig(timeout_s=30),
            ["stateful Jupyter notebook", "time out after 30.0 seconds", "'/mnt/data'", "disabled"],
            ["STATELESS"],
        ),
        (
            SandboxConfig(stateful=False, timeout_s=5, network=True),
            ["STATELESS", "not shared between calls", "after 5.0 seconds", "enabled"],
            ["stateful Jupyter"],
        ),
    ],
)
def test_description_matches_mode(config, expected, absent):
    namespace = PythonTool(config).system_config()
    assert namespace.name == "python"
    assert namespace.tools == []
    for phrase in expected:
        assert phrase in namespace.description
    for phrase in absent:
        assert phrase not in namespace.description


def test_proposal_shows_the_code_for_approval():
    tool = PythonTool(SandboxConfig(timeout_s=7))
    proposal = tool.propose(ToolCall("python", "print('hi')\n", channel="analysis"))
    assert proposal.preview == "print('hi')\n"
    assert (proposal.preview_kind, proposal.language) == ("code", "python")
    assert proposal.needs_approval
    assert "7 s" in proposal.title and "no network" in proposal.title


@pytest.mark.parametrize(
    ("recipient", "code", "message"),
    [("python", "  \n", "empty"), ("python.exec", "print(1)", "no function 'exec'")],
)
def test_bad_calls_are_rejected_with_a_reason(recipient, code, message):
    with pytest.raises(ToolCallError, match=message):
        PythonTool().propose(ToolCall(recipient, code))


@pytest.mark.parametrize(
    ("chunks", "limit", "truncated", "kept"),
    [
        ([b"hello\n"], 100, False, "hello\n"),
        ([b"a" * 60, b"b" * 40], 100, False, "a" * 60 + "b" * 40),
        ([b"a" * 80, b"b" * 80, b"c" * 80], 100, True, None),
    ],
)
def test_bounded_output_keeps_head_and_tail(chunks, limit, truncated, kept):
    output = BoundedOutput(limit)
    for chunk in chunks:
        output.add(chunk)
    assert output.truncated is truncated
    assert output.total == sum(map(len, chunks))
    text = output.text()
    if kept is not None:
        assert text == kept
    else:
        assert text.startswith("a" * 75) and text.endswith("c" * 25)
        assert "140 of 240 bytes omitted" in text


def _run_against(tmp_path: Path, docker_host: str):
    tool = PythonTool(SandboxConfig(docker_host=docker_host))
    result = tool.run(tool.propose(ToolCall("python", "print(1)")))
    tool.close()
    return result


def test_daemon_down_gives_clear_messages(tmp_path):
    result = _run_against(tmp_path, f"unix://{tmp_path}/missing.sock")
    report = result.data
    assert result.is_error
    assert report.problem.problem is Problem.DAEMON_DOWN
    assert "not running" in result.summary and "missing.sock" in result.summary
    message = result.messages[0]
    assert message.author.name == "python" and message.recipient == "assistant"
    assert "python tool is unavailable" in message.content[0].text


def test_socket_nobody_listens_on_counts_as_daemon_down(tmp_path):
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound but not listening: connections are refused
        result = _run_against(tmp_path, f"unix://{path}")
    assert result.data.problem.problem is Problem.DAEMON_DOWN


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_permission_denied_on_socket(tmp_path):
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        path.chmod(0)
        # Root ignores file modes; dropping every capability makes the mode count again.
        drop_caps = ("setpriv", "--bounding-set=-all", "--inh-caps=-all")
        done = run_cli(
            "run", "--docker-host", f"unix://{path}", stdin="print(1)\n", prefix=drop_caps
        )
    assert done.returncode == 1
    assert "Permission denied on the Docker socket" in done.stderr
    assert "docker' group" in done.stderr
    assert "python tool is unavailable (permission denied" in done.stdout


def test_docker_not_installed(tmp_path):
    done = run_cli(
        "status", env={"PATH": str(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    )
    assert done.returncode == 1
    assert "Docker is not installed" in done.stdout
    assert "apt-get install docker.io" in done.stdout


def test_cli_rejects_empty_code(tmp_path):
    done = run_cli("run", "--docker-host", f"unix://{tmp_path}/none.sock", stdin="\n")
    assert done.returncode == 2
    assert "empty" in done.stderr


def test_build_without_debootstrap_says_what_to_install(tmp_path, monkeypatch):
    from gptoss_chat.tools.sandbox.image_build import BuildError, check_prerequisites

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match="apt-get install debootstrap"):
        check_prerequisites()


def test_system_message_and_tool_message_render_in_harmony(harmony_encoding):
    from openai_harmony import Conversation, Message, Role, SystemContent

    from gptoss_chat.tools.base import tool_message

    encoding = harmony_encoding
    config = PythonTool(SandboxConfig(timeout_s=60)).system_config()
    system = Message.from_role_and_content(Role.SYSTEM, SystemContent.new().with_tools(config))
    answer = tool_message("python", "42\n", channel="analysis")
    tokens = encoding.render_conversation(Conversation.from_messages([system, answer]))
    rendered = encoding.decode_utf8(tokens)
    assert "## python\n\nUse this tool to execute Python code" in rendered
    assert "time out after 60.0 seconds" in rendered
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>42\n<|end|>" in rendered
