"""Markdown that grows by appends, written through Textual's MarkdownStream.

Deltas arrive far faster than frames (one per token): `append_text` only buffers, and `flush`
(called by the owner's ~60 Hz timer and before any structural change) hands the joined text to
the stream in one write. MarkdownStream then re-parses only the last block, so the cost per
frame stays flat however long the answer gets.
"""

from __future__ import annotations

from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream


class StreamedMarkdown(Markdown):
    def __init__(self, markdown: str = "", **kwargs) -> None:
        super().__init__(markdown, **kwargs)
        self._pending: list[str] = []
        self._stream: MarkdownStream | None = None
        self.full_text = markdown
        """Everything appended so far, flushed or not (copy, export and tests read it)."""

    def append_text(self, text: str) -> None:
        self._pending.append(text)
        self.full_text += text

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    async def flush(self) -> None:
        if not self._pending or not self.is_mounted:
            return
        chunk = "".join(self._pending)
        self._pending.clear()
        if self._stream is None:
            self._stream = Markdown.get_stream(self)
        await self._stream.write(chunk)

    async def finish(self) -> None:
        """Write what is left and stop the stream (its task would otherwise outlive the turn)."""
        await self.flush()
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
