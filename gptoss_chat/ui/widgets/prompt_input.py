"""The multi-line prompt: Enter sends, Ctrl+J (or Shift/Alt+Enter) adds a line, Up/Down walk
the history, Tab completes slash commands."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from gptoss_chat.ui.prompt_history import PromptHistory
from gptoss_chat.ui.slash_commands import completions

NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "alt+enter", "ctrl+enter"})


class PromptInput(TextArea):
    """Posts `Submitted`; the screen decides whether it is a message or a command."""

    @dataclass
    class Submitted(Message):
        prompt_input: PromptInput
        text: str

    def __init__(self, history: PromptHistory, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.prompt_history = history
        self._history_index: int | None = None
        self._draft = ""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "tab" and completions(self.text):
            event.stop()
            event.prevent_default()
            self.complete()
            return
        if event.key == "up" and self.cursor_location[0] == 0 and self._walk_history(-1):
            event.stop()
            event.prevent_default()
            return
        last_row = self.document.line_count - 1
        if event.key == "down" and self.cursor_location[0] == last_row and self._walk_history(1):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def complete(self) -> None:
        """Replace the text with the first completion (the hint line shows the others)."""
        options = completions(self.text)
        if options:
            self.load_text(options[0])
            self.move_cursor(self.document.end)

    def _submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        self.prompt_history.add(text)
        self._history_index = None
        self.load_text("")
        self.post_message(self.Submitted(self, text))

    def _walk_history(self, step: int) -> bool:
        entries = self.prompt_history.entries
        if not entries:
            return False
        if self._history_index is None:
            if step > 0:
                return False
            self._draft = self.text
            index = len(entries) - 1
        else:
            index = self._history_index + step
        if index >= len(entries):
            self._history_index = None
            self.load_text(self._draft)
        elif index < 0:
            return True  # already at the oldest entry
        else:
            self._history_index = index
            self.load_text(entries[index])
        self.move_cursor(self.document.end)
        return True
