"""A stored conversation drawn into the chat log, the way it looked when it was written.

Used by `--resume` and the sessions screen: user messages become user bubbles; everything the
model and the tools wrote until the next user message becomes one turn (analysis beside the
answer, tool calls as blocks with their results, an interrupted answer marked as stopped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from openai_harmony import Role

from gptoss_chat.conversation import Entry, message_text
from gptoss_chat.events import TurnDone
from gptoss_chat.tools.base import ToolResult

if TYPE_CHECKING:
    from gptoss_chat.ui.widgets.chat_log import ChatLog
    from gptoss_chat.ui.widgets.turn_view import TurnView


async def show_entries(log: ChatLog, entries: Sequence[Entry], *, analysis_collapsed: bool) -> int:
    """Mount `entries` at the end of `log`; returns how many turns were drawn."""
    turn: TurnView | None = None
    interrupted = False
    turns = 0

    async def close_turn() -> None:
        nonlocal turn, interrupted
        if turn is not None:
            await turn.finish(TurnDone("", interrupted=interrupted))
        turn, interrupted = None, False

    for entry in entries:
        message = entry.message
        role = message.author.role
        text = message_text(message)
        if role == Role.USER:
            await close_turn()
            await log.add_user(text)
            continue
        if role not in (Role.ASSISTANT, Role.TOOL):
            continue  # system and developer messages are rebuilt from the settings
        if turn is None:
            turn = await log.add_turn(analysis_collapsed=analysis_collapsed)
            turns += 1
        interrupted = interrupted or entry.interrupted
        if role == Role.TOOL:
            turn.tool_finished(ToolResult([message], summary="stored result"))
            continue
        recipient = message.recipient if message.recipient != "assistant" else None
        channel = message.channel or "final"
        await turn.start_channel(channel, recipient)
        if recipient is not None:
            turn.add_tool_arguments(text)
        elif channel == "analysis":
            turn.add_reasoning(text)
        elif channel == "final":
            turn.add_answer(text)
        else:
            turn.add_commentary(text)
        await turn.flush()
    await close_turn()
    return turns
