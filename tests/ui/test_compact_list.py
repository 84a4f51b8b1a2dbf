"""Lists of one-paragraph items drawn by one widget look exactly like Textual's list widgets."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown

from gptoss_chat.ui.widgets.compact_list import CompactBulletList
from gptoss_chat.ui.widgets.streamed_markdown import StreamedMarkdown


def screen_cells(app: App) -> list[list[tuple[str, str, object]]]:
    """Each cell as (character, style without meta, its click action): the meta's `offset`
    (where a cell sits in the widget that drew it, for selections) differs by design."""
    strips = app.screen._compositor.render_strips()
    return [
        [
            (ch, str(seg.style.clear_meta_and_links()), seg.style.meta.get("@click"))
            if seg.style
            else (ch, "", None)
            for seg in strip
            for ch in seg.text
        ]
        for strip in strips
    ]


LISTS = """\
Before the list.

- dirty pages are written back first;
- a miss costs one read, and this item is long enough to wrap onto a second and even a third \
line when the column is narrow, with *emphasis*, **strong**, `code` and a [link](https://x.y);
- third

1. one
2. two, also long enough to wrap onto another line when the screen is narrow enough for it;
3. three
4. four
5. five
6. six
7. seven
8. eight
9. nine
10. ten

Between.

7. starts at seven
8. eight

* loose list

* with blank lines between items

- outer item
  - nested item (the outer list is Textual's, the nested one compact)
  - another nested item

- an item with two paragraphs

  the second paragraph

After the lists.
"""


class Host(App):
    CSS = "Markdown { background: $surface; }"

    def __init__(self, document_class: type[Markdown], text: str = LISTS) -> None:
        super().__init__()
        self.document_class = document_class
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield self.document_class(self.text)


async def cells_of(document_class: type[Markdown], width: int, theme: str):
    app = Host(document_class)
    async with app.run_test(size=(width, 90)) as pilot:
        app.theme = theme
        await pilot.pause(0.1)
        lists = app.query_one(document_class).query("CompactBulletList, CompactOrderedList")
        compact = [block for block in lists if block.is_compact]
        return screen_cells(app), len(compact)


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
@pytest.mark.parametrize("width", [30, 57, 100])
async def test_compact_lists_draw_the_same_cells_as_textuals(width, theme):
    textual_cells, _ = await cells_of(Markdown, width, theme)
    ours, compact = await cells_of(StreamedMarkdown, width, theme)

    # The nested list is compact; the list around it (with a two-paragraph item too) is not.
    assert compact == 5
    assert ours == textual_cells


async def test_complex_lists_keep_textuals_widgets():
    app = Host(StreamedMarkdown)
    async with app.run_test(size=(80, 90)) as pilot:
        await pilot.pause()
        lists = list(app.query_one(StreamedMarkdown).query_children(CompactBulletList))
        # The last one has an item with a nested list and one with two paragraphs.
        *simple, outer = lists
        assert not outer.is_compact and outer.children
        nested = outer.query_one(CompactBulletList)
        assert nested.is_compact and not nested.children
        assert all(block.is_compact and not block.children for block in simple)
        assert lists[0].compact_text.startswith("• dirty pages are written back first;\n• a miss")


async def test_a_streamed_list_grows_item_by_item():
    app = Host(StreamedMarkdown, "")
    async with app.run_test(size=(80, 60)) as pilot:
        document = app.query_one(StreamedMarkdown)
        for piece in ("Intro.\n\n- fir", "st\n- sec", "ond item\n", "- third\n\nDone."):
            document.append_text(piece)
            await document.flush(force=True)
            await pilot.pause()
        lists = list(document.query_children(CompactBulletList))
        assert [block.compact_text for block in lists] == ["• first\n• second item\n• third"]
        text = document.full_text
        ours = screen_cells(app)
    reference = Host(Markdown, text)
    async with reference.run_test(size=(80, 60)) as pilot:
        await pilot.pause(0.1)
        assert screen_cells(reference) == ours


class LinkHost(App):
    def __init__(self) -> None:
        super().__init__()
        self.clicked: list[str] = []

    def compose(self) -> ComposeResult:
        text = "- see [the docs](https://example.com/docs) first\n- then\n"
        yield StreamedMarkdown(text, open_links=False)

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        self.clicked.append(event.href)


async def test_a_link_in_a_compact_list_still_clicks():
    app = LinkHost()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        compact = app.query_one(CompactBulletList)
        assert compact.is_compact
        column = compact.compact_text.index("the docs")

        await pilot.click(offset=(compact.region.x + column + 1, compact.region.y))
        await pilot.pause()

        assert app.clicked == ["https://example.com/docs"]


async def test_a_theme_change_redraws_compact_lists():
    textual_light, _ = await cells_of(Markdown, 57, "textual-light")
    app = Host(StreamedMarkdown)
    async with app.run_test(size=(57, 90)) as pilot:
        await pilot.pause(0.1)
        dark = screen_cells(app)
        app.theme = "textual-light"
        await pilot.pause(0.1)
        assert screen_cells(app) != dark
        assert screen_cells(app) == textual_light
