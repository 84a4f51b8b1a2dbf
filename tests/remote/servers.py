"""Real HTTP servers on 127.0.0.1 that speak vLLM's and Ollama's wire formats.

Each route answers from a script: JSON, an error status, or a stream of records sent with
chunked transfer encoding (SSE for vLLM, JSON lines for Ollama), optionally paced, optionally
cut off by closing the socket mid-stream. Requests are recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Stream:
    """A streamed answer: the records to send, in the server's framing."""

    records: list[str]
    delay: float = 0.0
    drop_after: int | None = None
    """Close the connection (no final chunk) after this many records."""
    content_type: str = "text/event-stream"


@dataclass
class Reply:
    status: int
    body: Any
    """JSON-serialisable, or str sent as is."""


Route = Callable[[dict[str, Any]], Reply | Stream]


@dataclass
class FakeServer:
    routes: dict[tuple[str, str], Route]
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    """Set when a client went away while a stream was being written (cancellation)."""

    def __enter__(self) -> FakeServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                path = self.path.split("?")[0]
                server.requests.append((method, path, body))
                route = server.routes.get((method, path))
                answer = route(body) if route else Reply(404, {"error": f"no route {path}"})
                if isinstance(answer, Reply):
                    self._reply(answer)
                else:
                    self._stream(answer)

            def _reply(self, reply: Reply) -> None:
                data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                payload = data.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, stream: Stream) -> None:
                self.send_response(200)
                self.send_header("Content-Type", stream.content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for index, record in enumerate(stream.records):
                        if stream.drop_after is not None and index >= stream.drop_after:
                            self.wfile.flush()
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        data = record.encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                        if stream.delay:
                            time.sleep(stream.delay)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnected.set()
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def posts(self, path: str) -> list[dict[str, Any]]:
        return [body for method, p, body in self.requests if method == "POST" and p == path]


# -- vLLM ---------------------------------------------------------------------------------------


def vllm_models(*names: str, max_model_len: int = 8192) -> Route:
    data = [{"id": n, "object": "model", "max_model_len": max_model_len} for n in names]
    return lambda body: Reply(200, {"object": "list", "data": data})


def sse(record: dict[str, Any] | str) -> str:
    return f"data: {record if isinstance(record, str) else json.dumps(record)}\n\n"


def vllm_chunks(
    pieces: list[tuple[list[int] | None, str]],
    *,
    finish: str = "stop",
    stop_reason: int | None = None,
) -> list[str]:
    """SSE records of a completion: one per (token ids or None for an old server, text)."""
    records = []
    for index, (ids, text) in enumerate(pieces):
        last = index == len(pieces) - 1
        choice: dict[str, Any] = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": finish if last else None,
            "stop_reason": stop_reason if last else None,
        }
        if ids is not None:
            choice["token_ids"] = ids
        records.append(sse({"id": "cmpl-1", "object": "text_completion", "choices": [choice]}))
    usage = {"prompt_tokens": 10, "completion_tokens": len(pieces), "total_tokens": 10}
    records.append(sse({"id": "cmpl-1", "choices": [], "usage": usage}))
    records.append(sse("[DONE]"))
    return records


# -- Ollama -------------------------------------------------------------------------------------


def ollama_tags(*names: str) -> Route:
    return lambda body: Reply(200, {"models": [{"name": n, "model": n} for n in names]})


def ollama_lines(texts: list[str], *, done_reason: str = "stop") -> list[str]:
    records = [
        json.dumps({"model": "gpt-oss:20b", "response": t, "done": False}) + "\n" for t in texts
    ]
    final = {"model": "gpt-oss:20b", "response": "", "done": True, "done_reason": done_reason}
    records.append(json.dumps(final) + "\n")
    return records
