"""Keys and slash commands, generated from the live bindings (so a remap shows here too)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown

from gptoss_chat.ui.slash_commands import SLASH_COMMANDS


def help_markdown(keys: list[tuple[str, str]]) -> str:
    lines = ["## Keys", "", "| key | action |", "|---|---|"]
    lines += [f"| `{key}` | {text} |" for key, text in keys]
    lines += ["", "## Commands", "", "| command | what it does |", "|---|---|"]
    lines += [f"| `{c.usage}` | {c.help} |" for c in SLASH_COMMANDS]
    lines += [
        "",
        "Enter sends, Ctrl+J adds a new line, Up/Down recall earlier prompts, Tab completes "
        "a command. Ctrl+P opens the command palette.",
    ]
    return "\n".join(lines)


class HelpModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1", "dismiss", "Close", id="help.close", tooltip="Close the help")
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Label("gptoss-chat help", id="decision-heading")
            yield Markdown(help_markdown(self.keys), id="help-body")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
