"""One sandbox container running the REPL server, and the host side of its protocol.

The host talks to the server over the container's attached stdin/stdout (see repl_server.py).
The wall-clock limit is enforced here, on the host: a cell that does not answer in time gets
its whole container killed, whatever the code inside is doing.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptoss_chat.tools.sandbox.output import BoundedOutput

if TYPE_CHECKING:
    from docker import DockerClient

SERVER_SOURCE_PATH = Path(__file__).with_name("repl_server.py")
MAX_FRAME_BYTES = 1 << 20
"""The server sends output in 64 KiB chunks: a larger frame means the stream is corrupt."""
DIAGNOSTICS_BYTES = 4096
"""What the server itself wrote to stderr (a startup failure) is kept up to this much."""
EXIT_WAIT_S = 10.0


class Outcome(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out of memory"
    CRASHED = "crashed"
    INTERRUPTED = "interrupted"
    """Stopped on the user's request (set by the session, which asked for it)."""


@dataclass
class CellRun:
    """What running one cell produced."""

    output: BoundedOutput
    outcome: Outcome
    seconds: float
    exit_code: int | None = None
    """The container's exit status, when the cell ended it."""
    diagnostics: str = ""
    """The server's own stderr (e.g. why python3 would not start)."""


class _StreamEnded(Exception):
    """The container closed its output: the server process is gone."""


class _Deadline(Exception):
    """The cell ran past its wall-clock limit."""


class ReplContainer:
    """A started container whose main process is the REPL server."""

    def __init__(self, client: DockerClient, options: dict[str, Any]) -> None:
        self._client = client
        server_source = SERVER_SOURCE_PATH.read_text(encoding="utf-8")
        self.container = client.containers.create(
            command=["python3", "-u", "-c", server_source], **options
        )
        self.id: str = self.container.id or ""
        try:
            # Attach before start: the server prints nothing until it gets a request, so no
            # output can be missed, and stdin_once makes the server see EOF when we vanish.
            response_socket = client.api.attach_socket(
                self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            self._socket: socket.socket = getattr(response_socket, "_sock", response_socket)
            self._response_socket = response_socket
            self.container.start()
        except BaseException:
            self.remove()
            raise
        self._multiplexed = bytearray()
        self._protocol = bytearray()
        self._diagnostics = bytearray()
        self.alive = True

    def is_running(self) -> bool:
        import docker

        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return self.alive and self.container.status == "running"

    def run(self, code: str, *, echo: bool, timeout_s: float, output_limit: int) -> CellRun:
        """Run one cell. After a timeout or a dead server the container is stopped (`alive`
        False) and only waits for `remove()`."""
        started = time.monotonic()
        deadline = started + timeout_s
        output = BoundedOutput(output_limit)
        request = json.dumps({"code": code, "echo": echo}).encode("utf-8") + b"\n"
        try:
            self._send(request, deadline)
            while True:
                kind, payload = self._next_frame(deadline)
                if kind == b"o":
                    output.add(payload)
                elif kind == b"d":
                    return CellRun(output, Outcome.OK, time.monotonic() - started)
        except _Deadline:
            self.kill()
            return CellRun(output, Outcome.TIMEOUT, time.monotonic() - started)
        except _StreamEnded:
            exit_code, oom_killed = self._exit_state()
            self.kill()
            return CellRun(
                output,
                Outcome.OUT_OF_MEMORY if oom_killed else Outcome.CRASHED,
                time.monotonic() - started,
                exit_code=exit_code,
                diagnostics=self._diagnostics.decode("utf-8", errors="replace").strip(),
            )

    def _send(self, data: bytes, deadline: float) -> None:
        self._socket.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            self._socket.sendall(data)
        except TimeoutError as exc:
            raise _Deadline from exc
        except OSError as exc:
            raise _StreamEnded from exc

    def _next_frame(self, deadline: float) -> tuple[bytes, bytes]:
        """The next protocol frame: 1 type byte, 4-byte length, payload."""
        while True:
            if len(self._protocol) >= 5:
                (length,) = struct.unpack(">I", self._protocol[1:5])
                if length > MAX_FRAME_BYTES:
                    raise _StreamEnded
                if len(self._protocol) >= 5 + length:
                    kind = bytes(self._protocol[:1])
                    payload = bytes(self._protocol[5 : 5 + length])
                    del self._protocol[: 5 + length]
                    return kind, payload
            self._receive(deadline)

    def _receive(self, deadline: float) -> None:
        """Read from the attach stream and split Docker's stdout/stderr multiplexing."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline
        self._socket.settimeout(remaining)
        try:
            data = self._socket.recv(1 << 16)
        except TimeoutError as exc:
            raise _Deadline from exc
        except OSError as exc:
            raise _StreamEnded from exc
        if not data:
            raise _StreamEnded
        self._multiplexed += data
        # Docker frame: stream type (1 stdout, 2 stderr), 3 zero bytes, 4-byte length.
        while len(self._multiplexed) >= 8:
            stream, length = self._multiplexed[0], struct.unpack(">I", self._multiplexed[4:8])[0]
            if len(self._multiplexed) < 8 + length:
                break
            payload = self._multiplexed[8 : 8 + length]
            del self._multiplexed[: 8 + length]
            if stream == 1:
                self._protocol += payload
            elif len(self._diagnostics) < DIAGNOSTICS_BYTES:
                self._diagnostics += payload[: DIAGNOSTICS_BYTES - len(self._diagnostics)]

    def _exit_state(self) -> tuple[int | None, bool]:
        """Exit code and whether the kernel's OOM killer ended the container."""
        import docker

        try:
            status = self.container.wait(timeout=EXIT_WAIT_S)
            self.container.reload()
        except (docker.errors.DockerException, OSError):
            return None, False
        state = self.container.attrs.get("State", {})
        return status.get("StatusCode"), bool(state.get("OOMKilled"))

    def kill(self) -> None:
        """Stop everything in the container at once (deleting it can take seconds)."""
        import docker

        self.alive = False
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.kill(self.id)
        response_socket = getattr(self, "_response_socket", None)
        if response_socket is not None:
            with contextlib.suppress(OSError):
                response_socket.close()

    def remove(self) -> None:
        """Kill and delete the container; safe to call twice or from another thread."""
        import docker

        self.kill()
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.remove_container(self.id, force=True)
