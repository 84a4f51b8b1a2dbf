"""Containers that paint nothing but their background, cheaply.

Textual renders a widget's lines through a per-widget cache that is thrown away whenever the
widget's size changes. The containers of a streaming turn (the turn, the answer column, the
analysis contents, each Markdown document) grow on every append, so every frame re-rendered
every visible row of each of them, padding and background included: a third of the cost of a
frame. Their rows are all the same blank strip, so this builds it once per frame instead.
"""

from __future__ import annotations

from textual.content import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class BlankBackground:
    """Mixed in before the widget class (`class TurnView(BlankBackground, Widget)`); not a
    widget itself, so Textual's CSS still sees the widget's own bases and default CSS. Only for
    containers without border, content or per-row effects (the caller's duty)."""

    def render_lines(self: Widget, crop: Region) -> list[Strip]:  # type: ignore[misc]
        # What the styles cache would draw for a blank row: padding and content alike in the
        # background blended over what is beneath, then the app's filters (NO_COLOR...).
        base_background, background = self.background_colors
        strip = Strip.blank(crop.width, Style(background=base_background + background).rich_style)
        for line_filter in self.get_line_filters():
            strip = strip.apply_filter(line_filter, background)
        return [strip] * crop.height
