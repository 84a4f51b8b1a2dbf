from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptoss_chat.tools.browser.pages import (
    Page,
    SearchHit,
    ViewError,
    find_in_page,
    html_page,
    render_view,
    search_results_page,
    strip_link_markers,
    text_page,
    wrap_lines,
)
from tests.tools.browser.servers import FIXTURES

BASE = "http://coast.test/notes/article.html"


@pytest.fixture(scope="module")
def article() -> Page:
    return html_page((FIXTURES / "article.html").read_text(encoding="utf-8"), BASE)


def test_links_are_numbered_absolute_and_deduplicated(article: Page) -> None:
    assert article.links == {
        0: "http://coast.test/",
        1: "http://coast.test/about.html",
        2: "https://tides.example.org/port-ellen",
        3: "http://coast.test/long.html",
    }
    assert "【1†About us】" in article.text
    assert "【1†same link again】" in article.text  # same URL, same id
    assert "【2†harbour office†tides.example.org】" in " ".join(article.text.split())


def test_non_navigable_links_become_plain_text(article: Page) -> None:
    assert "Skip to tides" in article.text and "【" not in article.text.split("Skip")[0][-3:]
    assert "write to us" in article.text and "mailto" not in article.text
    assert "Do nothing" in article.text and "javascript" not in article.text


def test_page_text_cannot_forge_link_markers(article: Page) -> None:
    assert "〖like these〗" in article.text
    assert "【like these】" not in article.text


def test_scripts_styles_dropped_images_described(article: Page) -> None:
    assert "SCRIPT_SHOULD_NOT_APPEAR" not in article.text
    assert "hidden-style-rule" not in article.text
    assert "NOSCRIPT" not in article.text
    assert "[Image 0: Map of the coast]" in article.text


def test_page_starts_with_its_url_and_keeps_structure(article: Page) -> None:
    assert article.lines[:2] == ["", f"URL: {BASE}"]
    assert "  * Waterproof boots" in article.lines
    assert any(line.split() == ["Port", "Ellen", "06:12", "4.2", "m"] for line in article.lines)
    assert '    return TABLE[port]["high"]' in article.lines


def test_wrap_lines_keeps_empty_lines_and_width() -> None:
    text = "short\n\n" + "word " * 40
    lines = wrap_lines(text)
    assert lines[:2] == ["short", ""]
    assert all(len(line) <= 80 for line in lines)
    assert "".join(lines[2:]) == "word " * 40


def test_render_view_format(article: Page) -> None:
    view = render_view(article, cursor=3, loc=2, num_lines=3)
    assert view.text.split("\n")[:4] == [
        f"[3] Harmony Tides — Coastal Notes ({BASE})",
        f"**viewing lines [2 - 4] of {len(article.lines) - 1}**",
        "",
        f"L2: {article.lines[2]}",
    ]
    assert view.text.split("\n")[4:] == [f"L3: {article.lines[3]}", f"L4: {article.lines[4]}"]
    assert (view.first_line, view.last_line) == (2, 4)


def test_render_view_window_follows_the_character_budget() -> None:
    page = text_page("\n".join(f"line {n} " + "x" * 60 for n in range(200)), "http://t.test/")
    view = render_view(page, cursor=0, view_chars=1000)
    assert 10 <= view.last_line <= 15
    assert len(view.text) < 1300
    whole = render_view(page, cursor=0, num_lines=10_000)
    assert whole.last_line == len(page.lines) - 1


@pytest.mark.parametrize("loc", [-1, 10_000])
def test_render_view_rejects_locations_outside_the_page(article: Page, loc: int) -> None:
    with pytest.raises(ViewError, match="Cannot exceed page maximum"):
        render_view(article, cursor=0, loc=loc)


def test_search_results_page_format() -> None:
    page = search_results_page(
        "tides",
        [
            SearchHit("https://a.test/x", "Tide † tables", "High water \x1b[31mtimes"),
            SearchHit("https://b.test/y", "", ""),
        ],
    )
    assert page.kind == "search" and page.url == ""
    assert page.lines == [
        "# Search Results",
        "",
        "  * 【0†Tide ‡ tables†a.test】 High water times",
        "  * 【1†https://b.test/y†b.test】",
    ]
    assert page.links == {0: "https://a.test/x", 1: "https://b.test/y"}
    header = render_view(page, cursor=0).text.split("\n")[0]
    assert header == "[0] tides"


def test_find_in_page_is_case_insensitive_and_links_back(article: Page) -> None:
    found = find_in_page(article, "PORT ELLEN")
    assert found.kind == "find"
    assert found.title == "Find results for text: `PORT ELLEN` in `Harmony Tides — Coastal Notes`"
    assert found.url == f"{BASE}/find?pattern=PORT%20ELLEN"
    first_line = found.lines[0]
    assert first_line.startswith("# 【0†match at L")
    matched = int(first_line.split("match at L")[1].rstrip("】"))
    assert "port ellen" in strip_link_markers(article.lines[matched]).lower()
    assert found.focus_lines[0] == matched
    assert set(found.links.values()) == {BASE}
    assert len(found.links) == 2  # the paragraph and the table row


def test_find_matches_text_of_links_and_reports_no_match(article: Page) -> None:
    assert len(find_in_page(article, "about us").links) == 1
    empty = find_in_page(article, "kilimanjaro")
    assert empty.text == "No `find` results for pattern: `kilimanjaro`"
    assert empty.links == {}


def test_strip_link_markers_handles_cut_markers() -> None:
    assert strip_link_markers("see 【3†the docs†d.test】 now") == "see the docs now"
    assert strip_link_markers("docs†d.test】 tail 【4†hal") == " tail hal"


def test_plain_text_page_neutralises_markers_and_controls() -> None:
    page = text_page("a 【0†fake】 \x1b[1mbold\x1b[0m", "http://t.test/a.txt")
    assert page.lines[-1] == "a 〖0†fake〗 bold"
    assert page.links == {}


@pytest.mark.parametrize(
    ("html", "phrase"),
    [
        ("<a href='http://[::1'>broken ipv6</a>", "broken ipv6"),
        ("<?xml version='1.0' encoding='utf-8'?><html><body>declared</body></html>", "declared"),
        ("<base href='javascript:alert(1)'><a href='x'>relative</a>", "relative"),
        ("<", "<"),
        ("", ""),
    ],
)
def test_odd_markup_still_gives_a_page(html: str, phrase: str) -> None:
    page = html_page(html, "http://odd.test/")
    assert page.text.startswith("\nURL: http://odd.test/")
    assert phrase in page.text
    assert all(url.startswith("http") for url in page.links.values())


MARKUP_PIECES = "<>/a=\"' href:【】†\x1b[0m\x07\x9b\r\n&;#xpretd"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(MARKUP_PIECES), max_size=300))
def test_any_text_becomes_a_safe_page(html: str) -> None:
    page = html_page(html, "http://fuzz.test/")
    shown = page.title + "\n".join(page.lines)
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown and "\r" not in shown
    # Every 【 on the page opens a marker this code made, for a link it knows.
    markers = re.findall(r"【(\d+)†[^】]*】", page.text)
    assert page.text.count("【") == len(markers)
    assert {int(link_id) for link_id in markers} <= set(page.links)
