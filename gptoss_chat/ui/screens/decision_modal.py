"""The part every approval modal shares: y / a / n / r / Esc and the reason field.

Nothing runs before the user decides: the core awaits this modal's result. Esc denies
without a reason; typing a reason and pressing Enter denies with it (the model reads it).
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Input

from gptoss_chat.tools.base import Decision, Proposal


class DecisionModal(ModalScreen[Decision]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "approve", "Approve", id="approval.approve", tooltip="Run this tool call"),
        Binding(
            "a",
            "allow_session",
            "Allow for session",
            id="approval.allow_session",
            tooltip="Run it and every later call of this tool without asking",
        ),
        Binding(
            "n",
            "deny",
            "Deny",
            id="approval.deny",
            tooltip="Do not run it; the reason field (if filled) goes to the model",
        ),
        Binding(
            "r",
            "focus_reason",
            "Reason",
            id="approval.reason",
            tooltip="Type why you deny it; Enter sends the denial",
        ),
        Binding(
            "escape",
            "deny_now",
            "Deny",
            id="approval.dismiss",
            tooltip="Deny without a reason",
            show=False,
        ),
    ]

    def __init__(self, proposal: Proposal) -> None:
        super().__init__(classes="decision-modal")
        self.proposal = proposal

    def decision_controls(self) -> ComposeResult:
        yield Input(placeholder="reason for denying (r to type, Enter to deny)", id="deny-reason")
        with Horizontal(id="decision-buttons"):
            yield Button("Approve \\[y]", id="approve", variant="success")
            yield Button("Allow for session \\[a]", id="allow-session", variant="primary")
            yield Button("Deny \\[n]", id="deny", variant="error")

    def on_mount(self) -> None:
        self.query_one("#approve", Button).focus()

    def action_approve(self) -> None:
        self.dismiss(Decision.approve())

    def action_allow_session(self) -> None:
        self.dismiss(Decision.allow_session())

    def action_deny(self) -> None:
        self.dismiss(Decision.deny(self.query_one("#deny-reason", Input).value.strip()))

    def action_deny_now(self) -> None:
        reason = self.query_one("#deny-reason", Input)
        if reason.has_focus and reason.value:
            reason.value = ""  # first Esc clears a half-typed reason
            self.query_one("#approve", Button).focus()
            return
        self.dismiss(Decision.deny())

    def action_focus_reason(self) -> None:
        self.query_one("#deny-reason", Input).focus()

    @on(Input.Submitted, "#deny-reason")
    def _reason_submitted(self) -> None:
        self.action_deny()

    @on(Button.Pressed, "#approve")
    def _approve_pressed(self) -> None:
        self.action_approve()

    @on(Button.Pressed, "#allow-session")
    def _allow_pressed(self) -> None:
        self.action_allow_session()

    @on(Button.Pressed, "#deny")
    def _deny_pressed(self) -> None:
        self.action_deny()
