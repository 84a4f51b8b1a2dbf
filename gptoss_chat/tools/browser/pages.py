"""Pages as the model sees them: text with numbered links, wrapped into numbered lines.

The view format follows openai/gpt-oss `gpt_oss/tools/simple_browser` (the reference the model's
browsing was published with):

    [3] Page title (https://example.org/page)
    **viewing lines [0 - 41] of 120**

    L0:
    L1: URL: https://example.org/page
    L2: # Heading
    L3: Text with a 【0†link】 and an 【1†outside link†other.org】.

Lines are the page text wrapped at 80 columns. A link becomes `【id†text】` (same site) or
`【id†text†domain】` so that `open(id=…)` can follow it. Search and find results are pages too.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from functools import cache, cached_property
from html import unescape as html_unescape
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote, urljoin, urlsplit

import lxml.etree
import lxml.html

from gptoss_chat.tools.browser.safety import strip_terminal_controls

if TYPE_CHECKING:
    from inscriptis.model.config import ParserConfig

PageKind = Literal["page", "search", "find"]

WRAP_WIDTH = 80
DEFAULT_VIEW_CHARS = 4000
"""How much text one view shows when `num_lines` is not given: about 1,000 tokens, the budget
the reference tool uses (it counts tokens; counting characters keeps this tokenizer-free)."""
FIND_CONTEXT_LINES = 4
FIND_MAX_RESULTS = 50

# Tags whose text is never page content.
_DROPPED_TAGS = ("script", "style", "noscript", "template", "svg", "math", "head", "iframe")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_TAG = re.compile(r"<[^>]*>")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_LINK_MARKER = re.compile(r"【\d+†(?P<text>[^†】]+)(?:†[^†】]+)?】")
_PARTIAL_LINK_AT_START = re.compile(r"^[^【】]*】")
_PARTIAL_LINK_AT_END = re.compile(r"【\d*(?:†(?P<text>[^†】]*)(?:†[^†】]*)?)?$")


@dataclass(frozen=True)
class Page:
    """One page in the browser's history: a fetched document or a results page."""

    url: str
    """The address shown in the header and linked from citations; '' for search results."""
    title: str
    text: str
    """The body with link markers, not yet wrapped."""
    links: dict[int, str] = field(default_factory=dict)
    """Link id -> absolute URL, for `open(id=…)`."""
    focus_lines: dict[int, int] = field(default_factory=dict)
    """For find results: link id -> the matched line of the target page, where open() lands."""
    kind: PageKind = "page"
    note: str = ""
    """Why the page may be incomplete (cut at the size cap), shown to the user, not the model."""

    @cached_property
    def lines(self) -> list[str]:
        return wrap_lines(self.text)


def wrap_lines(text: str, width: int = WRAP_WIDTH) -> list[str]:
    """Split into lines of at most `width` columns, keeping empty lines and inner whitespace."""
    lines: list[str] = []
    for line in text.split("\n"):
        if not line:
            lines.append("")
            continue
        lines.extend(
            textwrap.wrap(line, width=width, replace_whitespace=False, drop_whitespace=False)
        )
    return lines


def strip_link_markers(text: str) -> str:
    """Text with every `【id†text(†domain)】` replaced by its text, even when cut at the ends."""
    text = _PARTIAL_LINK_AT_START.sub("", text)
    text = _PARTIAL_LINK_AT_END.sub(lambda match: match.group("text") or "", text)
    return _LINK_MARKER.sub(lambda match: match.group("text"), text)


def domain_of(url: str) -> str:
    return urlsplit(url).netloc


def _neutralise_markers(text: str) -> str:
    """Page text must not forge link markers: swap the brackets for look-alikes."""
    return text.replace("【", "〖").replace("】", "〗").replace("\u200b", "")


def _merge_whitespace(text: str) -> str:
    return " ".join(text.split())


def _replace_with_text(node: lxml.html.HtmlElement, text: str) -> None:
    """Put `text` where `node` was, keeping the text that followed it."""
    parent = node.getparent()
    if parent is None:
        return
    tail = node.tail or ""
    previous = node.getprevious()
    if previous is None:
        parent.text = (parent.text or "") + text + tail
    else:
        previous.tail = (previous.tail or "") + text + tail
    parent.remove(node)


def _number_links(root: lxml.html.HtmlElement, base_url: str) -> dict[int, str]:
    """Replace each `<a href>` with a link marker; returns id -> absolute URL."""
    own_domain = domain_of(base_url)
    ids: dict[str, int] = {}
    for anchor in list(root.iter("a")):
        href = (anchor.get("href") or "").strip()
        text = _merge_whitespace(anchor.text_content()).replace("†", "‡")
        if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
            _replace_with_text(anchor, text)
            continue
        try:
            target = urljoin(base_url, href) if base_url else href
            scheme = urlsplit(target).scheme
        except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 literal)
            scheme = ""
        if scheme not in ("http", "https") or not text:
            _replace_with_text(anchor, text)
            continue
        link_id = ids.setdefault(target, len(ids))
        domain = domain_of(target)
        suffix = "" if domain == own_domain else f"†{domain}"
        _replace_with_text(anchor, f"【{link_id}†{text}{suffix}】")
    return {link_id: url for url, link_id in ids.items()}


def _describe_images(root: lxml.html.HtmlElement) -> None:
    for number, image in enumerate(list(root.iter("img"))):
        name = image.get("alt") or image.get("title")
        _replace_with_text(image, f"[Image {number}: {name}]" if name else f"[Image {number}]")


def prepare_html(html: str, url: str) -> tuple[str, str, dict[int, str]]:
    """Clean `html` for conversion: returns (title, html with link markers, link table).

    Shared by every HTML-to-text library so that the comparison in
    docs/browser-html-to-text.md measures only the conversion itself.
    """
    # lxml refuses str input that declares its own encoding; the text is decoded already.
    html = _XML_DECLARATION.sub("", _neutralise_markers(html), count=1)
    try:
        root = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return "", "", {}
    title = _merge_whitespace(root.findtext(".//title") or "")
    base = root.find(".//base[@href]")
    base_url = urljoin(url, base.get("href")) if base is not None else url
    for tag in _DROPPED_TAGS:
        for node in list(root.iter(tag)):
            _replace_with_text(node, "")
    for comment in list(root.iter(lxml.etree.Comment)):
        _replace_with_text(comment, "")
    links = _number_links(root, base_url)
    _describe_images(root)
    for block in root.iter("pre"):
        # Flatten <pre><code>…: inscriptis keeps whitespace only in text directly inside <pre>.
        text = block.text_content()
        for child in list(block):
            block.remove(child)
        block.text = text
    cleaned = lxml.etree.tostring(root, encoding="unicode", method="html")
    return title, cleaned, links


def html_to_text(html: str) -> str:
    """Readable text of prepared HTML: blocks on their own lines, tables cell by cell.

    inscriptis won the comparison in docs/browser-html-to-text.md: it lays out tables and
    lists like a text browser, adds no Markdown escapes, and is the fastest of the four.
    """
    from inscriptis import get_text

    return get_text(html, _inscriptis_config())


@cache
def _inscriptis_config() -> ParserConfig:
    """inscriptis' strict profile, plus definition lists laid out as blocks (it glues them)."""
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.html_properties import Display
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.html_element import HtmlElement

    css = dict(CSS_PROFILES["strict"])
    css["dt"] = HtmlElement(display=Display.block)
    css["dd"] = HtmlElement(display=Display.block, padding_inline=4)
    return ParserConfig(css=css, display_links=False, display_images=False)


def tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, no blank ends."""
    text = _TRAILING_SPACE.sub("\n", text.replace("\xa0", " "))
    return _BLANK_LINES.sub("\n\n", text).strip("\n")


def html_page(html: str, url: str, title: str | None = None, note: str = "") -> Page:
    """A fetched HTML document as a Page (terminal controls stripped)."""
    html = strip_terminal_controls(html)
    try:
        found_title, prepared, links = prepare_html(html, url)
        body = tidy_text(html_to_text(prepared)) if prepared else ""
    except (ValueError, RecursionError, lxml.etree.LxmlError):
        # Markup the parsers cannot take still has readable text: keep it, without links.
        found_title, links = "", {}
        body = tidy_text(_neutralise_markers(html_unescape(_TAG.sub(" ", html))))
    return Page(
        url=url,
        title=title or found_title or domain_of(url) or url,
        text=f"\nURL: {url}\n{body}",
        links=links,
        note=note,
    )


def text_page(text: str, url: str, title: str | None = None, note: str = "") -> Page:
    """A plain-text document (or page source) as a Page (terminal controls stripped)."""
    body = tidy_text(_neutralise_markers(strip_terminal_controls(text)))
    return Page(
        url=url, title=title or domain_of(url) or url, text=f"\nURL: {url}\n{body}", note=note
    )


@dataclass(frozen=True)
class SearchHit:
    url: str
    title: str
    snippet: str = ""


def search_results_page(query: str, hits: list[SearchHit]) -> Page:
    """Search results as a page of their own: one numbered link per hit, then its snippet."""
    links: dict[int, str] = {}
    items: list[str] = []
    for hit in hits:
        link_id = len(links)
        links[link_id] = hit.url
        title = _merge_whitespace(_neutralise_markers(strip_terminal_controls(hit.title)))
        title = (title or hit.url).replace("†", "‡")
        snippet = _merge_whitespace(_neutralise_markers(strip_terminal_controls(hit.snippet)))
        items.append(f"  * 【{link_id}†{title}†{domain_of(hit.url)}】 {snippet}".rstrip())
    body = "\n".join(items) if items else f"No results for `{query}`."
    return Page(url="", title=query, text=f"# Search Results\n\n{body}", links=links, kind="search")


def find_in_page(page: Page, pattern: str) -> Page:
    """Case-insensitive matches of `pattern` in `page`, each a link back to its line."""
    needle = pattern.lower()
    lines = strip_link_markers("\n".join(page.lines)).split("\n")
    chunks: list[str] = []
    focus_lines: dict[int, int] = {}
    index = 0
    while index < len(lines) and len(chunks) < FIND_MAX_RESULTS:
        if needle not in lines[index].lower():
            index += 1
            continue
        match_id = len(chunks)
        snippet = "\n".join(lines[index : index + FIND_CONTEXT_LINES])
        chunks.append(f"# 【{match_id}†match at L{index}】\n{snippet}")
        focus_lines[match_id] = index
        index += FIND_CONTEXT_LINES
    text = "\n\n".join(chunks) if chunks else f"No `find` results for pattern: `{pattern}`"
    return Page(
        url=f"{page.url}/find?pattern={quote(pattern)}",
        title=f"Find results for text: `{pattern}` in `{page.title}`",
        text=text,
        links=dict.fromkeys(focus_lines, page.url),
        focus_lines=focus_lines,
        kind="find",
    )


class ViewError(Exception):
    """The requested window does not exist; the text goes back to the model."""


@dataclass(frozen=True)
class View:
    cursor: int
    first_line: int
    last_line: int
    text: str


def render_view(
    page: Page,
    cursor: int,
    loc: int = 0,
    num_lines: int = -1,
    view_chars: int = DEFAULT_VIEW_CHARS,
) -> View:
    """The tool message for `page` at `cursor`: header, scroll position, numbered lines."""
    lines = page.lines
    total = len(lines)
    if loc < 0 or loc >= total:
        raise ViewError(
            f"Invalid location parameter: `{loc}`. Cannot exceed page maximum of {total - 1}."
        )
    if num_lines > 0:
        end = min(loc + num_lines, total)
    else:
        end, used = loc, 0
        while end < total:
            used += len(lines[end]) + len(f"L{end}: \n")
            if used > view_chars and end > loc:
                break
            end += 1
    numbered = "\n".join(f"L{number}: {lines[number]}" for number in range(loc, end))
    header = page.title
    if page.url:
        shown_url = unquote(page.url)
        header += f" ({shown_url[:1021] + '...' if len(shown_url) > 1024 else shown_url})"
    scrollbar = f"**viewing lines [{loc} - {end - 1}] of {total - 1}**"
    text = f"[{cursor}] {header}\n{scrollbar}\n\n{numbered}"
    return View(cursor=cursor, first_line=loc, last_line=end - 1, text=text)
