"""One assistant turn: the analysis pane beside the answer column.

The answer column holds, in order, commentary, tool blocks and the final answer; a turn with
tool round-trips gets one answer segment per model call. Every delta only buffers; a 60 Hz
timer (and every structural change) flushes the buffers, so a token costs a list append.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.layout import DockArrangeResult
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Collapsible, Static

from gptoss_chat.events import TurnDone
from gptoss_chat.tools.base import Decision, Proposal, ToolResult
from gptoss_chat.ui.widgets.blank_background import BlankBackground
from gptoss_chat.ui.widgets.streamed_markdown import StreamedMarkdown
from gptoss_chat.ui.widgets.tool_block import ToolBlock

FRAME_SECONDS = 1 / 60
ANALYSIS_MARGIN = 1
"""The analysis pane's right margin in app.tcss (`TurnView > .analysis-pane`)."""


class CitedText(Protocol):
    references: Sequence[object]

    def markdown(self) -> str: ...


CitationLinker = Callable[[str], CitedText]
"""The browser tool's `normalize_citations`: answer text → references and linked Markdown."""


class AnalysisPane(Collapsible):
    """The chain of thought of one turn; collapsed by the per-turn title or the global key."""

    class Contents(BlankBackground, Collapsible.Contents):
        pass

    def __init__(self, *, collapsed: bool) -> None:
        self.markdown = StreamedMarkdown(classes="analysis-text")
        super().__init__(self.markdown, title="Analysis · thinking…", collapsed=collapsed)
        self.add_class("analysis-pane")

    def on_collapsible_expanded(self) -> None:
        # Collapsed, its blocks were never laid out, so none could be frozen (after the frame
        # that lays them out).
        self.markdown.schedule_freeze()


class AnswerColumn(BlankBackground, Vertical):
    pass


class TurnView(BlankBackground, Widget):
    """Driven by the app's turn worker: add_* buffer, the async methods change structure."""

    def __init__(self, *, analysis_collapsed: bool = False, tools_collapsed: bool = True) -> None:
        super().__init__(classes="turn")
        self.analysis = AnalysisPane(collapsed=analysis_collapsed)
        self.answer = AnswerColumn(classes="answer-column")
        self.tools_collapsed = tools_collapsed
        self._segment: StreamedMarkdown | None = None
        self._segment_kind = ""
        self._tool_block: ToolBlock | None = None
        self._timer: Timer | None = None
        self._model_calls = 0
        self.answer_text = ""
        """The final-channel text of this turn (copy last answer)."""

    def compose(self) -> ComposeResult:
        yield self.analysis
        yield self.answer

    def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
        """Side by side, the CSS splits the width 2fr : 3fr. Fractions put the answer column at
        a fractional x, and Textual measures its blocks at the floor of its width but places
        them one cell wider: every layout wrapped every paragraph of the answer twice, at two
        widths, and a block's height cache holds one. So the analysis gets the same share
        in whole cells, which leaves the answer a whole number of cells too."""
        target = None
        layout = self.styles.layout
        if layout is not None and layout.name == "horizontal" and not self.analysis.collapsed:
            target = max(0, 2 * (size.width - ANALYSIS_MARGIN) // 5)
        current = self.analysis.styles.inline.width
        if target is None:
            if current is not None:
                self.analysis.styles.width = None  # the CSS again (collapsed, narrow)
        elif current is None or current.cells != target:
            self.analysis.styles.width = target
        return super().arrange(size, optimal)

    def on_mount(self) -> None:
        self.analysis.display = False
        self._timer = self.set_interval(FRAME_SECONDS, self.flush)

    # -- deltas: buffer only ---------------------------------------------------------------------

    def add_reasoning(self, text: str) -> None:
        self.analysis.markdown.append_text(text)

    def add_answer(self, text: str) -> None:
        self.answer_text += text
        if self._segment is not None:
            self._segment.append_text(text)

    def add_commentary(self, text: str) -> None:
        if self._segment is not None:
            self._segment.append_text(text)

    def add_tool_arguments(self, text: str) -> None:
        if self._tool_block is not None:
            self._tool_block.append_arguments(text)

    async def flush(self) -> None:
        await self.analysis.markdown.flush()
        if self._segment is not None:
            await self._segment.flush()
        if self._tool_block is not None:
            self._tool_block.show_arguments()

    # -- structure -------------------------------------------------------------------------------

    async def start_channel(self, channel: str, recipient: str | None) -> None:
        await self.flush()
        if recipient is not None:
            self._tool_block = ToolBlock(recipient, collapsed=self.tools_collapsed)
            await self.answer.mount(self._tool_block)
            return
        if channel == "analysis":
            self.analysis.display = True
            if self.analysis.markdown.full_text.strip():
                self.analysis.markdown.append_text("\n\n---\n\n")
            return
        kind = "final" if channel == "final" else "commentary"
        if self._segment is not None and self._segment_kind == kind and self._tool_block is None:
            self._segment.append_text("\n\n")
            return
        if self._segment is not None:
            await self._segment.finish()
        self._segment = StreamedMarkdown(classes=f"answer-text -{kind}")
        self._segment_kind = kind
        self._tool_block = None
        await self.answer.mount(self._segment)

    async def tool_proposed(self, proposal: Proposal, needs_decision: bool) -> ToolBlock:
        await self.flush()
        block = self._tool_block
        if block is None or block.state != "writing":
            block = ToolBlock(proposal.call.recipient, collapsed=self.tools_collapsed)
            await self.answer.mount(block)
        self._tool_block = block
        block.set_proposal(proposal, needs_decision)
        return block

    def tool_declined(self, decision: Decision) -> None:
        if self._tool_block is not None:
            self._tool_block.set_declined(decision)

    def tool_finished(self, result: ToolResult) -> None:
        if self._tool_block is not None:
            self._tool_block.set_finished(result)

    async def add_error(self, message: str) -> None:
        await self.flush()
        await self.answer.mount(Static(f"⚠ {message}", classes="inline-error", markup=False))

    async def finish(self, done: TurnDone) -> None:
        """Write what is buffered, stop the streams and the timer, and sum up the turn: all in
        one batch, so the screen lays the end of the turn out once."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        with self.app.batch_update():
            if self._tool_block is not None and done.interrupted:
                self._tool_block.set_interrupted()
            words = len(self.analysis.markdown.full_text.split())
            self.analysis.title = f"Analysis · {words} words" if words else "Analysis"
            footer = turn_summary(done)
            mounted = None
            if footer:
                mounted = self.answer.mount(Static(footer, classes="turn-footer", markup=False))
            await self.analysis.markdown.finish()
            if self._segment is not None:
                await self._segment.finish()
            if mounted is not None:
                await mounted

    async def link_citations(self, normalize: CitationLinker) -> int:
        """Re-render the final answer with the browser's `【3†L9-L11】` citations as links and a
        list of sources; returns how many references resolved. Done once, at the end of the
        turn: while streaming, a citation may still be half-written."""
        resolved = 0
        for segment in self.answer.query(".answer-text.-final").results(StreamedMarkdown):
            cited = normalize(segment.full_text)
            if cited.references:
                resolved += len(cited.references)
                await segment.update(cited.markdown())
        return resolved

    def set_analysis_collapsed(self, collapsed: bool) -> None:
        self.analysis.collapsed = collapsed


def turn_summary(done: TurnDone) -> str:
    """'■ stopped · 1.2 s to first token · 48.0 tok/s · 312 tokens'."""
    parts: list[str] = []
    if done.interrupted and done.error is None:
        parts.append("■ stopped")
    tokens = sum(s.generated_tokens for s in done.stats)
    if tokens:
        first = done.stats[0]
        rate = done.stats[-1].decode_tokens_per_second
        parts.append(f"{first.time_to_first_token:.2f} s to first token")
        if rate:
            parts.append(f"{rate:.1f} tok/s")
        parts.append(f"{tokens} tokens")
    return " · ".join(parts)
