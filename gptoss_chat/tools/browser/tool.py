"""The `browser` builtin tool: `browser.search`, `browser.open`, `browser.find`.

Arguments and behaviour follow the browser namespace gpt-oss was trained with
(`ToolNamespaceConfig.browser()` in openai_harmony; reference: openai/gpt-oss
`gpt_oss/tools/simple_browser`). Every view the model gets is pushed on the session's history
and numbered by its cursor; the model cites `【cursor†Lstart-Lend】` against those numbers.

Calls that reach the network (search, opening a URL or an uncached link) need approval and
preview the query or URL; scrolling and `find` work on pages already shown and need none.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from openai_harmony import ToolNamespaceConfig

from gptoss_chat.tools.base import Proposal, Tool, ToolCall, ToolCallError, ToolResult, tool_message
from gptoss_chat.tools.browser.backends import Backend, BackendError
from gptoss_chat.tools.browser.citations import CitedAnswer, normalize_citations
from gptoss_chat.tools.browser.pages import (
    DEFAULT_VIEW_CHARS,
    Page,
    ViewError,
    find_in_page,
    render_view,
)
from gptoss_chat.tools.browser.safety import (
    ANY_NETWORKS,
    UrlGuard,
    UrlRefused,
    strip_terminal_controls,
)

Function = Literal["search", "open", "find"]
_SYNTAX_ONLY = UrlGuard(allowed_networks=ANY_NETWORKS)
_ALLOWED_ARGUMENTS: dict[str, set[str]] = {
    "search": {"query", "topn", "top_n", "source"},
    "open": {"id", "cursor", "loc", "num_lines", "view_source", "source"},
    "find": {"pattern", "cursor"},
}


@dataclass(frozen=True)
class BrowserAction:
    """A parsed, resolved browser call (the Proposal's payload)."""

    function: Function
    query: str = ""
    topn: int = 10
    url: str | None = None
    """The page to fetch, or None to show a page already in the history."""
    cursor: int = -1
    """The history entry to scroll, follow a link from, or search in."""
    use_cache: bool = False
    loc: int = -1
    num_lines: int = -1
    view_source: bool = False
    pattern: str = ""


@dataclass(frozen=True)
class BrowseOutcome:
    """What the UI may show about a finished call (never sent to the model)."""

    cursor: int
    url: str
    title: str
    first_line: int
    last_line: int
    total_lines: int
    note: str = ""


@dataclass
class BrowserHistory:
    """The session's browsing state: every view by cursor, and fetched pages by URL."""

    pages: list[Page] = field(default_factory=list)
    cache: dict[str, Page] = field(default_factory=dict)

    def page(self, cursor: int) -> Page:
        if not self.pages:
            raise ToolCallError("No pages to access! Use search or open a URL first.")
        if cursor == -1:
            return self.pages[-1]
        if not 0 <= cursor < len(self.pages):
            raise ToolCallError(
                f"Cursor `{cursor}` is out of range. "
                f"Available cursor indices: [0 - {len(self.pages) - 1}]."
            )
        return self.pages[cursor]

    def resolve_cursor(self, cursor: int) -> int:
        self.page(cursor)
        return len(self.pages) - 1 if cursor == -1 else cursor


class BrowserTool(Tool):
    name = "browser"

    def __init__(
        self,
        backend: Backend,
        *,
        view_chars: int = DEFAULT_VIEW_CHARS,
        max_search_results: int = 20,
    ) -> None:
        self.backend = backend
        self.view_chars = view_chars
        self.max_search_results = max_search_results
        self.history = BrowserHistory()
        self._lock = threading.Lock()

    def system_config(self) -> ToolNamespaceConfig:
        return ToolNamespaceConfig.browser()

    def normalize_citations(self, text: str, hide_partial: bool = True) -> CitedAnswer:
        """The session's citations resolved against what this browser showed."""
        return normalize_citations(text, list(self.history.pages), hide_partial)

    # -- propose: parse and resolve, no I/O --------------------------------------------------

    def propose(self, call: ToolCall) -> Proposal:
        function = call.function
        if function not in _ALLOWED_ARGUMENTS:
            raise ToolCallError(f"Unknown browser function `{function}`; use search, open or find.")
        arguments = call.json_arguments()
        unknown = sorted(set(arguments) - _ALLOWED_ARGUMENTS[function])
        if unknown:
            allowed = ", ".join(sorted(_ALLOWED_ARGUMENTS[function] - {"source", "top_n"}))
            raise ToolCallError(
                f"Unknown argument(s) for browser.{function}: {', '.join(unknown)} "
                f"(accepted: {allowed})"
            )
        with self._lock:
            if function == "search":
                return self._propose_search(call, arguments)
            if function == "open":
                return self._propose_open(call, arguments)
            return self._propose_find(call, arguments)

    def _propose_search(self, call: ToolCall, arguments: dict[str, Any]) -> Proposal:
        query = _string(arguments, "query", required=True).strip()
        if not query:
            raise ToolCallError("`query` must not be empty")
        topn = _integer(arguments, "topn", _integer(arguments, "top_n", 10))
        topn = max(1, min(topn, self.max_search_results))
        action = BrowserAction("search", query=query, topn=topn)
        return Proposal(
            tool=self.name,
            call=call,
            title="Search the web",
            preview=strip_terminal_controls(query),
            preview_kind="text",
            payload=action,
        )

    def _propose_open(self, call: ToolCall, arguments: dict[str, Any]) -> Proposal:
        link = arguments.get("id", -1)
        cursor = _integer(arguments, "cursor", -1)
        loc = _integer(arguments, "loc", -1)
        num_lines = _integer(arguments, "num_lines", -1)
        view_source = arguments.get("view_source", False)
        if not isinstance(view_source, bool):
            raise ToolCallError("`view_source` must be true or false")
        if isinstance(link, str) and link.strip().lstrip("-").isdigit():
            link = int(link)  # "3" is a link id, not a URL
        elif isinstance(link, float) and link.is_integer():
            link = int(link)
        if isinstance(link, str):
            url = link.strip()
            try:
                # Scheme and syntax now, so the user is never asked to approve file:///…;
                # addresses are checked by the backend when it connects.
                _SYNTAX_ONLY.check_url(url)
            except UrlRefused as exc:
                raise ToolCallError(str(exc)) from exc
            action = BrowserAction(
                "open", url=url, loc=loc, num_lines=num_lines, view_source=view_source
            )
            return self._fetch_proposal(call, action, f"Open {url}")
        if not isinstance(link, int) or isinstance(link, bool):
            raise ToolCallError("`id` must be a link id (number) or a URL (string)")
        page = self.history.page(cursor)
        cursor = self.history.resolve_cursor(cursor)
        if link >= 0:
            if link not in page.links:
                raise ToolCallError(f"Invalid link id `{link}`.")
            url = page.links[link]
            focus = page.focus_lines.get(link)
            if loc < 0 and focus is not None:
                loc = focus - 4 if focus > 4 else focus
            cached = url in self.history.cache and not view_source
            action = BrowserAction(
                "open",
                url=url,
                cursor=cursor,
                use_cache=cached,
                loc=loc,
                num_lines=num_lines,
                view_source=view_source,
            )
            if cached:
                return self._local_proposal(call, action, f"Show link {link} of page [{cursor}]")
            return self._fetch_proposal(call, action, f"Open link {link} of page [{cursor}]")
        if view_source:
            if not page.url or page.kind != "page":
                raise ToolCallError("Only a fetched page has a source to view.")
            action = BrowserAction("open", url=page.url, cursor=cursor, view_source=True)
            return self._fetch_proposal(call, action, f"View source of {page.url}")
        action = BrowserAction("open", cursor=cursor, loc=loc, num_lines=num_lines)
        return self._local_proposal(call, action, f"Scroll page [{cursor}]")

    def _propose_find(self, call: ToolCall, arguments: dict[str, Any]) -> Proposal:
        pattern = _string(arguments, "pattern", required=True)
        if not pattern.strip():
            raise ToolCallError("`pattern` must not be empty")
        cursor = _integer(arguments, "cursor", -1)
        page = self.history.page(cursor)
        if page.kind != "page":
            raise ToolCallError("Cannot run `find` on a search results page or find results page.")
        cursor = self.history.resolve_cursor(cursor)
        action = BrowserAction("find", cursor=cursor, pattern=pattern)
        return self._local_proposal(call, action, f"Find “{pattern}” in page [{cursor}]")

    def _fetch_proposal(self, call: ToolCall, action: BrowserAction, title: str) -> Proposal:
        return Proposal(
            tool=self.name,
            call=call,
            title=strip_terminal_controls(title),
            preview=strip_terminal_controls(action.url or ""),
            preview_kind="url",
            payload=action,
        )

    def _local_proposal(self, call: ToolCall, action: BrowserAction, title: str) -> Proposal:
        page = self.history.pages[action.cursor]
        return Proposal(
            tool=self.name,
            call=call,
            title=strip_terminal_controls(title),
            preview=strip_terminal_controls(action.url or action.pattern or page.url or page.title),
            preview_kind="text",
            needs_approval=False,
            payload=action,
        )

    # -- run: fetch, push onto the history, render ---------------------------------------------

    def run(self, proposal: Proposal) -> ToolResult:
        action: BrowserAction = proposal.payload
        author = f"browser.{action.function}"
        try:
            page = self._page_for(action)
        except BackendError as exc:
            if action.function == "search":
                message = f"Error during search for `{action.query}`: {exc}"
            else:
                message = f"Error fetching URL `{action.url}`: {exc}"
            return _error(author, message)
        except ToolCallError as exc:
            return _error(author, str(exc))
        with self._lock:
            cursor = len(self.history.pages)
            loc = max(action.loc, 0)
            try:
                view = render_view(page, cursor, loc, action.num_lines, self.view_chars)
            except ViewError as exc:
                return _error(author, str(exc))
            self.history.pages.append(page)
        outcome = BrowseOutcome(
            cursor=cursor,
            url=page.url,
            title=page.title,
            first_line=view.first_line,
            last_line=view.last_line,
            total_lines=len(page.lines),
            note=page.note,
        )
        return ToolResult(
            messages=[tool_message(author, view.text)],
            summary=_summary(action, page, view.first_line, view.last_line),
            data=outcome,
        )

    def _page_for(self, action: BrowserAction) -> Page:
        if action.function == "search":
            return self.backend.search(action.query, action.topn)
        if action.function == "find":
            with self._lock:
                page = self.history.page(action.cursor)
            return find_in_page(page, action.pattern)
        if action.url is None:
            with self._lock:
                return self.history.page(action.cursor)
        if action.use_cache:
            with self._lock:
                cached = self.history.cache.get(action.url)
            if cached is not None:
                return cached
        page = self.backend.fetch(action.url, action.view_source)
        with self._lock:
            # Under the final URL (after redirects; "view-source:…" for sources), so that find
            # results link back to it, and under the URL asked for, so links to it hit the cache.
            self.history.cache[page.url] = page
            if not action.view_source:
                self.history.cache[action.url] = page
        return page

    def close(self) -> None:
        self.backend.close()


def _error(author: str, text: str) -> ToolResult:
    # Error texts quote URLs and queries the model wrote; they reach the screen too.
    text = strip_terminal_controls(text)
    return ToolResult(messages=[tool_message(author, text)], summary=text[:120], is_error=True)


def _summary(action: BrowserAction, page: Page, first: int, last: int) -> str:
    if action.function == "search":
        return f"{len(page.links)} results for “{action.query}”"
    if action.function == "find":
        return f"{len(page.links)} matches for “{action.pattern}”"
    where = page.url or page.title
    note = f" ({page.note})" if page.note else ""
    return f"{where}: lines {first}-{last} of {len(page.lines) - 1}{note}"


def _string(arguments: dict[str, Any], key: str, required: bool = False) -> str:
    if key not in arguments:
        if required:
            raise ToolCallError(f"`{key}` is required")
        return ""
    value = arguments[key]
    if not isinstance(value, str):
        raise ToolCallError(f"`{key}` must be a string")
    return value


def _integer(arguments: dict[str, Any], key: str, default: int) -> int:
    value = arguments.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolCallError(f"`{key}` must be an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ToolCallError(f"`{key}` must be an integer")
    return int(value)
