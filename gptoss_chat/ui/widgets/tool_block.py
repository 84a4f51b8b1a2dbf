"""A tool call and its result as one compact block that expands on click or Enter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Collapsible, Static

if TYPE_CHECKING:
    from rich.syntax import Syntax

from gptoss_chat.tools.base import Decision, Proposal, ToolResult

_RESULT_PREVIEW_CHARS = 4000


def tool_name_of(recipient: str) -> str:
    """'browser.search' → 'browser'; 'functions.apply_patch' → 'apply_patch'."""
    head, _, rest = recipient.partition(".")
    return rest if head == "functions" and rest else head


def message_texts(result: ToolResult) -> str:
    from gptoss_chat.conversation import message_text

    return "\n".join(message_text(message) for message in result.messages)


class ToolBlock(Collapsible):
    """States: writing (arguments streaming) → awaiting approval / running → done or declined."""

    def __init__(self, recipient: str, *, collapsed: bool = True) -> None:
        self.recipient = recipient
        self.arguments = ""
        self.state = "writing"
        self._call_view = Static(classes="tool-call")
        self._result_view = Static(classes="tool-result")
        super().__init__(
            self._call_view,
            self._result_view,
            title=self._title_for("writing…"),
            collapsed=collapsed,
            classes="tool-block",
        )

    def on_mount(self) -> None:
        self._result_view.display = False

    def _title_for(self, status: str, detail: str = "") -> str:
        title = f"⚙ {self.recipient} · {status}"
        return f"{title} · {detail}" if detail else title

    def append_arguments(self, text: str) -> None:
        self.arguments += text

    def show_arguments(self) -> None:
        """Redraw the streamed arguments (called per frame, not per token)."""
        if self.state == "writing":
            self._call_view.update(Text(self.arguments))

    def set_proposal(self, proposal: Proposal, needs_decision: bool) -> None:
        self.state = "awaiting approval" if needs_decision else "running"
        self._call_view.update(proposal_renderable(proposal))
        self.title = self._title_for(self.state, proposal.title)
        self.set_class(needs_decision, "-pending")

    def set_declined(self, decision: Decision) -> None:
        self.state = "declined"
        reason = f" ({decision.reason})" if decision.reason else ""
        self.title = self._title_for("declined" + reason)
        self.remove_class("-pending")
        self.add_class("-declined")

    def set_finished(self, result: ToolResult) -> None:
        self.state = "error" if result.is_error else "done"
        text = message_texts(result)
        if len(text) > _RESULT_PREVIEW_CHARS:
            text = text[:_RESULT_PREVIEW_CHARS] + f"\n… ({len(text)} characters in all)"
        self._result_view.update(Text(text))
        self._result_view.display = True
        self.title = self._title_for(self.state, result.summary)
        self.remove_class("-pending")
        self.set_class(result.is_error, "-error")

    def set_interrupted(self) -> None:
        if self.state in ("writing", "awaiting approval", "running"):
            self.state = "stopped"
            self.title = self._title_for("stopped")
            self.remove_class("-pending")


def proposal_renderable(proposal: Proposal) -> Syntax | Text:
    """Code highlighted in its language, a diff coloured, a URL or query as plain text."""
    from rich.syntax import Syntax  # pygments: imported on first use, not before first paint

    if proposal.preview_kind == "code":
        return Syntax(
            proposal.preview,
            proposal.language or "python",
            theme="ansi_dark",
            word_wrap=True,
            background_color="default",
        )
    if proposal.preview_kind == "diff":
        return Syntax(
            proposal.preview, "diff", theme="ansi_dark", word_wrap=True, background_color="default"
        )
    return Text(proposal.preview)
