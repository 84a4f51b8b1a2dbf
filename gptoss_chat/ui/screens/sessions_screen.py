"""Saved sessions: a table to resume (Enter), rename (r), delete (d) or export (e) one.

The store is the one the app records into (or the user's database, opened to browse it).
Rename and export ask for text in a small dialog; delete asks for confirmation first.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label

from gptoss_chat.export import render
from gptoss_chat.store import SessionInfo, SessionStore, StoreError

if TYPE_CHECKING:
    from gptoss_chat.ui.app import GptossChatApp

CAPTION = "Enter resume · r rename · d delete · e export (.json or .md) · Esc close"


def format_updated(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


class SessionsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rename", "Rename", id="sessions.rename", tooltip="Rename the session"),
        Binding("d", "delete", "Delete", id="sessions.delete", tooltip="Delete the session"),
        Binding("e", "export", "Export", id="sessions.export", tooltip="Export to md or json"),
        Binding(
            "escape", "close", "Close", id="sessions.close", tooltip="Back to the conversation"
        ),
    ]

    def __init__(self, store: SessionStore) -> None:
        super().__init__()
        self.store = store
        self.sessions: list[SessionInfo] = []

    @property
    def chat_app(self) -> GptossChatApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions-dialog"):
            yield Label("Saved sessions", id="decision-heading")
            yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
            yield Label("", id="sessions-empty")
            yield Label(CAPTION, classes="decision-caption")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Title", key="title", width=40)
        table.add_column("Model", key="model", width=22)
        table.add_column("Updated", key="updated")
        table.add_column("Messages", key="messages")
        table.add_column("ID", key="id")
        self.reload()
        table.focus()

    def reload(self, select: str | None = None) -> None:
        table = self.query_one(DataTable)
        try:
            self.sessions = self.store.list_sessions()
        except StoreError as exc:
            self.notify(str(exc), title="Sessions", severity="error")
            self.sessions = []
        table.clear()
        for info in self.sessions:
            table.add_row(
                info.display_title,
                info.model or "—",
                format_updated(info.updated_at),
                str(info.message_count),
                info.id,
                key=info.id,
            )
        empty = self.query_one("#sessions-empty", Label)
        empty.update("" if self.sessions else "No saved sessions yet.")
        empty.display = not self.sessions
        if select is not None:
            ids = [info.id for info in self.sessions]
            if select in ids:
                table.move_cursor(row=ids.index(select))

    @property
    def selected(self) -> SessionInfo | None:
        table = self.query_one(DataTable)
        if not self.sessions or table.cursor_row < 0:
            return None
        return self.sessions[min(table.cursor_row, len(self.sessions) - 1)]

    @on(DataTable.RowSelected)
    async def _resume(self, event: DataTable.RowSelected) -> None:
        event.stop()
        info = self.selected
        if info is not None and await self.chat_app.resume_stored(info.id):
            self.dismiss(None)

    def action_rename(self) -> None:
        info = self.selected
        if info is None:
            return

        def renamed(title: str | None) -> None:
            if title is None:
                return
            try:
                self.store.rename(info.id, title)
            except StoreError as exc:
                self.notify(str(exc), severity="error")
                return
            self.reload(select=info.id)

        self.app.push_screen(TextPromptModal("Rename the session", info.title), renamed)

    def action_delete(self) -> None:
        info = self.selected
        if info is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.delete(info.id)
            except StoreError as exc:
                self.notify(str(exc), severity="error")
                return
            self.chat_app.stored_session_deleted(info.id)
            self.notify(f"Deleted {info.display_title}", timeout=4)
            self.reload()

        question = f"Delete “{info.display_title}” ({info.message_count} messages)?"
        self.app.push_screen(ConfirmModal(question), confirmed)

    def action_export(self) -> None:
        info = self.selected
        if info is None:
            return
        default = self.chat_app.options.workspace / f"gptoss-chat-{info.id}.md"

        def chosen(text: str | None) -> None:
            if text:
                self._export(info, Path(text).expanduser())

        prompt = "Export to (a .json file gets the Harmony messages, anything else Markdown)"
        self.app.push_screen(TextPromptModal(prompt, str(default)), chosen)

    def _export(self, info: SessionInfo, path: Path) -> None:
        if not path.is_absolute():
            path = self.chat_app.options.workspace / path
        fmt = "json" if path.suffix.lower() == ".json" else "md"
        try:
            text = render(self.store.load(info.id), fmt)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except (StoreError, OSError) as exc:
            self.notify(f"Cannot export: {exc}", severity="error")
            return
        self.notify(f"Exported {info.display_title} to {path}", timeout=8)

    def action_close(self) -> None:
        self.dismiss(None)


class TextPromptModal(ModalScreen[str | None]):
    """One line of text: Enter accepts, Esc cancels (None)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel", tooltip="Leave it as it is"),
    ]

    def __init__(self, heading: str, text: str) -> None:
        super().__init__()
        self.heading = heading
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="text-prompt-dialog"):
            yield Label(self.heading, id="decision-heading")
            yield Input(self.text, id="text-prompt-input")
            yield Label("Enter accept · Esc cancel", classes="decision-caption")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _accept(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmModal(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Yes, do it"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="No, keep it"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(self.question, id="decision-heading")
            yield Label("y yes · n no", classes="decision-caption")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
