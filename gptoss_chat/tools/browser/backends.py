"""Where pages and search results come from.

- `ExaBackend`: Exa's search and contents API through the `exa-py` client (`EXA_API_KEY`). Its
  base URL can point elsewhere (tests run a local server speaking the same API).
- `KeylessBackend`: no account needed. `open` fetches the URL itself over HTTP (`HttpFetcher`,
  behind the URL guard); `search` asks the `ddgs` metasearch package, and says plainly when that
  is unavailable (offline, rate-limited) instead of pretending there were no results.

Both return `Page`s; every failure is a `BackendError` whose text is shown to the model.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urljoin

import httpcore
import httpx

from gptoss_chat.tools.browser.pages import (
    Page,
    SearchHit,
    domain_of,
    html_page,
    search_results_page,
    text_page,
)
from gptoss_chat.tools.browser.safety import (
    ANY_NETWORKS,
    GuardedNetworkBackend,
    UrlGuard,
    UrlRefused,
)

VIEW_SOURCE_PREFIX = "view-source:"
USER_AGENT = "gptoss-chat-browser/0.1 (+https://github.com/openai/gpt-oss)"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


_T = TypeVar("_T")


class BackendError(Exception):
    """A search or fetch failed; the text goes back to the model."""


class Backend(Protocol):
    source: str
    """What the system message lists after `sources=` (e.g. 'web')."""

    def search(self, query: str, topn: int) -> Page: ...

    def fetch(self, url: str, view_source: bool = False) -> Page: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float = 15.0
    """For the whole fetch, redirects and a slowly dripping body included."""
    max_bytes: int = 2_000_000
    """Bytes of (decompressed) body read; the rest of a larger page is cut off."""
    max_redirects: int = 5


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport whose connections go through the URL guard (see GuardedNetworkBackend).

    httpx does not take a network backend, so the pool is replaced by one built the same way
    with the guarded backend; `_pool` is the attribute HTTPTransport sends requests through.
    """

    def __init__(self, guard: UrlGuard, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            http1=True,
            http2=False,
            network_backend=GuardedNetworkBackend(guard),
        )


class HttpFetcher:
    """Fetch one URL directly: guard every hop, follow redirects, cap time and size, decode."""

    def __init__(
        self,
        guard: UrlGuard,
        limits: FetchLimits = FetchLimits(),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context`: which certificates to trust (default: the system's)."""
        self.guard = guard
        self.limits = limits
        self._client = httpx.Client(
            transport=GuardedTransport(guard, ssl_context),
            follow_redirects=False,  # followed by hand so that each hop is checked
            trust_env=False,  # a proxy would hide the real destination from the guard
            timeout=httpx.Timeout(limits.timeout_s),
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
            },
        )

    def fetch(self, url: str, view_source: bool = False) -> Page:
        deadline = time.monotonic() + self.limits.timeout_s
        original = url
        try:
            for _ in range(self.limits.max_redirects + 1):
                self.guard.check_url(url)
                with self._client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(str(response.url), response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        reason = response.reason_phrase or "error"
                        raise BackendError(f"HTTP {response.status_code} {reason} for {url}")
                    return self._page(response, url, view_source, deadline)
        except UrlRefused as exc:
            raise BackendError(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise BackendError(f"timed out after {self.limits.timeout_s:g}s") from exc
        except httpx.ConnectError as exc:  # the guard's refusals arrive here too
            raise BackendError(f"cannot connect: {exc}") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}") from exc
        except (httpx.InvalidURL, UnicodeError) as exc:  # UnicodeError: a bad IDNA host name
            raise BackendError(f"invalid URL {url!r}: {exc}") from exc
        raise BackendError(f"more than {self.limits.max_redirects} redirects from {original}")

    def _page(self, response: httpx.Response, url: str, view_source: bool, deadline: float) -> Page:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        body, truncated = self._read(response.iter_bytes(), deadline)
        kind = _classify(content_type, body)
        if kind == "binary":
            shown = content_type or "binary data"
            raise BackendError(
                f"{url} is {shown}, not a web page; only HTML and text can be opened"
            )
        text = _decode(body, response.charset_encoding, is_html=kind == "html")
        note = ""
        if truncated:
            size = f"{self.limits.max_bytes:,} bytes"
            note = f"cut at {size}"
            text += f"\n\n[Page truncated: only the first {size} were read.]"
        if view_source:
            return text_page(text, VIEW_SOURCE_PREFIX + url, title=domain_of(url), note=note)
        if kind == "html":
            return html_page(text, url, note=note)
        return text_page(text, url, note=note)

    def _read(self, chunks: Iterator[bytes], deadline: float) -> tuple[bytes, bool]:
        """At most max_bytes of the body, stopping at the deadline; (body, was it cut)."""
        limit = self.limits.max_bytes
        received = bytearray()
        for chunk in chunks:
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("deadline passed while reading the body")
            received += chunk
            if len(received) > limit:
                # Cut after the last newline near the cap: a newline never sits inside a
                # multi-byte character, so the kept part still decodes cleanly.
                cut = received.rfind(b"\n", max(0, limit - 4096), limit)
                return bytes(received[: cut + 1 if cut >= 0 else limit]), True
        return bytes(received), False

    def close(self) -> None:
        self._client.close()


def _classify(content_type: str, body: bytes) -> str:
    """'html', 'text' or 'binary', from the declared type, else from the first bytes."""
    if content_type in _HTML_TYPES:
        return "html"
    if content_type.startswith("text/") or content_type in _TEXT_TYPES:
        return "text"
    if content_type.endswith(("+json", "+xml")):
        return "text"
    if content_type and content_type != "application/octet-stream":
        return "binary"
    head = body[:1024]
    if b"\x00" in head:
        return "binary"
    if re.search(rb"<(?:!doctype html|html|body)", head, re.I):
        return "html"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text"


def _decode(body: bytes, declared: str | None, is_html: bool) -> str:
    """Text of `body`: the HTTP charset, else a <meta charset>, else UTF-8, else a guess."""
    candidates = [declared]
    if is_html and (meta := _META_CHARSET.search(body[:4096])):
        candidates.append(meta.group(1).decode("ascii"))
    for encoding in candidates:
        if encoding:
            try:
                return body.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("utf-8", errors="replace")


SearchProvider = Callable[[str, int], list[SearchHit]]


def ddgs_search(query: str, topn: int) -> list[SearchHit]:
    """Web results from the `ddgs` metasearch package (no account needed)."""
    from ddgs import DDGS

    return [
        SearchHit(url=row.get("href", ""), title=row.get("title", ""), snippet=row.get("body", ""))
        for row in DDGS(timeout=10).text(query, max_results=topn)
        if row.get("href")
    ]


class KeylessBackend:
    """Direct HTTP for `open`; a keyless search package for `search`."""

    source = "web"

    def __init__(self, fetcher: HttpFetcher, search_provider: SearchProvider = ddgs_search) -> None:
        self._fetcher = fetcher
        self._search_provider = search_provider

    def search(self, query: str, topn: int) -> Page:
        try:
            hits = self._search_provider(query, topn)
        except Exception as exc:  # any provider failure (offline, rate limit) means "unavailable"
            raise BackendError(
                f"keyless web search is unavailable ({type(exc).__name__}: {exc}). "
                "Open a URL directly with browser.open, or use the Exa backend (EXA_API_KEY)."
            ) from exc
        return search_results_page(query, hits[:topn])

    def fetch(self, url: str, view_source: bool = False) -> Page:
        return self._fetcher.fetch(url, view_source)

    def close(self) -> None:
        self._fetcher.close()


class ExaBackend:
    """Exa's /search and /contents through exa-py.

    Exa fetches pages on its side, so only the scheme and host syntax are checked here: this
    machine's private addresses are out of Exa's reach anyway.
    """

    source = "web"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.exa.ai",
        timeout_s: float = 30.0,
        snippet_chars: int = 400,
    ) -> None:
        from exa_py import Exa

        self._exa = Exa(api_key=api_key, base_url=base_url, timeout=timeout_s)
        self._guard = UrlGuard(allowed_networks=ANY_NETWORKS)
        self._snippet_chars = snippet_chars

    def search(self, query: str, topn: int) -> Page:
        response = self._call(
            f"search for `{query}`",
            lambda: self._exa.search(query, num_results=topn, contents={"highlights": True}),
        )
        hits = [
            SearchHit(url=result.url, title=result.title or "", snippet=self._snippet(result))
            for result in response.results
            if result.url
        ]
        return search_results_page(query, hits)

    def fetch(self, url: str, view_source: bool = False) -> Page:
        try:
            self._guard.check_url(url)
        except UrlRefused as exc:
            raise BackendError(str(exc)) from exc
        response = self._call(
            f"fetching `{url}`",
            lambda: self._exa.get_contents([url], text={"include_html_tags": True}),
        )
        for status in response.statuses or []:
            if status.status != "success" and status.error is not None:
                code = status.error.http_status_code
                detail = f"{status.error.tag or 'error'}" + (f", HTTP {code}" if code else "")
                raise BackendError(f"Exa could not fetch {url} ({detail})")
        if not response.results:
            raise BackendError(f"Exa returned no contents for {url}")
        result = response.results[0]
        if view_source:
            return text_page(result.text or "", VIEW_SOURCE_PREFIX + url, title=result.title)
        return html_page(result.text or "", result.url or url, title=result.title)

    def _snippet(self, result: object) -> str:
        highlights = getattr(result, "highlights", None) or []
        text = " … ".join(highlights) or getattr(result, "summary", None) or ""
        text = text or (getattr(result, "text", None) or "")
        return text[: self._snippet_chars]

    @staticmethod
    def _call(what: str, request: Callable[[], _T]) -> _T:
        import requests
        from exa_py.errors import ExaTimeoutError

        try:
            return request()
        except (ValueError, KeyError, TypeError, ExaTimeoutError, requests.RequestException) as exc:
            # ValueError: HTTP errors and non-JSON bodies; KeyError/TypeError: unexpected JSON.
            raise BackendError(f"Exa error while {what}: {exc}") from exc

    def close(self) -> None:
        """exa-py opens a connection per request; nothing to release."""


BackendName = str
BACKEND_NAMES = ("auto", "exa", "keyless")


def make_backend(
    name: BackendName = "auto",
    *,
    exa_api_key: str | None = None,
    exa_base_url: str | None = None,
    allow_local: bool = False,
    limits: FetchLimits = FetchLimits(),
) -> Backend:
    """The backend a user asked for; 'auto' is Exa when a key is given, else keyless.

    Raises ValueError with a message for the user when Exa is asked for without a key.
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown browser backend {name!r}; choose one of {BACKEND_NAMES}")
    if name == "exa" or (name == "auto" and exa_api_key):
        if not exa_api_key:
            raise ValueError("the Exa backend needs an API key: set EXA_API_KEY")
        return ExaBackend(
            exa_api_key, base_url=exa_base_url or "https://api.exa.ai", timeout_s=limits.timeout_s
        )
    guard = UrlGuard.allowing_local() if allow_local else UrlGuard()
    return KeylessBackend(HttpFetcher(guard, limits))
