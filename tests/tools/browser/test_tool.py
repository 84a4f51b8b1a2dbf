"""BrowserTool driven through propose/run, as the conversation core drives it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from openai_harmony import Role, ToolNamespaceConfig

from gptoss_chat.tools.base import Proposal, ToolCall, ToolCallError, ToolResult
from gptoss_chat.tools.browser.backends import ExaBackend, KeylessBackend
from gptoss_chat.tools.browser.tool import BrowseOutcome, BrowserTool
from tests.tools.browser.servers import EXA_KEY, ExaApi


def call(function: str, **arguments: object) -> ToolCall:
    return ToolCall(f"browser.{function}", json.dumps(arguments), content_type="<|constrain|>json")


def text_of(result: ToolResult) -> str:
    return result.messages[0].content[0].text


def do(tool: BrowserTool, function: str, **arguments: object) -> tuple[Proposal, ToolResult]:
    proposal = tool.propose(call(function, **arguments))
    return proposal, tool.run(proposal)


@pytest.fixture
def exa_tool(exa_api: tuple[str, ExaApi]) -> Iterator[BrowserTool]:
    base, _ = exa_api
    tool = BrowserTool(ExaBackend(EXA_KEY, base_url=base, timeout_s=5))
    yield tool
    tool.close()


@pytest.fixture
def web_tool(keyless: KeylessBackend) -> BrowserTool:
    return BrowserTool(keyless)


def test_system_config_is_the_trained_browser_namespace(web_tool: BrowserTool) -> None:
    config = web_tool.system_config()
    expected = ToolNamespaceConfig.browser()
    assert config.name == "browser" == web_tool.name
    assert config.description == expected.description
    assert [tool.name for tool in config.tools] == ["search", "open", "find"]
    assert web_tool.handles("browser.open") and not web_tool.handles("python")


def test_search_open_find_flow(exa_tool: BrowserTool, site: str) -> None:
    proposal, result = do(exa_tool, "search", query="tide tables", topn=2)
    assert proposal.needs_approval and proposal.preview == "tide tables"
    assert proposal.title == "Search the web"
    message = result.messages[0]
    assert message.author.role == Role.TOOL and message.author.name == "browser.search"
    assert message.recipient == "assistant"
    assert text_of(result).startswith("[0] tide tables\n**viewing lines [0 - 3] of 3**\n\nL0: ")
    assert result.summary == "2 results for “tide tables”"

    proposal, result = do(exa_tool, "open", id=0)
    assert proposal.needs_approval
    assert (proposal.preview_kind, proposal.preview) == ("url", f"{site}/article.html")
    assert proposal.title == "Open link 0 of page [0]"
    first_line = text_of(result).split("\n")[0]
    assert first_line == f"[1] Tides of the Northern Coast ({site}/article.html)"
    assert isinstance(result.data, BrowseOutcome) and result.data.cursor == 1

    proposal, result = do(exa_tool, "find", pattern="Oban")
    assert not proposal.needs_approval
    view = text_of(result)
    assert view.startswith("[2] Find results for text: `Oban` in `Tides of the Northern Coast`")
    assert "L0: # 【0†match at L" in view

    match_line = exa_tool.history.pages[2].focus_lines[0]
    proposal, result = do(exa_tool, "open", id=0)
    assert not proposal.needs_approval  # the page is in the session cache
    view = text_of(result)
    assert view.startswith(f"[3] Tides of the Northern Coast ({site}/article.html)")
    assert f"**viewing lines [{match_line - 4} - " in view
    assert [page.kind for page in exa_tool.history.pages] == ["search", "page", "find", "page"]


def test_find_across_pages_by_cursor(web_tool: BrowserTool, site: str) -> None:
    do(web_tool, "open", id=f"{site}/article.html")  # cursor 0
    do(web_tool, "open", id=f"{site}/docs.html")  # cursor 1
    _, in_docs = do(web_tool, "find", pattern="port")
    _, in_article = do(web_tool, "find", pattern="port", cursor=0)
    assert "in `tidectl reference`" in text_of(in_docs).split("\n")[0]
    assert "in `Harmony Tides — Coastal Notes`" in text_of(in_article).split("\n")[0]
    assert "Port Ellen" in text_of(in_article) and "Port Ellen" not in text_of(in_docs)
    assert "tidectl --port oban" in text_of(in_docs)
    # find results link back to the page they came from
    assert set(web_tool.history.pages[3].links.values()) == {f"{site}/article.html"}


def test_find_refuses_results_pages(exa_tool: BrowserTool) -> None:
    do(exa_tool, "search", query="tides")
    with pytest.raises(ToolCallError, match="Cannot run `find` on a search results page"):
        exa_tool.propose(call("find", pattern="tide"))


def test_scrolling_long_page_needs_no_approval(web_tool: BrowserTool, site: str) -> None:
    _, result = do(web_tool, "open", id=f"{site}/long.html")
    first = result.data
    assert first.first_line == 0 and first.last_line < first.total_lines - 1
    assert len(text_of(result)) < 4500

    proposal, result = do(web_tool, "open", loc=100, num_lines=3)
    assert not proposal.needs_approval
    lines = text_of(result).split("\n")
    assert lines[0] == f"[1] Long tide table ({site}/long.html)"
    assert lines[1] == f"**viewing lines [100 - 102] of {first.total_lines - 1}**"
    assert [line.split(":")[0] for line in lines[3:]] == ["L100", "L101", "L102"]

    _, found = do(web_tool, "find", pattern="kilchoman")
    assert "The secret harbour is Kilchoman." in text_of(found)
    _, landed = do(web_tool, "open", id=0)
    assert "L" + str(web_tool.history.pages[2].focus_lines[0]) + ": The secret" in text_of(landed)


def test_open_by_url_needs_approval_and_refetches(web_tool: BrowserTool, site: str) -> None:
    proposal = web_tool.propose(call("open", id=f"{site}/about.html"))
    assert proposal.needs_approval and proposal.title == f"Open {site}/about.html"
    web_tool.run(proposal)
    again = web_tool.propose(call("open", id=f"{site}/about.html"))
    assert again.needs_approval  # a URL typed by the model is always fetched afresh


def test_link_id_as_digit_string_and_number_forms(web_tool: BrowserTool, site: str) -> None:
    do(web_tool, "open", id=f"{site}/article.html")
    assert web_tool.propose(call("open", id="1")).preview == f"{site}/about.html"
    assert web_tool.propose(call("open", id=1.0)).preview == f"{site}/about.html"


def test_view_source(web_tool: BrowserTool, site: str) -> None:
    do(web_tool, "open", id=f"{site}/docs.html")
    proposal, result = do(web_tool, "open", view_source=True)
    assert proposal.needs_approval and proposal.preview == f"{site}/docs.html"
    assert text_of(result).startswith(f"[1] 127.0.0.1:{site.rsplit(':', 1)[1]} (view-source:")
    assert "&lt;" not in text_of(result) and "<h1>tidectl</h1>" in text_of(result)


@pytest.mark.parametrize(
    ("function", "arguments", "message"),
    [
        ("open", {"id": 0}, "No pages to access!"),
        ("find", {"pattern": "x"}, "No pages to access!"),
        ("search", {}, "`query` is required"),
        ("search", {"query": "  "}, "`query` must not be empty"),
        ("search", {"query": "q", "count": 3}, "Unknown argument"),
        ("search", {"query": 5}, "`query` must be a string"),
        ("open", {"id": [1]}, "`id` must be a link id"),
        ("open", {"id": "http://x.test", "loc": "ten"}, "`loc` must be an integer"),
        ("open", {"id": "http://x.test", "view_source": "yes"}, "`view_source` must be true"),
        ("scroll", {}, "Unknown browser function `scroll`"),
    ],
)
def test_bad_calls_raise_tool_call_error(
    web_tool: BrowserTool, function: str, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ToolCallError, match=message):
        web_tool.propose(call(function, **arguments))


def test_bad_json_is_a_tool_call_error(web_tool: BrowserTool) -> None:
    with pytest.raises(ToolCallError, match="not valid JSON"):
        web_tool.propose(ToolCall("browser.search", "{query: tides"))


def test_cursor_and_link_errors_name_the_valid_range(web_tool: BrowserTool, site: str) -> None:
    do(web_tool, "open", id=f"{site}/article.html")
    with pytest.raises(ToolCallError, match=r"Cursor `5` is out of range.*\[0 - 0\]"):
        web_tool.propose(call("open", id=0, cursor=5))
    with pytest.raises(ToolCallError, match="Invalid link id `42`"):
        web_tool.propose(call("open", id=42))


def test_run_errors_become_tool_messages(web_tool: BrowserTool, site: str) -> None:
    _, result = do(web_tool, "open", id=f"{site}/missing")
    assert result.is_error
    assert (
        text_of(result)
        == f"Error fetching URL `{site}/missing`: HTTP 404 Not Found for {site}/missing"
    )
    assert result.messages[0].author.name == "browser.open"
    assert web_tool.history.pages == []  # failed calls add no cursor

    do(web_tool, "open", id=f"{site}/about.html")
    _, result = do(web_tool, "open", loc=999)
    assert result.is_error and "Cannot exceed page maximum" in text_of(result)
    assert len(web_tool.history.pages) == 1


def test_search_topn_is_capped(exa_tool: BrowserTool, exa_api: tuple[str, ExaApi]) -> None:
    _, api = exa_api
    proposal = exa_tool.propose(call("search", query="q", topn=500))
    assert proposal.payload.topn == 20
    exa_tool.run(proposal)
    assert api.requests[-1][2]["numResults"] == 20


def test_citations_resolve_against_the_session(exa_tool: BrowserTool, site: str) -> None:
    do(exa_tool, "search", query="tides")
    do(exa_tool, "open", id=0)
    answer = exa_tool.normalize_citations("Spring tides reach 4.2 m【1†L6-L7】 and more【0†L2】")
    assert answer.text == "Spring tides reach 4.2 m [1] and more [2]"
    first, second = answer.references
    assert (first.url, first.line_start, first.line_end) == (f"{site}/article.html", 6, 7)
    assert "4.2 metres" in first.excerpt
    assert second.url == f"{site}/article.html"  # the search result the cited line links to


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://files.test/x", "only http and https"),
        ("http://", "URL has no host"),
    ],
)
def test_unfetchable_urls_are_refused_before_approval(
    web_tool: BrowserTool, url: str, message: str
) -> None:
    with pytest.raises(ToolCallError, match=message):
        web_tool.propose(call("open", id=url))


def test_private_addresses_fail_at_run_with_a_message(web_tool: BrowserTool) -> None:
    # The guard refuses before any packet is sent (10.x is never contacted).
    _, result = do(web_tool, "open", id="http://10.20.30.40/admin")
    assert result.is_error
    assert "refusing to connect to non-public address 10.20.30.40" in text_of(result)


def test_previews_and_errors_carry_no_terminal_controls(web_tool: BrowserTool, site: str) -> None:
    proposal = web_tool.propose(call("search", query="tides\x1b]0;pwn\x07 now"))
    assert proposal.preview == "tides now"
    proposal = web_tool.propose(call("open", id=f"{site}/missing\x1b[2J"))
    assert "\x1b" not in proposal.preview and "\x1b" not in proposal.title
    result = web_tool.run(proposal)
    assert result.is_error and "\x1b" not in text_of(result)


def test_find_in_page_source_links_back_to_the_source(web_tool: BrowserTool, site: str) -> None:
    do(web_tool, "open", id=f"{site}/docs.html")
    do(web_tool, "open", view_source=True)
    do(web_tool, "find", pattern="<h1>")
    proposal, result = do(web_tool, "open", id=0)
    assert not proposal.needs_approval
    assert proposal.preview == f"view-source:{site}/docs.html"
    assert "<h1>tidectl</h1>" in text_of(result)
