from __future__ import annotations

import pytest

from gptoss_chat.tools.browser.citations import normalize_citations
from gptoss_chat.tools.browser.pages import Page, SearchHit, find_in_page, search_results_page

ARTICLE = Page(
    url="https://coast.test/tides",
    title="Tides",
    text="\n".join(f"line {n} about 【0†tides】 number {n}" for n in range(20)),
    links={0: "https://coast.test/more"},
)
OTHER = Page(url="https://other.test/b", title="Other", text="alpha\nbeta\ngamma")
SEARCH = search_results_page(
    "tides", [SearchHit("https://r0.test/", "R0", "zero"), SearchHit("https://r1.test/", "R1")]
)
HISTORY = [SEARCH, ARTICLE, OTHER, find_in_page(ARTICLE, "number 7")]


@pytest.mark.parametrize(
    ("answer", "text", "cited"),
    [
        ("Tides rise【1†L3-L5】.", "Tides rise [1].", [(1, 3, 5)]),
        ("One line 【2†L1】 here", "One line [1] here", [(2, 1, 1)]),
        ("Reversed【1†L5-L3】", "Reversed [1]", [(1, 3, 5)]),
        ("Spaced【1†L2 - L4】", "Spaced [1]", [(1, 2, 4)]),
        ("Bare end number【1†L2-4】", "Bare end number [1]", [(1, 2, 4)]),
        ("Same twice【1†L3】 and【1†L3】", "Same twice [1] and [1]", [(1, 3, 3)]),
        ("Two【1†L3】【2†L0】", "Two [1] [2]", [(1, 3, 3), (2, 0, 0)]),
        ("(see【1†L3】)", "(see [1])", [(1, 3, 3)]),
        ("With domain【2†L1†other.test】", "With domain [1]", [(2, 1, 1)]),
    ],
)
def test_citations_become_numbered_references(
    answer: str, text: str, cited: list[tuple[int, int, int]]
) -> None:
    result = normalize_citations(answer, HISTORY)
    assert result.text == text
    assert [(r.cursor, r.line_start, r.line_end) for r in result.references] == cited
    assert [r.number for r in result.references] == list(range(1, len(cited) + 1))


@pytest.mark.parametrize(
    "answer",
    [
        "Unknown cursor【9†L1】",
        "Line past the end【2†L40】",
        "Not a line range【1†tides】",
        "No citation at all",
    ],
)
def test_unresolvable_citations_stay_as_written(answer: str) -> None:
    result = normalize_citations(answer, HISTORY)
    assert result.text == answer
    assert result.references == []


def test_reference_carries_url_title_and_excerpt() -> None:
    (reference,) = normalize_citations("x【1†L3-L4】", HISTORY).references
    assert reference.url == "https://coast.test/tides"
    assert reference.title == "Tides"
    assert reference.lines_label == "L3-L4"
    assert reference.excerpt == "line 3 about tides number 3\nline 4 about tides number 4"


def test_search_results_cite_the_result_link() -> None:
    (reference,) = normalize_citations("x【0†L3】", HISTORY).references
    assert reference.url == "https://r1.test/"
    (header,) = normalize_citations("x【0†L0】", HISTORY).references
    assert header.url is None


def test_find_results_cite_the_searched_page() -> None:
    (reference,) = normalize_citations("x【3†L1】", HISTORY).references
    assert reference.url == "https://coast.test/tides"
    assert "number 7" in reference.excerpt


def test_partial_citation_at_the_end_is_hidden_while_streaming() -> None:
    result = normalize_citations("Tides rise【1†L3", HISTORY)
    assert result.text == "Tides rise" and result.has_partial_citation
    kept = normalize_citations("Tides rise【1†L3", HISTORY, hide_partial=False)
    assert kept.text == "Tides rise【1†L3" and not kept.has_partial_citation


def test_markdown_links_markers_and_lists_sources() -> None:
    result = normalize_citations("Rise【1†L3】 and search【0†L0】.", HISTORY)
    assert result.markdown() == (
        "Rise [[1]](https://coast.test/tides) and search [2].\n\n"
        "1. [Tides](https://coast.test/tides) (L3)\n"
        "2. tides (L0)"
    )


def test_history_is_not_modified() -> None:
    before = [page.text for page in HISTORY]
    normalize_citations("a【1†L1】【2†L2】", HISTORY)
    assert [page.text for page in HISTORY] == before
