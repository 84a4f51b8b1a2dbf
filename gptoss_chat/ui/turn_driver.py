"""Turns core events into widget updates for one turn (the turn worker calls `handle`)."""

from __future__ import annotations

from collections.abc import Callable

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
    TurnStarted,
)
from gptoss_chat.ui.widgets.turn_view import TurnView

Notify = Callable[[str], None]


class TurnDriver:
    """Deltas go straight to the view's buffers; everything else may await a mount."""

    def __init__(self, turn: TurnView, *, on_error: Notify, on_state: Notify) -> None:
        self.turn = turn
        self.on_error = on_error
        self.on_state = on_state
        self.done: TurnDone | None = None
        self.errors: list[str] = []

    async def handle(self, event: Event) -> None:
        turn = self.turn
        # The four delta types are by far the most frequent: test them first.
        if isinstance(event, ReasoningDelta):
            turn.add_reasoning(event.text)
        elif isinstance(event, TextDelta):
            turn.add_answer(event.text)
        elif isinstance(event, ToolCallDelta):
            turn.add_tool_arguments(event.text)
        elif isinstance(event, CommentaryDelta):
            turn.add_commentary(event.text)
        elif isinstance(event, ChannelStarted):
            await turn.start_channel(event.channel, event.recipient)
        elif isinstance(event, TurnStarted):
            self.on_state("generating")
        elif isinstance(event, ToolProposed):
            await turn.tool_proposed(event.proposal, event.needs_decision)
            self.on_state("waiting for approval" if event.needs_decision else "running tool")
        elif isinstance(event, ToolDeclined):
            turn.tool_declined(event.decision)
            self.on_state("generating")
        elif isinstance(event, ToolFinished):
            turn.tool_finished(event.result)
            self.on_state("generating")
        elif isinstance(event, ErrorEvent):
            self.errors.append(event.message)
            await turn.add_error(event.message)
            self.on_error(event.message)
        elif isinstance(event, TurnDone):
            self.done = event
            await turn.finish(event)
