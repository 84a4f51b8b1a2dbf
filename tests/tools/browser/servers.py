"""Real HTTP servers on 127.0.0.1 for the browser tests: fixture pages and a fake Exa API."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
SLOW_SECONDS = 3.0
HUGE_BYTES = 3_000_000
EXA_KEY = "test-exa-key"

ESCAPES_HTML = (
    "<html><head><title>Escapes\x1b]0;pwned-title\x07 page</title></head><body>"
    "<p>Red \x1b[31malert\x1b[0m text.</p>"
    "<p>Clipboard \x1b]52;c;ZWNobyBwd25lZA==\x07grab.</p>"
    "<p>Overwrite secret\rcover and \x1b[2J\x1b[Hclear.</p>"
    "<p>Bidi \u202eevil\u202c and bell\x07 and nul\x00 done.</p>"
    "</body></html>"
)


def long_page(sections: int = 300) -> str:
    body = "".join(
        f"<h2>Section {n}</h2><p>Paragraph number {n} talks about tide {n * 7}.</p>"
        for n in range(sections)
    )
    body += "<p>The secret harbour is Kilchoman.</p>"
    return f"<html><head><title>Long tide table</title></head><body>{body}</body></html>"


class PageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output stays readable."""

    def _send(self, status: int, body: bytes, content_type: str | None, **headers: str) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        html = "text/html; charset=utf-8"
        if path in ("/article.html", "/unicode.html", "/docs.html"):
            self._send(200, (FIXTURES / path.lstrip("/")).read_bytes(), html)
        elif path == "/":
            self._send(200, b"<html><title>Home</title><body>Home page</body></html>", html)
        elif path == "/about.html":
            self._send(200, b"<html><title>About</title><body>About us.</body></html>", html)
        elif path == "/long.html":
            self._send(200, long_page().encode(), html)
        elif path == "/plain.txt":
            self._send(200, "plain text line one\nline two 【not a link】\n".encode(), "text/plain")
        elif path == "/latin1.html":
            body = "<html><head><meta charset='iso-8859-1'><title>Café</title></head>"
            body += "<body>Crème brûlée à Genève</body></html>"
            self._send(200, body.encode("iso-8859-1"), "text/html")
        elif path == "/sjis.html":
            body = "<html><title>日本</title><body>潮の満ち引き</body></html>".encode("shift_jis")
            self._send(200, body, "text/html; charset=shift_jis")
        elif path == "/no-type":
            self._send(200, b"<!doctype html><title>Untyped</title><p>sniffed html</p>", None)
        elif path == "/gzip.html":
            body = gzip.compress(b"<html><title>Zipped</title><body>compressed body</body></html>")
            self._send(200, body, html, Content_Encoding="gzip")
        elif path == "/escapes.html":
            self._send(200, ESCAPES_HTML.encode(), html)
        elif path == "/redirect":
            self._send(302, b"", html, Location="/article.html")
        elif path == "/redirect-twice":
            self._send(301, b"", html, Location="/redirect")
        elif path == "/redirect-loop":
            self._send(302, b"", html, Location="/redirect-loop")
        elif path == "/redirect-private":
            self._send(302, b"", html, Location="http://10.255.255.1/secret")
        elif path == "/redirect-file":
            self._send(302, b"", html, Location="file:///etc/passwd")
        elif path == "/slow.html":
            time.sleep(SLOW_SECONDS)
            self._send(200, b"<html><body>finally</body></html>", html)
        elif path == "/drip.html":
            self._drip()
        elif path == "/huge.html":
            self._huge()
        elif path == "/image.png":
            self._send(200, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "image/png")
        elif path == "/blob":
            self._send(200, b"\x00\x01\x02binary\x00" * 100, "application/octet-stream")
        elif path == "/server-error":
            self._send(500, b"boom", "text/plain")
        else:
            self._send(404, b"<html><body>Not here</body></html>", html)

    def _drip(self) -> None:
        """A body that keeps coming, one small chunk every 0.1 s for up to 5 s."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "50000")
        self.end_headers()
        try:
            for _ in range(50):
                self.wfile.write(b"<p>drip</p>" + b" " * 989)
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            return  # the client gave up, as it should

    def _huge(self) -> None:
        line = b"<p>" + b"tide " * 19 + b"</p>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(line) * (HUGE_BYTES // len(line))))
        self.end_headers()
        try:
            for _ in range(HUGE_BYTES // len(line)):
                self.wfile.write(line)
        except OSError:
            return


@dataclass
class ExaApi:
    """What the fake Exa server serves and what it was asked."""

    page_base: str
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)


def exa_handler(api: ExaApi) -> type[BaseHTTPRequestHandler]:
    class ExaHandler(BaseHTTPRequestHandler):
        """Speaks the slice of Exa's API that exa-py's search() and get_contents() use:
        POST /search and POST /contents with camelCase JSON and an x-api-key header."""

        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            api.requests.append((self.path, dict(self.headers), payload))
            if self.headers.get("x-api-key") != EXA_KEY:
                self._json(401, {"error": "Invalid API key"})
            elif self.path == "/search":
                self._json(200, self._search(payload))
            elif self.path == "/contents":
                self._json(200, self._contents(payload))
            else:
                self._json(404, {"error": f"no route {self.path}"})

        def _search(self, payload: dict[str, Any]) -> dict[str, Any]:
            pages = [
                ("/article.html", "Tides of the Northern Coast", ["Spring tide reaches 4.2 m."]),
                ("/docs.html", "tidectl reference", ["Run tidectl --port oban."]),
                ("/long.html", "Long tide table", ["Section after section of tides."]),
            ]
            results = [
                {
                    "id": api.page_base + path,
                    "url": api.page_base + path,
                    "title": title,
                    "score": 0.9 - index / 10,
                    "publishedDate": "2026-01-01T00:00:00.000Z",
                    "author": None,
                    "highlights": highlights,
                    "highlightScores": [0.5],
                }
                for index, (path, title, highlights) in enumerate(pages)
            ]
            return {
                "requestId": "req-1",
                "resolvedSearchType": "neural",
                "results": results[: payload.get("numResults", 10)],
                "costDollars": {"total": 0.005},
            }

        def _contents(self, payload: dict[str, Any]) -> dict[str, Any]:
            results, statuses = [], []
            for url in payload.get("urls", []):
                path = url.removeprefix(api.page_base)
                fixture = FIXTURES / path.lstrip("/")
                if url.startswith(api.page_base) and fixture.is_file():
                    html = fixture.read_text(encoding="utf-8")
                    title = "Tides of the Northern Coast" if "article" in path else path
                    results.append({"id": url, "url": url, "title": title, "text": html})
                    statuses.append({"id": url, "status": "success", "source": "cached"})
                else:
                    statuses.append(
                        {
                            "id": url,
                            "status": "error",
                            "error": {"tag": "CRAWL_NOT_FOUND", "httpStatusCode": 404},
                        }
                    )
            return {"requestId": "req-2", "results": results, "statuses": statuses}

    return ExaHandler


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run `handler` on 127.0.0.1 in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
