"""The python tool against a real Docker engine (started by .ci/docker-up).

Each test closes its tools on teardown and checks that no container of this process is left,
except the one session that the harmless tests share: Docker's vfs driver copies the whole
image for every container, so each one costs seconds. That one is checked at module end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gptoss_chat.tools.base import ToolCall, ToolResult
from gptoss_chat.tools.python_tool import PythonTool
from gptoss_chat.tools.sandbox.config import LABEL, LOCAL_IMAGE, SandboxConfig
from gptoss_chat.tools.sandbox.container import Outcome
from gptoss_chat.tools.sandbox.engine import (
    OWNER_LABEL,
    Problem,
    SandboxUnavailable,
    connect,
    owner_identity,
)
from gptoss_chat.tools.sandbox.session import PythonSandbox

pytestmark = pytest.mark.docker
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docker_client():
    try:
        client = connect(SandboxConfig())
    except SandboxUnavailable as problem:
        reason = f"no Docker engine can run here: {problem.user_message}"
        if os.environ.get("GPTOSS_CHAT_REQUIRE_DOCKER") == "1":
            pytest.fail(reason)
        warnings.warn(reason, stacklevel=1)  # shown in the summary even without -rs
        pytest.skip(reason)
    if not client.images.list(name=LOCAL_IMAGE):
        # Building needs the Debian mirror and takes a minute or two; .ci/docker-up does it.
        build = subprocess.run(
            [sys.executable, "-m", "gptoss_chat", "sandbox", "build", "--if-missing"],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert build.returncode == 0, f"cannot build {LOCAL_IMAGE}:\n{build.stderr}"
    return client


def my_containers(client) -> list:
    labels = [LABEL, f"{OWNER_LABEL}={owner_identity()}"]
    return client.containers.list(all=True, filters={"label": labels})


def new_tool(**settings) -> PythonTool:
    settings.setdefault("image", LOCAL_IMAGE)
    settings.setdefault("timeout_s", 20)
    return PythonTool(SandboxConfig(**settings))


@pytest.fixture(scope="module")
def shared_tool(docker_client) -> Iterator[PythonTool]:
    """A stateful session for tests that cannot harm it."""
    tool = new_tool()
    yield tool
    tool.close()
    assert my_containers(docker_client) == [], "the shared session's container was left behind"


@pytest.fixture
def make_tool(docker_client, request) -> Iterator[Callable[..., PythonTool]]:
    tools: list[PythonTool] = []

    def factory(**settings) -> PythonTool:
        tools.append(new_tool(**settings))
        return tools[-1]

    yield factory
    for tool in tools:
        tool.close()
    shared = request.getfixturevalue("shared_tool").sandbox.container_id
    left = {container.id for container in my_containers(docker_client)} - {shared}
    assert not left, "a sandbox container was left behind"


def run(tool: PythonTool, code: str, channel: str = "analysis") -> ToolResult:
    return tool.run(tool.propose(ToolCall("python", code, channel=channel)))


def text(result: ToolResult) -> str:
    return result.messages[0].content[0].text


def test_arithmetic_print_and_state_kept_between_calls(shared_tool, make_tool):
    tool = shared_tool
    assert tool.warm_up() is None  # the session starts before the first call
    first = run(tool, "print(6 * 7)", channel="analysis")
    assert text(first) == "42\n" and not first.is_error
    message = first.messages[0]
    assert (message.author.name, message.recipient, message.channel) == (
        "python",
        "assistant",
        "analysis",
    )
    assert "No output available" in text(run(tool, "import math\nx = 21"))
    assert text(run(tool, "x * 2")) == "42\n"  # trailing expression shown, like a notebook
    assert text(run(tool, "math.sqrt(16)")) == "4.0\n"
    run(tool, "open('notes.txt', 'w').write('kept')")
    assert text(run(tool, "print(open('/mnt/data/notes.txt').read())")) == "kept\n"
    error = text(run(tool, "1 / 0"))
    assert "ZeroDivisionError" in error and "<cell" in error
    assert text(run(tool, "print(x)")) == "21\n"  # an exception does not lose the state


def test_stateless_mode_keeps_nothing(make_tool):
    tool = make_tool(stateful=False)
    assert text(run(tool, "x = 1\nprint(x + 1)\nx")) == "2\n"  # no notebook echo either
    assert "NameError: name 'x' is not defined" in text(run(tool, "print(x)"))
    assert tool.sandbox.container_id is None


def test_infinite_loop_is_killed_at_the_timeout_and_the_session_recovers(make_tool):
    tool = make_tool(timeout_s=3)
    run(tool, "y = 5")
    started = time.monotonic()
    result = run(tool, "print('spinning', flush=True)\nwhile True: pass")
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 15, elapsed
    assert result.is_error and result.data.outcome is Outcome.TIMEOUT
    assert text(result).startswith("spinning\n")  # output before the timeout is kept
    assert "timed out after 3 seconds" in text(result)
    assert "variables, imports and files" in text(result) and "lost" in text(result)
    assert "NameError" in text(run(tool, "print(y)"))
    assert text(run(tool, "print('recovered')")) == "recovered\n"


def test_user_can_stop_a_running_call(make_tool):
    tool = make_tool(timeout_s=60)
    run(tool, "z = 1")
    with ThreadPoolExecutor(1) as worker:
        pending = worker.submit(run, tool, "import time\nwhile True: time.sleep(0.01)")
        time.sleep(1.0)
        started = time.monotonic()
        tool.interrupt()
        result = pending.result(timeout=30)
    assert time.monotonic() - started < 10
    assert result.data.outcome is Outcome.INTERRUPTED and result.summary.startswith("stopped")
    assert "The user stopped the run" in text(result) and "lost" in text(result)
    assert text(run(tool, "print('z' in globals())")) == "False\n"


def test_memory_hog_is_killed(make_tool, docker_client):
    tool = make_tool(memory_mb=128)
    result = run(tool, "hog = b'x' * (1 << 30)")
    assert result.data.outcome is Outcome.OUT_OF_MEMORY
    assert "more than the sandbox's 128 MiB of memory" in text(result)
    assert "out of memory" in result.summary
    assert text(run(tool, "print('still here')")) == "still here\n"
    # A session that dies between calls (here: killed from outside) is replaced, and the
    # model is told.
    docker_client.containers.get(tool.sandbox.container_id).kill()
    after = text(run(tool, "print('replaced')"))
    assert after.startswith("[NOTE] The previous python session had ended")
    assert after.endswith("replaced\n")


def test_fork_bomb_is_contained(make_tool):
    tool = make_tool(pids=32, timeout_s=4)
    counted = run(
        tool,
        "import os, time\n"
        "forks = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        forks += 1\n"
        "except OSError as error:\n"
        "    print('fork refused after', forks, error.errno)\n",
    )
    words = text(counted).split()
    assert words[:3] == ["fork", "refused", "after"] and int(words[3]) < 32
    assert words[4] == "11"  # EAGAIN from the pids limit
    # A bomb whose every process keeps forking forever: only the timeout ends it.
    bomb = run(
        tool,
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    )
    assert bomb.data.outcome is Outcome.TIMEOUT
    assert text(run(tool, "print('after the bomb')")) == "after the bomb\n"


def test_network_is_blocked(shared_tool, make_tool):
    result = run(
        shared_tool,
        "import socket\n"
        "print(socket.if_nameindex())\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 80), timeout=2)\n"  # TEST-NET-1
        "except OSError as error:\n"
        "    print('refused', error.errno)\n",
    )
    assert text(result) == "[(1, 'lo')]\nrefused 101\n"  # loopback only; ENETUNREACH


def test_unprivileged_and_only_the_work_dir_is_writable(shared_tool, make_tool, docker_client):
    tool = shared_tool
    identity = run(
        tool,
        "import os\n"
        "status = dict(line.split(':\\t') for line in open('/proc/self/status'))\n"
        "print(os.getuid(), os.getgid(), status['CapEff'].strip(), status['NoNewPrivs'].strip())",
    )
    assert text(identity) == "65534 65534 0000000000000000 1\n"
    host = docker_client.containers.get(tool.sandbox.container_id).attrs["HostConfig"]
    assert host["ReadonlyRootfs"] and host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert (host["Memory"], host["MemorySwap"]) == (512 << 20, 512 << 20)
    assert (host["NanoCpus"], host["PidsLimit"], host["Init"]) == (10**9, 64, True)
    writes = run(
        tool,
        "for path in ['/x', '/etc/passwd', '/tmp/x', '/usr/lib/x', '/root/x', '/mnt/data/x']:\n"
        "    try:\n"
        "        open(path, 'a').write('1')\n"
        "        print(path, 'written')\n"
        "    except OSError as error:\n"
        "        print(path, 'refused', error.errno)\n",
    )
    assert text(writes).splitlines() == [
        "/x refused 30",  # EROFS: read-only root filesystem
        "/etc/passwd refused 13",  # EACCES: an existing file, not ours
        "/tmp/x refused 30",
        "/usr/lib/x refused 30",
        "/root/x refused 13",
        "/mnt/data/x written",
    ]


def test_ten_megabytes_of_output_are_truncated(shared_tool, make_tool):
    assert shared_tool.config.output_limit == 20_000
    result = run(shared_tool, "print('x' * 10_000_000)\nprint('END')")
    body = text(result)
    assert len(body) < 20_000 + 200
    assert body.startswith("x" * 1000) and body.endswith("END\n")
    assert "output truncated: 9,980,005 of 10,000,005 bytes omitted" in body
    assert "truncated" in result.summary


def test_killed_app_leaves_no_container(docker_client, tmp_path):
    script = (
        "import sys, time\n"
        "from gptoss_chat.tools.sandbox.config import SandboxConfig\n"
        "from gptoss_chat.tools.sandbox.session import PythonSandbox\n"
        f"sandbox = PythonSandbox(SandboxConfig(image={LOCAL_IMAGE!r}))\n"
        "sandbox.execute('x = 1')\n"
        "print(sandbox.container_id, flush=True)\n"
        "sandbox.execute('while True: pass')\n"
    )
    app = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    container_id = app.stdout.readline().strip()
    assert container_id, "the app did not start its session"
    time.sleep(0.5)  # let it send the busy loop
    app.send_signal(signal.SIGKILL)
    app.wait(timeout=10)
    app.stdout.close()
    leftover = docker_client.containers.get(container_id)
    assert leftover.labels[LABEL] == "1"
    # The next start of the app removes what the killed one left.
    PythonSandbox(SandboxConfig(image=LOCAL_IMAGE)).prepare()
    assert not docker_client.containers.list(all=True, filters={"id": container_id})


def test_missing_image_offers_a_build(make_tool):
    tool = make_tool(image="gptoss-chat-test/no-such-image:1")
    assert tool.warm_up().problem is Problem.IMAGE_MISSING
    result = run(tool, "print(1)")
    assert result.is_error and result.data.problem.problem is Problem.IMAGE_MISSING
    assert "gptoss-chat sandbox build" in result.summary
    assert "no-such-image" in result.summary
    assert "python tool is unavailable (sandbox image missing)" in text(result)


def test_sandbox_commands(docker_client):
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gptoss_chat", "sandbox", *args]
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, env=environment, check=False
        )

    done = cli("run", "--stateless", "--image", LOCAL_IMAGE, stdin="print(2 ** 10)\n")
    assert (done.returncode, done.stdout) == (0, "1024\n")
    done = cli("run", "--image", "gptoss-chat-test/no-such-image:1", stdin="print(1)\n")
    assert done.returncode == 1 and "python tool is unavailable" in done.stdout
    assert "gptoss-chat sandbox build" in done.stderr
    done = cli("status", "--image", LOCAL_IMAGE)
    assert done.returncode == 0 and f"image: {LOCAL_IMAGE} (present)" in done.stdout
    others = docker_client.containers.list(all=True, filters={"label": LABEL})
    assert [c for c in others if c.labels[OWNER_LABEL] != owner_identity()] == []
