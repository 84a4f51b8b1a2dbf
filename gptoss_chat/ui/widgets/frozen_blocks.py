"""Finished Markdown blocks drawn by one widget, from the lines Textual painted for them.

Textual lays out and walks every widget of the screen on each frame, and a Markdown document is
one widget per paragraph, heading and fence (more for lists), so a long streamed answer makes
every frame dearer as it grows (~0.2 s per frame at 140 blocks on 2 cores). Blocks before the
last one never change again, so once they have been laid out and painted, `paint_blocks` copies
their lines (the Markdown's own background, then each widget on top, clipped like the
compositor clips it) into a `FrozenBlocks`, and the blocks are hidden: `display: none` takes
them out of layout and painting but keeps them mounted, so when the copy goes stale (another
width, another theme) they are shown again, painted, and copied anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from textual.geometry import Region, Size
from textual.strip import Strip
from textual.theme import Theme
from textual.widget import Widget
from textual.widgets import Markdown

REFREEZE_TRIES = 5
"""Frames to wait for thawed blocks to be laid out again before copying them."""


class PaintedLines:
    """What the screen showed for a run of blocks: one strip per row, `width` cells wide."""

    def __init__(self, lines: list[Strip], width: int, margin_top: int, margin_bottom: int):
        self.lines = lines
        self.width = width
        self.margin_top = margin_top
        self.margin_bottom = margin_bottom


def paint_blocks(document: Widget, blocks: Sequence[Widget]) -> PaintedLines | None:
    """Copy the lines of `blocks` (consecutive, laid-out children of `document`) as the
    compositor drew them, or None when one of them has no place on the screen (not laid out
    yet, or the layout map is being rebuilt)."""
    area = document.content_region  # screen coordinates, also for rows scrolled out of view
    regions = [block.region for block in blocks]
    if not area or any(not region for region in regions):
        return None
    top, bottom = regions[0].y, regions[-1].bottom
    if any(a.bottom > b.y for a, b in pairwise(regions)) or bottom <= top:
        return None  # out of order: an older layout than the DOM; try again after the next one
    outer = document.region
    canvas = document.render_lines(
        Region(area.x - outer.x, top - outer.y, area.width, bottom - top)
    )
    for block in blocks:
        _paint(block, area, canvas, area.x, top)
    return PaintedLines(
        canvas, area.width, blocks[0].styles.margin.top, blocks[-1].styles.margin.bottom
    )


def _paint(widget: Widget, clip: Region, canvas: list[Strip], left: int, top: int) -> None:
    """Draw `widget`, then its children over it, as the compositor does: each container clips
    its children to its region less padding and border."""
    region = widget.region
    visible = region.intersection(clip)
    if not visible:
        return
    strips = widget.render_lines(visible.translate((-region.x, -region.y)))
    x = visible.x - left
    for row, strip in enumerate(strips, start=visible.y - top):
        line = canvas[row]
        end = x + strip.cell_length
        canvas[row] = Strip.join([line.crop(0, x), strip, line.crop(end, line.cell_length)])
    inner = clip.intersection(region.shrink(widget.styles.gutter))
    for child in widget.displayed_children:
        _paint(child, inner, canvas, left, top)


class FrozenBlocks(Widget):
    """Stands in for `blocks` (hidden) with a copy of their lines."""

    DEFAULT_CSS = """
    FrozenBlocks {
        width: 1fr;
        height: auto;
        padding: 0;
        border: none;
    }
    """

    def __init__(self, blocks: Sequence[Widget], painted: PaintedLines) -> None:
        super().__init__()
        self.blocks = list(blocks)
        self._painted = painted
        self.styles.margin = (painted.margin_top, 0, painted.margin_bottom, 0)

    @property
    def text(self) -> str:
        """The plain text of the copied lines (tests and debugging)."""
        return "\n".join(line.text.rstrip() for line in self._painted.lines)

    def on_mount(self) -> None:
        # Hide the blocks only now: until this copy is mounted, the compositor skips it.
        with self.app.batch_update():
            for block in self.blocks:
                block.display = False
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._painted.lines)

    def get_line_filters(self) -> Sequence:
        return ()  # the copied strips went through the app's filters when they were painted

    def render_line(self, y: int) -> Strip:
        lines = self._painted.lines
        return lines[y] if y < len(lines) else Strip.blank(self.size.width)

    def on_resize(self) -> None:
        if self.display and self.size.width and self.size.width != self._painted.width:
            self.thaw()

    def _theme_changed(self, _theme: Theme) -> None:
        if self.display:
            self.thaw()

    def thaw(self) -> None:
        """Show the real blocks again (the copy is stale) and copy them after they are
        painted."""
        with self.app.batch_update():
            for block in self.blocks:
                block.display = True
            self.display = False
        self.call_after_refresh(self._refreeze, REFREEZE_TRIES)

    def _refreeze(self, tries: int) -> None:
        document = self.parent
        if self.display or not isinstance(document, Widget):
            return
        painted = paint_blocks(document, self.blocks)
        if painted is None:
            if tries > 1:  # not laid out yet (a theme change restyles first)
                self.call_after_refresh(self._refreeze, tries - 1)
            return  # else it stays thawed: correct, only slower to lay out
        self._painted = painted
        self.styles.margin = (painted.margin_top, 0, painted.margin_bottom, 0)
        with self.app.batch_update():
            self.display = True
            for block in self.blocks:
                block.display = False
        self.refresh(layout=True)

    async def action_link(self, href: str) -> None:
        """A click on a copied link: what the block it came from would have done."""
        document = self.parent
        if isinstance(document, Markdown):
            self.post_message(Markdown.LinkClicked(document, href))
