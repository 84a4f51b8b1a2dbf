"""Markdown that grows by appends, paced so rendering never falls behind the model.

Deltas arrive far faster than frames (one per token): `append_text` only buffers. `flush`
(called by the owner's ~60 Hz timer and before structural changes) hands the joined text to
`Markdown.append`, which re-parses only from the last block on. That is what Textual's
`MarkdownStream` does too; this class adds one thing: after an append that took t seconds the
next one waits at least t. An append re-mounts the last block (a whole list or code fence), so
back-to-back appends of a long fence cost O(fence × appends); spacing them keeps rendering under
about half of the loop's time and lets the writes grow when the document is expensive.

A second thing keeps long documents cheap: Textual lays out every widget on each frame, one
per block, so once more than `FREEZE_AT` blocks are live, the finished ones (all but the last
`KEEP_LIVE`) are copied into one `FrozenBlocks` after they have been painted (see
frozen_blocks.py). Only the last block is ever rewritten by an append.
"""

from __future__ import annotations

import asyncio
import time

from textual.await_complete import AwaitComplete
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

from gptoss_chat.ui.widgets.blank_background import BlankBackground
from gptoss_chat.ui.widgets.frozen_blocks import FrozenBlocks, paint_blocks

FREEZE_AT = 12
"""Live blocks in a document that make its finished ones be copied into one widget."""
KEEP_LIVE = 2
"""Blocks left live at the end: the one appends rewrite, and one spare."""


class StreamedMarkdown(BlankBackground, Markdown):
    def __init__(self, markdown: str = "", **kwargs) -> None:
        super().__init__(markdown, **kwargs)
        self._pending: list[str] = []
        self._write_lock = asyncio.Lock()
        self._next_write_at = 0.0
        self._freeze_scheduled = False
        self.full_text = markdown
        """Everything appended so far, written or not (copy, export and tests read it)."""

    def append_text(self, text: str) -> None:
        self._pending.append(text)
        self.full_text += text

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    async def flush(self, *, force: bool = False) -> None:
        """Write the buffered text, unless an append is running or the pause is not over."""
        if not self._pending or not self.is_mounted:
            return
        if not force and (self._write_lock.locked() or time.monotonic() < self._next_write_at):
            return
        async with self._write_lock:
            if not self._pending:
                return
            chunk = "".join(self._pending)
            self._pending.clear()
            started = time.monotonic()
            await self.append(chunk)
            finished = time.monotonic()
            self._next_write_at = finished + (finished - started)
        self.schedule_freeze()

    async def finish(self) -> None:
        """Write what is left now, whatever the pacing says."""
        await self.flush(force=True)

    def live_blocks(self) -> list[MarkdownBlock]:
        return [
            child
            for child in self.children
            if isinstance(child, MarkdownBlock) and child.styles.display != "none"
        ]

    def schedule_freeze(self, *, keep: int = KEEP_LIVE, at: int = FREEZE_AT) -> None:
        """Copy the finished blocks into one widget once the next frame has painted them:
        from a message of this widget's own, not from inside the flush, which may run in a
        timer while the screen is laying out."""
        if self._freeze_scheduled or len(self.live_blocks()) <= at:
            return
        self._freeze_scheduled = True
        self.call_after_refresh(self._freeze, keep)

    async def _freeze(self, keep: int) -> None:
        async with self._write_lock:  # no append while lines are copied and blocks swapped
            self._freeze_scheduled = False
            live = self.live_blocks()
            blocks = live[: len(live) - keep]
            if len(blocks) < 2 or not self.is_mounted:
                return
            painted = paint_blocks(self, blocks)
            if painted is None:
                return  # not laid out yet: the next flush asks again
            frozen = FrozenBlocks(blocks, painted)
            with self.app.batch_update():
                await self.mount(frozen, before=blocks[0])
                for block in blocks:
                    block.display = False

    def update(self, markdown: str) -> AwaitComplete:
        """Replace the whole document (citations linked at the end of a turn)."""

        async def replace() -> None:
            async with self._write_lock:
                await self.remove_children(FrozenBlocks)
                await Markdown.update(self, markdown)
            self.schedule_freeze()

        if not self.is_mounted:
            return super().update(markdown)
        return AwaitComplete(replace())
