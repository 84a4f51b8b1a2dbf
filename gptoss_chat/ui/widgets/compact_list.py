"""Markdown lists drawn by one widget instead of four per item.

Textual builds a list item as `Horizontal(MarkdownBullet, Vertical(MarkdownParagraph))`: a
two-item list is nine widgets, and mounting a widget (styles, component classes) and its first
layout cost ~0.5 ms each here, which made lists the dearest part of a streamed answer (the
benchmark answer rendered twice as fast without its two-item lists). When every item of a list
is a single paragraph (the common case), `CompactBulletList`/`CompactOrderedList` draw the
bullets and the wrapped paragraphs themselves, cell for cell as Textual's widgets would: the
bullet in its own width and colour, each paragraph wrapped at the width its `Vertical` would
have, continuation lines blank under the bullet. Any other list (nested lists, code or several
paragraphs in an item) is composed by Textual as before.

Not kept: Textual's text selection inside a compact list (no highlight is drawn, and a selection
that touches the list copies the whole list).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace

from rich.style import Style as RichStyle
from textual.app import ComposeResult
from textual.content import Content
from textual.geometry import Size
from textual.strip import Strip
from textual.visual import Visual
from textual.widgets._markdown import (
    MarkdownBlock,
    MarkdownBulletList,
    MarkdownListItem,
    MarkdownOrderedList,
    MarkdownOrderedListItem,
    MarkdownParagraph,
)

BULLET_COMPONENT = "compact-list--bullet"


def simple_items(blocks: list[MarkdownBlock]) -> list[MarkdownListItem] | None:
    """The items, when every block is an item holding exactly one plain paragraph."""
    items: list[MarkdownListItem] = []
    for block in blocks:
        if not isinstance(block, MarkdownListItem) or len(block._blocks) != 1:
            return None
        paragraph = block._blocks[0]
        if type(paragraph) is not MarkdownParagraph or paragraph._blocks:
            return None
        items.append(block)
    return items or None


# The bullet in MarkdownBullet's colours.
BULLET_CSS = """
{name} > .compact-list--bullet {{
    color: $text-primary;
}}
{name}:light > .compact-list--bullet {{
    color: $text-secondary;
}}
"""


class CompactListMixin:
    """Draws a list of one-paragraph items as lines; see the module docstring. A plain mixin:
    Textual's CSS follows the first widget base class, which must stay Textual's list."""

    _items: list[tuple[str, Content]] | None = None
    _line_cache: tuple[tuple[int, object, object], list[Strip]] | None = None

    def item_symbols(self, items: list[MarkdownListItem]) -> list[str]:
        raise NotImplementedError

    def compose_list(self) -> ComposeResult:
        """Textual's own composition (for lists that are not simple)."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        items = simple_items(self._blocks)
        if items is None:
            yield from self.compose_list()
            return
        symbols = self.item_symbols(items)
        self._items = [
            (symbol, item._blocks[0]._content) for symbol, item in zip(symbols, items, strict=True)
        ]
        self._blocks.clear()

    @property
    def is_compact(self) -> bool:
        return self._items is not None

    @property
    def compact_text(self) -> str:
        """The list as plain text, a line per item (tests, selection)."""
        return "\n".join(f"{symbol}{content.plain}" for symbol, content in self._items or ())

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self._items is None:
            return super().get_content_height(container, viewport, width)
        return len(self._compact_lines(width))

    def render_line(self, y: int) -> Strip:
        if self._items is None:
            return super().render_line(y)
        lines = self._compact_lines(self.size.width)
        if y < len(lines):
            return lines[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def notify_style_update(self) -> None:
        self._line_cache = None
        super().notify_style_update()

    def get_selection(self, selection: object) -> tuple[str, str] | None:
        if self._items is None:
            return super().get_selection(selection)
        # The cells' offsets are per item, not per list: a selection that touches the list
        # copies all of it rather than a wrong part.
        return self.compact_text, "\n"

    def _compact_lines(self, width: int) -> list[Strip]:
        """Each item: the bullet (in its own colour) beside the paragraph wrapped at the width
        left, as Horizontal(MarkdownBullet, Vertical(MarkdownParagraph)) would draw it."""
        style = self.visual_style
        bullet_color = self.get_component_styles(BULLET_COMPONENT).color
        key = (width, style, bullet_color)
        if self._line_cache is not None and self._line_cache[0] == key:
            return self._line_cache[1]
        bullet_style = replace(style, foreground=bullet_color)
        blank_style = RichStyle(bgcolor=style.rich_style.bgcolor)  # as Textual pads lines
        under_bullet = bullet_style.rich_style  # MarkdownBullet fills the item's height
        lines: list[Strip] = []
        for symbol, content in self._items or ():
            bullet = Content(symbol)
            bullet_width = bullet.cell_length
            text_width = max(0, width - bullet_width)
            bullet_strips = Visual.to_strips(
                self, bullet, bullet_width, None, bullet_style, apply_selection=False
            )
            text_strips = Visual.to_strips(
                self, content, text_width, None, style, apply_selection=False
            ) or [Strip.blank(text_width, blank_style)]
            for row, text in enumerate(text_strips):
                if row < len(bullet_strips):
                    left = bullet_strips[row].extend_cell_length(bullet_width, under_bullet)
                else:
                    left = Strip.blank(bullet_width, under_bullet)
                right = text.extend_cell_length(text_width, blank_style).crop(0, text_width)
                lines.append(Strip.join([left, right]))
        self._line_cache = (key, lines)
        return lines


class CompactBulletList(CompactListMixin, MarkdownBulletList):
    COMPONENT_CLASSES = MarkdownBulletList.COMPONENT_CLASSES | {BULLET_COMPONENT}
    DEFAULT_CSS = BULLET_CSS.format(name="CompactBulletList")
    SCOPED_CSS = False

    def item_symbols(self, items: list[MarkdownListItem]) -> list[str]:
        return [item.bullet for item in items]

    def compose_list(self) -> ComposeResult:
        yield from MarkdownBulletList.compose(self)


class CompactOrderedList(CompactListMixin, MarkdownOrderedList):
    COMPONENT_CLASSES = MarkdownOrderedList.COMPONENT_CLASSES | {BULLET_COMPONENT}
    DEFAULT_CSS = BULLET_CSS.format(name="CompactOrderedList")
    SCOPED_CSS = False

    def item_symbols(self, items: list[MarkdownListItem]) -> list[str]:
        # As MarkdownOrderedList.compose numbers them.
        suffix = ". "
        start = 1
        if isinstance(items[0], MarkdownOrderedListItem):
            with suppress(ValueError):
                start = int(items[0].bullet)
        size = max(len(f"{number}{suffix}") for number in range(start, start + len(items)))
        return [f"{number}{suffix}".rjust(size + 1) for number in range(start, start + len(items))]

    def compose_list(self) -> ComposeResult:
        yield from MarkdownOrderedList.compose(self)
