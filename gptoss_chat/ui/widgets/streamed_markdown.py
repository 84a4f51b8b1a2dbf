"""Markdown that grows by appends, paced so rendering never falls behind the model.

Deltas arrive far faster than frames (one per token): `append_text` only buffers. `flush`
(called by the owner's ~60 Hz timer and before structural changes) hands the joined text to
`Markdown.append`, which re-parses only from the last block on. That is what Textual's
`MarkdownStream` does too; this class adds one thing: after an append that took t seconds the
next one waits at least t. An append re-mounts the last block (a whole list or code fence), so
back-to-back appends of a long fence cost O(fence × appends); spacing them keeps rendering under
about half of the loop's time and lets the writes grow when the document is expensive.
"""

from __future__ import annotations

import asyncio
import time

from textual.widgets import Markdown


class StreamedMarkdown(Markdown):
    def __init__(self, markdown: str = "", **kwargs) -> None:
        super().__init__(markdown, **kwargs)
        self._pending: list[str] = []
        self._write_lock = asyncio.Lock()
        self._next_write_at = 0.0
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

    async def finish(self) -> None:
        """Write what is left now, whatever the pacing says."""
        await self.flush(force=True)
