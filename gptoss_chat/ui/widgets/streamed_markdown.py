"""Markdown that grows by appends, paced so rendering never falls behind the model.

Deltas arrive far faster than frames (one per token): `append_text` only buffers. `flush`
(called by the owner's ~60 Hz timer and before structural changes) hands the joined text to
`Markdown.append`, which re-parses only from the last block on. That is what Textual's
`MarkdownStream` does too; this class adds pacing: an append costs the append itself plus the
layout and paint of the frame it causes, so after each write the next one waits for that frame
and then PAUSE x (append + frame). Writes grow when the document is expensive, the loop keeps
time for keys and scrolling, and when the model stops the view is at most one write behind.
(An append re-mounts the last block, a whole list or code fence, so back-to-back appends of a
long fence would cost O(fence x appends).)

A second thing keeps long documents cheap: Textual lays out every widget on each frame, one
per block, so once more than `FREEZE_AT` blocks are live, each write first copies the finished
ones (all but the last `KEEP_LIVE`, laid out by the frame of the write before) into one
`FrozenBlocks` (see frozen_blocks.py). Only the last block is ever rewritten by an append.
Lists of one-paragraph items are one widget each rather than four per item (compact_list.py).
"""

from __future__ import annotations

import asyncio
import time

from textual.await_complete import AwaitComplete
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

from gptoss_chat.ui.widgets.blank_background import BlankBackground
from gptoss_chat.ui.widgets.compact_list import CompactBulletList, CompactOrderedList
from gptoss_chat.ui.widgets.frozen_blocks import FrozenBlocks, paint_blocks

FREEZE_AT = 12
"""Live blocks in a document that make its finished ones be copied into one widget."""
KEEP_LIVE = 2
"""Blocks left live at the end: the one appends rewrite, and one spare."""
SETTLE_SECONDS = 0.5
"""After a document's last write (the end of a turn), how long copies wait."""
FREEZE_MOST = 24
"""Blocks copied in one go: a copy renders every line of its blocks (~1-2 ms a block here),
and a big write can finish dozens of blocks at once; the rest wait for the next frame."""
FREEZE_TRIES = 5
"""Frames a freeze after a turn waits for an append in progress before it gives up."""
PAUSE = 0.5
"""After a write, idle this many times what the write and its frame took."""
FRAME_WAIT_LIMIT = 0.5
"""The longest a write waits for the frame of the previous one (a hidden pane has none)."""


class StreamedMarkdown(BlankBackground, Markdown):
    BLOCKS = {  # noqa: RUF012 - Textual's own class attribute, extended
        **Markdown.BLOCKS,
        "bullet_list_open": CompactBulletList,
        "ordered_list_open": CompactOrderedList,
    }

    def __init__(self, markdown: str = "", **kwargs) -> None:
        super().__init__(markdown, **kwargs)
        self._pending: list[str] = []
        self._write_lock = asyncio.Lock()
        self._next_write_at = 0.0
        self._freeze_scheduled = False
        self._freeze_not_before = 0.0
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
            with self.app.batch_update():
                if not force:  # at the end of a turn the view must catch up first
                    # Finished blocks are copied now, so that this write's frame lays out the
                    # swap too (a copy on its own costs a layout of its own).
                    self._freeze_blocks(KEEP_LIVE, FREEZE_AT)
                await self.append(chunk)
            self._next_write_at = time.monotonic() + FRAME_WAIT_LIMIT
            self.call_after_refresh(self._painted, started)

    def _painted(self, write_started: float) -> None:
        now = time.monotonic()
        self._next_write_at = now + PAUSE * (now - write_started)

    async def finish(self) -> None:
        """Write what is left now, whatever the pacing says. Copies wait until the view has
        caught up (a copy stalls the loop for a moment), then freeze what is finished."""
        self._freeze_not_before = time.monotonic() + SETTLE_SECONDS
        await self.flush(force=True)
        self.set_timer(SETTLE_SECONDS, self.schedule_freeze)

    def live_blocks(self) -> list[MarkdownBlock]:
        return [
            child
            for child in self.children
            if isinstance(child, MarkdownBlock) and child.styles.display != "none"
        ]

    def schedule_freeze(self, *, keep: int | None = None, at: int | None = None) -> None:
        """Copy the finished blocks into one widget after the next frame, when more than `at`
        blocks are live: all but the last `keep` (while the model writes, each write does
        this itself; this is for the end of a turn and for tests)."""
        keep = KEEP_LIVE if keep is None else keep
        at = FREEZE_AT if at is None else at
        if self._freeze_scheduled or len(self.live_blocks()) <= at:
            return
        self._freeze_scheduled = True
        self.call_after_refresh(self._freeze_later, keep, at, FREEZE_TRIES)

    def _freeze_later(self, keep: int, at: int, tries: int) -> None:
        self._freeze_scheduled = False
        if not self.is_mounted or time.monotonic() < self._freeze_not_before:
            return
        if self._write_lock.locked():  # an append is half done: its blocks are in flux
            if tries > 1:
                self._freeze_scheduled = True
                self.call_after_refresh(self._freeze_later, keep, at, tries - 1)
            return
        if self._freeze_blocks(keep, at):  # the rest in later frames, a stall at a time
            self._freeze_scheduled = True
            self.call_after_refresh(self._freeze_later, keep, at, FREEZE_TRIES)

    def _freeze_blocks(self, keep: int, at: int) -> bool:
        """Copy up to FREEZE_MOST finished, laid-out blocks into a FrozenBlocks; True if more
        are left to copy. Synchronous, between appends; the blocks are hidden only when their
        copy is mounted (FrozenBlocks.on_mount), so no frame shows both or neither."""
        live = self.live_blocks()
        if len(live) <= at:
            return False
        blocks = live[: max(0, len(live) - keep)]
        laid_out = next((n for n, block in enumerate(blocks) if not block.region), len(blocks))
        blocks = blocks[: min(laid_out, FREEZE_MOST)]
        if len(blocks) < 2:
            return False
        painted = paint_blocks(self, blocks)
        if painted is None:
            return False
        self.mount(FrozenBlocks(blocks, painted), before=blocks[0])
        return len(live) - len(blocks) > at

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
