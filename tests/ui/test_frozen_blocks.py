"""Finished Markdown blocks copied into one FrozenBlocks look exactly like the blocks did."""

from __future__ import annotations

from rich.style import Style
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets.markdown import MarkdownBlock

from gptoss_chat.ui.widgets.frozen_blocks import FrozenBlocks
from gptoss_chat.ui.widgets.streamed_markdown import StreamedMarkdown
from tests.ui.conftest import wait_until

DOCUMENT = """\
# A heading

Some *emphasis*, some **strong** text, `inline code` and a [link](https://example.com).
A second line of the same paragraph that is long enough to wrap at least once on screen.

- first item
- second item with `code`
  - nested item

1. one
2. two

> A quote that is also long enough to wrap onto a second line when the screen is narrow.

```python
def long_line():
    return "a code line far longer than the width of the screen, so the fence has to clip it"
```

| name | value |
|------|-------|
| a    | 1     |
| b    | 2     |

---

## Last part

The last paragraph stays live.
"""

Cells = list[list[tuple[str, Style | None]]]


class Host(App):
    CSS = "StreamedMarkdown { background: $surface; }"

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield StreamedMarkdown(DOCUMENT)


def screen_cells(app: App) -> Cells:
    """Each cell of the screen as (character, style): compositors may split segments
    differently, so compare what every cell shows."""
    strips = app.screen._compositor.render_strips()
    return [[(ch, seg.style) for seg in strip for ch in seg.text] for strip in strips]


def displayed_blocks(document: StreamedMarkdown) -> list[MarkdownBlock]:
    return document.live_blocks()


async def freeze_now(pilot, document: StreamedMarkdown, keep: int = 1) -> FrozenBlocks:
    """Freeze all but `keep` blocks at once (lower the threshold to zero) and wait for it."""
    await pilot.pause()
    document.schedule_freeze(keep=keep, at=0)
    await wait_until(pilot, lambda: bool(document.query_children(FrozenBlocks)))
    await pilot.pause()
    return document.query_children(FrozenBlocks).first()


async def test_frozen_copy_draws_the_same_cells_as_the_blocks():
    app = Host()
    async with app.run_test(size=(70, 80)) as pilot:
        document = app.query_one(StreamedMarkdown)
        await pilot.pause()
        before = screen_cells(app)
        blocks = displayed_blocks(document)
        assert len(blocks) > 8

        frozen = await freeze_now(pilot, document)

        assert displayed_blocks(document) == blocks[-1:]  # only the last block is live
        assert all(not block.display for block in blocks[:-1])
        assert screen_cells(app) == before
        for text in ("A heading", "nested item", "A quote", "def long_line", "value"):
            assert text in frozen.text


async def test_frozen_copy_follows_a_resize_and_a_theme_change():
    app = Host()
    async with app.run_test(size=(70, 80)) as pilot:
        document = app.query_one(StreamedMarkdown)
        await freeze_now(pilot, document)

        await pilot.resize_terminal(50, 90)
        await pilot.pause(0.2)
        frozen = document.query_children(FrozenBlocks).first()
        await wait_until(pilot, lambda: frozen.display)
        resized = screen_cells(app)
        app.theme = "textual-light"
        await pilot.pause(0.2)
        await wait_until(pilot, lambda: frozen.display)
        await pilot.pause()
        themed = screen_cells(app)

    # The same document never frozen, at the same size and theme.
    fresh = Host()
    async with fresh.run_test(size=(50, 90)) as pilot:
        await pilot.pause()
        assert screen_cells(fresh) == resized
        fresh.theme = "textual-light"
        await pilot.pause(0.2)
        assert screen_cells(fresh) == themed


async def test_update_replaces_frozen_blocks_too():
    app = Host()
    async with app.run_test(size=(70, 80)) as pilot:
        document = app.query_one(StreamedMarkdown)
        await freeze_now(pilot, document)

        await document.update("Only this now.")
        await pilot.pause()

        assert not document.query_children(FrozenBlocks)
        assert [block._content.plain for block in document.query(MarkdownBlock)] == [
            "Only this now."
        ]


async def test_appends_continue_after_a_freeze():
    app = Host()
    async with app.run_test(size=(70, 80)) as pilot:
        document = app.query_one(StreamedMarkdown)
        await freeze_now(pilot, document)

        document.append_text(" More of it.\n\n## After\n\nThe end.")
        await document.finish()
        await pilot.pause()

        live = [block._content.plain for block in displayed_blocks(document)]
        assert live == ["The last paragraph stays live. More of it.", "After", "The end."]


class LinkHost(App):
    def __init__(self) -> None:
        super().__init__()
        self.clicked: list[str] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield StreamedMarkdown(DOCUMENT, open_links=False)

    def on_markdown_link_clicked(self, event: StreamedMarkdown.LinkClicked) -> None:
        self.clicked.append(event.href)


async def test_a_link_in_a_frozen_copy_still_clicks():
    app = LinkHost()
    async with app.run_test(size=(70, 80)) as pilot:
        document = app.query_one(StreamedMarkdown)
        frozen = await freeze_now(pilot, document)
        row = next(n for n, line in enumerate(frozen.text.splitlines()) if "link" in line)
        column = frozen.text.splitlines()[row].index("link")

        await pilot.click(offset=(frozen.region.x + column + 1, frozen.region.y + row))
        await pilot.pause()

        assert app.clicked == ["https://example.com"]
