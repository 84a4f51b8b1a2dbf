"""Citations in the model's answer, `【cursor†L9-L11】`, turned into references the UI can link.

The browser's system message teaches the model to cite `【{cursor}†L{start}(-L{end})?】`, where
the cursor numbers the views it was shown. `normalize_citations` is a pure function over the
session's page history (a list indexed by cursor): each citation becomes a numbered marker
`[n]` and a `Reference` with the source URL, title, line range and the cited lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gptoss_chat.tools.browser.pages import Page, strip_link_markers

_CITATION = re.compile(r"【(?P<cursor>\d+)†(?P<lines>[^†】]+)(?:†[^†】]*)?】")
_LINE_RANGE = re.compile(r"^\s*L(?P<start>\d+)(?:\s*-\s*L?(?P<end>\d+))?\s*$")
_PARTIAL_AT_END = re.compile(r"【[^】]*$")
_LINK_ID = re.compile(r"【(\d+)†")
EXCERPT_CHARS = 400


@dataclass(frozen=True)
class Reference:
    number: int
    """The `[n]` marker that replaced the citation in the text."""
    cursor: int
    url: str | None
    """The source page; None when the cited view has no address (e.g. search results)."""
    title: str
    line_start: int
    line_end: int
    excerpt: str
    """The cited lines as the model saw them, links reduced to their text."""

    @property
    def lines_label(self) -> str:
        if self.line_start == self.line_end:
            return f"L{self.line_start}"
        return f"L{self.line_start}-L{self.line_end}"


@dataclass(frozen=True)
class CitedAnswer:
    text: str
    """The answer with each resolvable citation replaced by `[n]`."""
    references: list[Reference]
    has_partial_citation: bool = False
    """The text ended inside a citation (while streaming); that tail was dropped."""

    def markdown(self) -> str:
        """The text with linked markers and a numbered list of sources, for Markdown views."""
        by_number = {reference.number: reference for reference in self.references}

        def link(match: re.Match[str]) -> str:
            reference = by_number.get(int(match.group(1)))
            if reference is None or reference.url is None:
                return match.group(0)
            return f"[[{reference.number}]]({reference.url})"

        body = re.sub(r"\[(\d+)\]", link, self.text)
        if not self.references:
            return body
        sources = [
            f"{reference.number}. "
            + (f"[{reference.title}]({reference.url})" if reference.url else reference.title)
            + f" ({reference.lines_label})"
            for reference in self.references
        ]
        return body + "\n\n" + "\n".join(sources)


def normalize_citations(
    text: str, history: Sequence[Page], hide_partial: bool = True
) -> CitedAnswer:
    """Replace `【cursor†Lstart-Lend】` citations in `text` using `history[cursor]`.

    A citation whose cursor or line range does not resolve is left as written.
    """
    has_partial = False
    if hide_partial and (partial := _PARTIAL_AT_END.search(text)):
        text, has_partial = text[: partial.start()], True
    numbers: dict[tuple[int, int, int], int] = {}
    references: list[Reference] = []

    def substitute(match: re.Match[str]) -> str:
        reference = _resolve(int(match.group("cursor")), match.group("lines"), history)
        if reference is None:
            return match.group(0)
        key = (reference.cursor, reference.line_start, reference.line_end)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            references.append(replace(reference, number=numbers[key]))
        marker = f"[{numbers[key]}]"
        before = match.string[match.start() - 1] if match.start() > 0 else " "
        return marker if before.isspace() or before in "([" else " " + marker

    return CitedAnswer(_CITATION.sub(substitute, text), references, has_partial)


def _resolve(cursor: int, lines: str, history: Sequence[Page]) -> Reference | None:
    range_match = _LINE_RANGE.match(lines)
    if range_match is None or cursor >= len(history):
        return None
    page = history[cursor]
    start = int(range_match.group("start"))
    end = int(range_match.group("end") or start)
    start, end = min(start, end), max(start, end)
    cited = page.lines[start : end + 1]
    if not cited:
        return None
    return Reference(
        number=0,
        cursor=cursor,
        url=_source_url(page, cited),
        title=page.title,
        line_start=start,
        line_end=end,
        excerpt=strip_link_markers("\n".join(cited))[:EXCERPT_CHARS],
    )


def _source_url(page: Page, cited: list[str]) -> str | None:
    """Where the cited lines come from: the page itself, the page a find ran in, or for search
    results the first result link among the cited lines."""
    if page.kind == "find" and page.links:
        return next(iter(page.links.values()))
    if page.url:
        return page.url
    for line in cited:
        for link_id in _LINK_ID.findall(line):
            if int(link_id) in page.links:
                return page.links[int(link_id)]
    return None
