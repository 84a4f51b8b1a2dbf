"""Edit the developer instructions; the result is the new text, or None when cancelled."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea


class SystemPromptModal(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="system.save", tooltip="Use these instructions"),
        Binding("escape", "cancel", "Cancel", id="system.cancel", tooltip="Keep the old text"),
    ]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="system-dialog"):
            yield Label("Developer instructions (apply from the next turn)", id="decision-heading")
            yield TextArea(self.text, id="system-text", soft_wrap=True)
            yield Label("Ctrl+S save · Esc cancel", classes="decision-caption")

    def on_mount(self) -> None:
        self.query_one("#system-text", TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#system-text", TextArea).text.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
