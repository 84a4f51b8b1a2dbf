"""The scrolling conversation: user messages and assistant turns, newest at the bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.containers import VerticalScroll
from textual.widgets import Static

if TYPE_CHECKING:
    from gptoss_chat.ui.widgets.turn_view import TurnView


class UserMessage(Static):
    def __init__(self, text: str, *, queued: bool = False) -> None:
        super().__init__(text, markup=False, classes="user-message")
        self.set_class(queued, "-queued")
        self.border_title = "you · queued" if queued else "you"

    def mark_sent(self) -> None:
        self.remove_class("-queued")
        self.border_title = "you"


class ChatLog(VerticalScroll, can_focus=False):
    """Stays pinned to the bottom while a turn streams, unless the user scrolls up."""

    def on_mount(self) -> None:
        self.anchor()

    async def add_user(self, text: str, *, queued: bool = False) -> UserMessage:
        message = UserMessage(text, queued=queued)
        await self.mount(message)
        return message

    async def add_turn(self, *, analysis_collapsed: bool) -> TurnView:
        # Markdown (markdown-it) loads with the first turn, not before the first frame.
        from gptoss_chat.ui.widgets.turn_view import TurnView

        turn = TurnView(analysis_collapsed=analysis_collapsed)
        await self.mount(turn)
        self.anchor()
        return turn

    async def add_notice(self, text: str, *, error: bool = False) -> None:
        classes = "notice -error" if error else "notice"
        await self.mount(Static(text, markup=False, classes=classes))

    def turns(self) -> list[TurnView]:
        return list(self.query(".turn").results())

    async def clear(self) -> None:
        await self.remove_children()
