"""Events the conversation core emits while it runs a turn.

Small frozen dataclasses: the Textual app, the plain REPL, one-shot mode and the tests all
consume the same stream. A turn always ends with exactly one `TurnDone`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openai_harmony import Message

from gptoss_chat.generator import GenerationStats
from gptoss_chat.tools.base import Decision, Proposal, ToolResult


@dataclass(frozen=True)
class TurnStarted:
    """A model turn began (after a user message, a retry, or a tool result)."""

    prompt_tokens: int
    """Length of the rendered prompt."""


@dataclass(frozen=True)
class ChannelStarted:
    """The model opened a new message: its channel and, for a tool call, its recipient."""

    channel: str
    """'analysis', 'commentary' or 'final'."""
    recipient: str | None = None


@dataclass(frozen=True)
class ReasoningDelta:
    """Text of the analysis channel (chain of thought), streamed."""

    text: str


@dataclass(frozen=True)
class TextDelta:
    """Text of the final answer, streamed."""

    text: str


@dataclass(frozen=True)
class CommentaryDelta:
    """Commentary text addressed to the user (a preamble before tool calls), streamed."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """The arguments of a tool call, streamed as the model writes them."""

    recipient: str
    text: str


@dataclass(frozen=True)
class ToolProposed:
    """The model asked for a tool call; approval follows unless the policy allows it."""

    proposal: Proposal
    needs_decision: bool
    """True when the approver will be asked; False when the policy already allows it."""


@dataclass(frozen=True)
class ToolDeclined:
    proposal: Proposal
    decision: Decision


@dataclass(frozen=True)
class ToolFinished:
    proposal: Proposal
    result: ToolResult


@dataclass(frozen=True)
class MessageAdded:
    """A complete message joined the conversation (user, assistant or tool): persist it."""

    message: Message
    interrupted: bool = False
    """True for an assistant message cut short by the user (Esc) or an error."""


@dataclass(frozen=True)
class ErrorEvent:
    """Something went wrong; the conversation stays usable."""

    message: str
    kind: str = "error"
    """'generator', 'harmony', 'tool', 'unknown_tool', 'round_trips', 'context', 'error'."""


@dataclass(frozen=True)
class TurnDone:
    """The turn ended: the answer is complete, the user stopped it, or an error ended it."""

    final_text: str
    stats: list[GenerationStats] = field(default_factory=list)
    """One entry per model call in the turn (tool round-trips make several)."""
    interrupted: bool = False
    error: str | None = None


Event = (
    TurnStarted
    | ChannelStarted
    | ReasoningDelta
    | TextDelta
    | CommentaryDelta
    | ToolCallDelta
    | ToolProposed
    | ToolDeclined
    | ToolFinished
    | MessageAdded
    | ErrorEvent
    | TurnDone
)
