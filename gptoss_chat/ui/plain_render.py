"""Rich rendering for the plain REPL: streamed events, tool proposals, past conversations.

Analysis (the model's reasoning) streams dimmed as it arrives; the final answer streams into a
`rich.live.Live` holding Markdown, so it is re-laid out as it grows and stays on screen as
rendered Markdown. Tool proposals show their code highlighted and diffs coloured.
"""

from __future__ import annotations

from openai_harmony import Role
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from gptoss_chat.conversation import Entry, message_text
from gptoss_chat.events import (
    ChannelStarted,
    CommentaryDelta,
    ErrorEvent,
    Event,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolDeclined,
    ToolFinished,
    ToolProposed,
    TurnDone,
)
from gptoss_chat.tools.base import Proposal

SYNTAX_THEME = "ansi_dark"
"""Uses the terminal's own 16 colours, so it reads on dark and light backgrounds."""


def proposal_renderable(proposal: Proposal) -> Panel:
    """The approval prompt's body: what exactly would run, open, or change."""
    preview = proposal.preview
    if proposal.preview_kind == "diff":
        body = Syntax(preview, "diff", theme=SYNTAX_THEME, word_wrap=True)
    elif proposal.preview_kind == "code":
        body = Syntax(
            preview,
            proposal.language or "python",
            theme=SYNTAX_THEME,
            line_numbers=True,
            word_wrap=True,
        )
    else:
        body = Text(preview)
    return Panel(
        body,
        title=Text(proposal.title, style="bold yellow"),
        title_align="left",
        border_style="yellow",
    )


class EventPrinter:
    """Turns the core's events into terminal output. One instance per REPL."""

    def __init__(self, console: Console, *, raw: bool = False) -> None:
        self.console = console
        self.raw = raw
        """--raw: the token stream is printed elsewhere; only tools and errors show here."""
        self._live: Live | None = None
        self._final = ""
        self._channel: str | None = None

    def handle(self, event: Event) -> None:
        if isinstance(event, ErrorEvent):
            self.stop_live()
            self.console.print(f"\n[bold red]error:[/] {escape(event.message)}", highlight=False)
        elif isinstance(event, ToolProposed) and not event.needs_decision:
            self.stop_live()
            self.console.print(f"\n[yellow]⚙ {escape(event.proposal.title)}[/] [dim](allowed)[/]")
        elif isinstance(event, ToolDeclined):
            reason = f": {event.decision.reason}" if event.decision.reason else ""
            self.console.print(f"[red]✗ declined{escape(reason)}[/]", highlight=False)
        elif isinstance(event, ToolFinished):
            style = "red" if event.result.is_error else "green"
            summary = event.result.summary or "done"
            self.console.print(
                f"[{style}]✓ {escape(event.proposal.tool)}: {escape(summary)}[/]", highlight=False
            )
        elif isinstance(event, TurnDone):
            self._turn_done(event)
        elif not self.raw:
            self._stream(event)

    def _stream(self, event: Event) -> None:
        if isinstance(event, ChannelStarted):
            self.stop_live()
            self._channel = event.channel
            if event.recipient:
                self.console.print(f"\n[dim]→ {escape(event.recipient)}[/]", highlight=False)
            elif event.channel == "analysis":
                self.console.print("[dim italic]thinking…[/]")
        elif isinstance(event, ReasoningDelta | ToolCallDelta):
            self.console.print(Text(event.text, style="dim"), end="", soft_wrap=True)
        elif isinstance(event, CommentaryDelta):
            self.console.print(Text(event.text), end="", soft_wrap=True)
        elif isinstance(event, TextDelta):
            if self._live is None:
                if self._channel == "analysis":
                    self.console.print()
                self._final = ""
                self._live = Live(
                    Markdown(""),
                    console=self.console,
                    refresh_per_second=10,
                    vertical_overflow="visible",
                )
                self._live.start()
            self._final += event.text
            self._live.update(Markdown(self._final))

    def _turn_done(self, event: TurnDone) -> None:
        self.stop_live()
        if self.raw:
            self.console.print()
        parts = []
        tokens = sum(s.generated_tokens for s in event.stats)
        if tokens:
            parts.append(f"{tokens} tokens")
            speeds = [s.decode_tokens_per_second for s in event.stats if s.decode_tokens_per_second]
            if speeds:
                parts.append(f"{speeds[-1]:.1f} tok/s")
        if event.interrupted:
            parts.append("interrupted")
        if parts:
            self.console.print(f"[dim]({' · '.join(parts)})[/]")

    def stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if not self.console.is_terminal:  # off a terminal, Live leaves no line break
                self.console.print()
        elif self._channel is not None:
            self.console.print()
        self._channel = None

    def replay(self, entries: list[Entry]) -> None:
        """Print a resumed conversation: your messages and the final answers."""
        for entry in entries:
            message = entry.message
            text = message_text(message)
            if message.author.role == Role.USER:
                self.console.print(f"\n[bold cyan]you ›[/] {escape(text)}", highlight=False)
            elif message.author.role == Role.ASSISTANT and message.channel == "final":
                self.console.print(Markdown(text))
                if entry.interrupted:
                    self.console.print("[dim](interrupted)[/]")
