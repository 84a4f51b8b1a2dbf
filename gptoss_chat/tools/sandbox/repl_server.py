"""The program that runs inside the sandbox container: a tiny notebook kernel.

It is not imported by the app: its source is passed to `python3 -u -c` as the container's
command (the root filesystem is read-only, so nothing can be copied in). It must therefore use
only the standard library and run on any Python 3.8+ an image may ship.

Protocol, over the container's attached stdin/stdout:
- the host writes one JSON line per cell: {"code": "...", "echo": true}
- the server answers with frames: 1 type byte, 4-byte big-endian length, payload.
  b"o": a chunk of the cell's output (stdout and stderr interleaved, raw bytes);
  b"d": the cell is done (payload: JSON, currently {}).

The protocol descriptors are moved off 0/1/2 at start, so the cell's own writes to fd 1/2 (and
those of any process it spawns) land in a capture pipe instead of corrupting the protocol, and
input() reads /dev/null instead of the next request. When the host goes away, stdin reaches EOF
and the server exits, so a killed app does not leave a busy container behind.
"""

import ast
import contextlib
import json
import linecache
import os
import queue
import select
import struct
import sys
import threading
import time
import traceback

CHUNK_BYTES = 65536
DRAIN_QUIET_SECONDS = 0.05
DRAIN_LIMIT_SECONDS = 0.5


class Channel:
    """Frames to the host over a private copy of the original stdout."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, kind, payload):
        frame = kind + struct.pack(">I", len(payload)) + payload
        with self.lock:
            view = memoryview(frame)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]


def read_requests(fd, requests):
    """Feed request lines into the queue; exit the whole server when the host disconnects."""
    stream = os.fdopen(fd, "rb", buffering=0)
    pending = b""
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            os._exit(0)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                requests.put(line)


def pump_output(read_fd, channel, stop):
    """Forward captured output; once stopped, drain what is left (briefly, in case a child
    process the cell started still holds the pipe open)."""
    drain_deadline = None
    while True:
        if stop.is_set() and drain_deadline is None:
            drain_deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
        ready, _, _ = select.select([read_fd], [], [], DRAIN_QUIET_SECONDS)
        if not ready:
            if stop.is_set():
                return
            continue
        data = os.read(read_fd, CHUNK_BYTES)
        if not data:
            return
        channel.send(b"o", data)
        if drain_deadline is not None and time.monotonic() > drain_deadline:
            return


def show_exception(skip_frames):
    """Print the current exception like a notebook does, without the server's own frames."""
    kind, value, tb = sys.exc_info()
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    if isinstance(value, SystemExit):
        sys.stderr.write(f"SystemExit: {value.code}\n")
        return
    traceback.print_exception(kind, value, tb)


def run_cell(code, namespace, cell_number, echo):
    """Execute one cell; with echo, show the value of a trailing expression like Jupyter."""
    filename = f"<cell {cell_number}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        tree = ast.parse(code, filename, "exec")
    except SyntaxError:
        traceback.print_exc(limit=0)
        return
    last = None
    if echo and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    try:
        exec(compile(tree, filename, "exec"), namespace)
        if last is not None:
            value = eval(compile(last, filename, "eval"), namespace)
            if value is not None:
                namespace["_"] = value
                sys.stdout.write(repr(value) + "\n")
    except BaseException:
        show_exception(skip_frames=1)


def capture_and_run(code, namespace, cell_number, echo, channel, devnull_fd):
    server_pid = os.getpid()
    read_fd, write_fd = os.pipe()
    stop = threading.Event()
    pump = threading.Thread(target=pump_output, args=(read_fd, channel, stop), daemon=True)
    pump.start()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        run_cell(code, namespace, cell_number, echo)
    finally:
        if os.getpid() != server_pid:
            # A process the cell forked finished the cell's code: it must not go on to
            # answer the host as if it were the server.
            os._exit(0)
        for stream in (sys.stdout, sys.stderr):
            # The cell may have replaced sys.stdout with anything.
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(devnull_fd, 1)
        os.dup2(devnull_fd, 2)
        stop.set()
        pump.join()
        os.close(read_fd)


def main():
    protocol_in = os.dup(0)
    protocol_out = os.dup(1)
    devnull_fd = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull_fd, fd)
    channel = Channel(protocol_out)
    requests = queue.Queue()
    reader = threading.Thread(target=read_requests, args=(protocol_in, requests), daemon=True)
    reader.start()
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    cell_number = 0
    while True:
        request = json.loads(requests.get().decode("utf-8"))
        cell_number += 1
        capture_and_run(
            request.get("code", ""),
            namespace,
            cell_number,
            bool(request.get("echo", True)),
            channel,
            devnull_fd,
        )
        channel.send(b"d", b"{}")


if __name__ == "__main__":
    main()
