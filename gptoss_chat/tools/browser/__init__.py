"""The `browser` tool: search, open and find, as gpt-oss was trained to browse.

Build one per session: `BrowserTool(make_backend("auto", exa_api_key=..., allow_local=False))`.
"""

from gptoss_chat.tools.browser.backends import (
    BACKEND_NAMES,
    Backend,
    BackendError,
    ExaBackend,
    FetchLimits,
    HttpFetcher,
    KeylessBackend,
    make_backend,
)
from gptoss_chat.tools.browser.citations import CitedAnswer, Reference, normalize_citations
from gptoss_chat.tools.browser.safety import UrlGuard, strip_terminal_controls
from gptoss_chat.tools.browser.tool import BrowseOutcome, BrowserAction, BrowserTool

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendError",
    "BrowseOutcome",
    "BrowserAction",
    "BrowserTool",
    "CitedAnswer",
    "ExaBackend",
    "FetchLimits",
    "HttpFetcher",
    "KeylessBackend",
    "Reference",
    "UrlGuard",
    "make_backend",
    "normalize_citations",
    "strip_terminal_controls",
]
