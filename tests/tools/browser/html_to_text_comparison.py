"""Measure HTML-to-text libraries on the browser's fixture pages (not a test; a measurement).

    PYTHONPATH=$PWD python -m tests.tools.browser.html_to_text_comparison

Every library gets the same input: the fixture after `prepare_html` (links already numbered,
scripts dropped), so only the conversion differs. Each check is one thing a reader of the page
(the model) needs; the table counts passed checks and times the long page (best of 5 means
of 10 runs).
Results are recorded in docs/browser-html-to-text.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from gptoss_chat.tools.browser.pages import html_to_text, prepare_html, tidy_text

FIXTURES = Path(__file__).parent / "fixtures"


def with_html2text(html: str) -> str:
    import html2text

    converter = html2text.HTML2Text()
    converter.ignore_links = converter.ignore_images = converter.ignore_emphasis = True
    converter.body_width = 0
    converter.unicode_snob = True
    return converter.handle(html)


def with_markdownify(html: str) -> str:
    from markdownify import markdownify

    return markdownify(html, strip=["a", "img"], heading_style="ATX", escape_misc=False)


def with_trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_tables=True, include_formatting=False) or ""


LIBRARIES: dict[str, Callable[[str], str]] = {
    "inscriptis 2.7.6": html_to_text,
    "html2text 2025.4.15": with_html2text,
    "markdownify 1.2.3": with_markdownify,
    "trafilatura 2.3.1": with_trafilatura,
}

Check = tuple[str, Callable[[str], bool]]


def own_line(phrase: str) -> Callable[[str], bool]:
    bullet = re.compile(r"^\s*(?:[*#>]+|-(?=\s)|\d+\.)?\s*")
    return lambda text: any(bullet.sub("", line).strip() == phrase for line in text.split("\n"))


def contains(phrase: str) -> Callable[[str], bool]:
    return lambda text: phrase in text


def lacks(pattern: str) -> Callable[[str], bool]:
    return lambda text: re.search(pattern, text) is None


def row_together(*cells: str) -> Callable[[str], bool]:
    pattern = r"\s+\|?\s*".join(re.escape(cell) for cell in cells)
    return lambda text: re.search(pattern, text) is not None


CHECKS: dict[str, list[Check]] = {
    "article.html": [
        ("all 4 link markers kept", lambda t: len(set(re.findall(r"【(\d+)†", t))) == 4),
        ("nav links kept", contains("【1†About us】")),
        ("heading on its own line", own_line("Tides of the Northern Coast")),
        ("list items on own lines", own_line("Waterproof boots")),
        ("table row cells apart", row_together("Port Ellen", "06:12", "4.2 m")),
        ("code indentation kept", contains('\n    return TABLE[port]["high"]')),
        ("no markdown escapes", lacks(r"\\[_*\-.#\[\]]")),
        ("no emphasis marks", lacks(r"\*\*|_spring")),
        ("image alt kept", contains("[Image 0: Map of the coast]")),
        ("script/style dropped", lacks("SCRIPT_SHOULD|hidden-style-rule|NOSCRIPT")),
        ("footer kept", contains("2026 Coastal Notes")),
    ],
    "docs.html": [
        ("sidebar links kept", contains("【0†Install】")),
        ("inline code kept", contains("tidectl --port oban")),
        ("definition terms apart", own_line("--port NAME")),
        ("table row cells apart", row_together("3", "Unknown port")),
        ("ordered items on own lines", own_line("Install it.")),
        ("<br> breaks the line", own_line("Line two after a break")),
        ("blockquote kept", contains("Tides wait for no one.")),
    ],
    "unicode.html": [
        ("umlauts", contains("Grüße aus Zürich")),
        ("CJK", contains("潮汐表在这里")),
        ("Arabic", contains("جدول المد والجزر")),
        ("emoji and superscripts", contains("🌊🐚") and contains("x² + y²")),
        ("cyrillic link", contains("【0†Ссылка на статью】")),
    ],
}


def long_page_html(paragraphs: int = 400) -> str:
    body = "".join(
        f"<h2>Section {n}</h2><p>Paragraph {n} with <a href='/p{n}'>link {n}</a> "
        f"and <b>bold</b> words.</p><ul><li>item {n}a</li><li>item {n}b</li></ul>"
        for n in range(paragraphs)
    )
    return f"<html><head><title>Long</title></head><body>{body}</body></html>"


def _time_ms(convert: Callable[[str], str], html: str, repeat: int = 10) -> float:
    """Mean milliseconds per conversion over `repeat` runs (the CPU is shared: take the best of
    several such means)."""
    start = time.perf_counter()
    for _ in range(repeat):
        convert(html)
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    prepared = {
        name: prepare_html((FIXTURES / name).read_text(encoding="utf-8"), "http://site.test/")[1]
        for name in CHECKS
    }
    long_prepared = prepare_html(long_page_html(), "http://site.test/")[1]
    total = sum(len(checks) for checks in CHECKS.values())
    print(f"| library | checks passed (of {total}) | failed | ms per long page, best of 5 |")
    print("|---|---|---|---|")
    for library, convert in LIBRARIES.items():
        failed: list[str] = []
        for name, checks in CHECKS.items():
            text = tidy_text(convert(prepared[name]))
            failed += [f"{name}: {label}" for label, check in checks if not check(text)]
        per_page_ms = min(_time_ms(convert, long_prepared) for _ in range(5))
        print(
            f"| {library} | {total - len(failed)} | {'; '.join(failed) or '-'} "
            f"| {per_page_ms:.1f} |"
        )


if __name__ == "__main__":
    main()
