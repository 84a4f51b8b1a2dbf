"""The conversation core: the Harmony message list and the turn loop.

One turn: render the conversation for completion → a Generator streams token ids → Harmony's
StreamableParser turns them into channel deltas → typed events. A message addressed to a tool
pauses the turn: the core proposes the call, awaits the injected approver, runs the tool in a
thread, appends the tool's messages and generates again, up to a round-trip cap.

Imports neither textual nor torch: both UIs, one-shot mode and the tests drive it the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from openai_harmony import (
    Conversation,
    DeveloperContent,
    HarmonyEncoding,
    HarmonyError,
    Message,
    ReasoningEffort,
    RenderConversationConfig,
    Role,
    StreamableParser,
    StreamState,
    SystemContent,
    TextContent,
)

from gptoss_chat.events import (
    ChannelStarted,
    CommentaryDelta,
    ErrorEvent,
    Event,
    MessageAdded,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolDeclined,
    ToolFinished,
    ToolProposed,
    TurnDone,
    TurnStarted,
)
from gptoss_chat.generator import CancelToken, GenerationStats, Generator, GeneratorError
from gptoss_chat.settings import ApprovalPolicy, ChatSettings
from gptoss_chat.token_stream import stream_tokens
from gptoss_chat.tools.base import (
    ApprovalChoice,
    Decision,
    Proposal,
    ToolCall,
    ToolCallError,
    ToolRegistry,
    ToolResult,
    tool_message,
)

Approver = Callable[[Proposal], Awaitable[Decision]]
RawTokenListener = Callable[[list[int]], None]
EventListener = Callable[["ChatSession", Event], None]

_EFFORTS = {
    "low": ReasoningEffort.LOW,
    "medium": ReasoningEffort.MEDIUM,
    "high": ReasoningEffort.HIGH,
}


@dataclass
class Entry:
    """A message of the conversation and whether it was cut short."""

    message: Message
    interrupted: bool = False


def message_text(message: Message) -> str:
    return "".join(part.text for part in message.content if isinstance(part, TextContent))


async def deny_all(proposal: Proposal) -> Decision:
    """The approver of one-shot mode without --yes."""
    return Decision.deny("tool calls are disabled in this mode")


class _ModelCall:
    """Parser state for one generate call: turns tokens into events and completed messages."""

    def __init__(self, encoding: HarmonyEncoding) -> None:
        self.parser = StreamableParser(encoding, role=Role.ASSISTANT)
        # `<|message|>` ends a header: the content of a new message starts after it. Testing
        # the token id is O(1); `parser.state` and `parser.messages` serialise the whole parser
        # (JSON) on every access, which made feeding O(n) per token (under 900 tok/s at 12k).
        [self._message_token] = encoding.encode("<|message|>", allowed_special="all")

    def feed(self, token: int) -> list[Event]:
        parser = self.parser
        parser.process(token)
        events: list[Event] = []
        if token == self._message_token:
            events.append(ChannelStarted(parser.current_channel or "final", self.recipient))
        delta = parser.last_content_delta
        if delta:
            recipient = self.recipient
            channel = parser.current_channel
            if recipient is not None:
                events.append(ToolCallDelta(recipient, delta))
            elif channel == "analysis":
                events.append(ReasoningDelta(delta))
            elif channel == "commentary":
                events.append(CommentaryDelta(delta))
            else:
                events.append(TextDelta(delta))
        return events

    @property
    def recipient(self) -> str | None:
        recipient = self.parser.current_recipient
        return recipient if recipient and recipient != "assistant" else None

    def partial_message(self) -> Message | None:
        """The message being written when generation stopped, if it has any text."""
        parser = self.parser
        if parser.state != StreamState.CONTENT or not parser.current_content:
            return None
        message = Message.from_role_and_content(Role.ASSISTANT, parser.current_content)
        if parser.current_channel:
            message = message.with_channel(parser.current_channel)
        if self.recipient:
            message = message.with_recipient(self.recipient)
        return message


class ChatSession:
    """One conversation with the model: messages, settings, tools and the turn loop."""

    def __init__(
        self,
        *,
        encoding: HarmonyEncoding,
        generator: Generator,
        tools: ToolRegistry | None = None,
        settings: ChatSettings | None = None,
        approver: Approver = deny_all,
        today: dt.date | None = None,
    ) -> None:
        self.encoding = encoding
        self.generator = generator
        self.tools = tools or ToolRegistry()
        self.settings = settings or ChatSettings()
        self.approver = approver
        self.start_date = (today or dt.date.today()).isoformat()
        self.entries: list[Entry] = []
        self.raw_listener: RawTokenListener | None = None
        self.listeners: list[EventListener] = []
        """Called with every event of every turn, whoever drives the session (persistence)."""
        self.context_used = 0
        """Tokens in the last prompt plus what the model generated for it."""
        self._allowed_for_session: set[str] = set()
        self._cancel: CancelToken | None = None
        self._approval: asyncio.Task[Decision] | None = None
        self._stop_tokens = set(encoding.stop_tokens_for_assistant_actions())

    # -- the prompt ---------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        return [entry.message for entry in self.entries]

    def system_message(self) -> Message:
        content = (
            SystemContent.new()
            .with_model_identity(self.settings.model_identity)
            .with_reasoning_effort(_EFFORTS[self.settings.reasoning])
            .with_conversation_start_date(self.start_date)
            .with_knowledge_cutoff(self.settings.knowledge_cutoff)
        )
        for tool in self.tools.active():
            config = tool.system_config()
            if config is not None:
                content = content.with_tools(config)
        return Message.from_role_and_content(Role.SYSTEM, content)

    def developer_message(self) -> Message | None:
        active = self.tools.active()
        functions = [d for tool in active for d in tool.function_descriptions()]
        # As gpt-oss's own chat does: the user's instructions first, then each tool's guide.
        parts = [self.settings.developer_message, *(t.developer_instructions() for t in active)]
        instructions = "\n".join(part for part in parts if part)
        if not functions and not instructions:
            return None
        content = DeveloperContent.new()
        if instructions:
            content = content.with_instructions(instructions)
        if functions:
            content = content.with_function_tools(functions)
        return Message.from_role_and_content(Role.DEVELOPER, content)

    def conversation(self) -> Conversation:
        head = [self.system_message()]
        developer = self.developer_message()
        if developer is not None:
            head.append(developer)
        return Conversation.from_messages(head + self.messages)

    def render_prompt(self) -> list[int]:
        """Token ids of the conversation, ending with the assistant's turn to speak.

        Harmony drops the analysis of earlier turns (auto_drop_analysis): the model only sees
        its chain of thought for the turn in progress, as it was trained.
        """
        return self.encoding.render_conversation_for_completion(
            self.conversation(), Role.ASSISTANT, RenderConversationConfig(auto_drop_analysis=True)
        )

    # -- changing the conversation --------------------------------------------------------------

    def add_message(self, message: Message, *, interrupted: bool = False) -> MessageAdded:
        self.entries.append(Entry(message, interrupted))
        return MessageAdded(message, interrupted)

    def clear(self) -> None:
        self.entries.clear()
        self._allowed_for_session.clear()
        self.context_used = 0

    def last_user_index(self) -> int | None:
        for index in range(len(self.entries) - 1, -1, -1):
            if self.entries[index].message.author.role == Role.USER:
                return index
        return None

    def last_final_text(self) -> str:
        for entry in reversed(self.entries):
            message = entry.message
            if message.author.role == Role.ASSISTANT and message.channel == "final":
                return message_text(message)
        return ""

    def cancel(self) -> None:
        """Stop the turn in progress (between tokens, or while an approval is pending)."""
        if self._cancel is not None:
            self._cancel.cancel()
        if self._approval is not None and not self._approval.done():
            self._approval.cancel()

    @property
    def busy(self) -> bool:
        return self._cancel is not None

    # -- turns ----------------------------------------------------------------------------------

    async def send(self, text: str) -> AsyncIterator[Event]:
        """Add the user's message and run the model until it answers."""
        async for event in self._observed(self._send(text)):
            yield event

    async def retry(self) -> AsyncIterator[Event]:
        """Drop everything after the last user message and answer it again."""
        async for event in self._observed(self._retry()):
            yield event

    async def run_turn(self) -> AsyncIterator[Event]:
        """Let the model speak on the conversation as it stands (e.g. after a resume)."""
        async for event in self._observed(self._run_turn()):
            yield event

    async def _observed(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        async for event in events:
            for listener in self.listeners:
                listener(self, event)
            yield event

    async def _send(self, text: str) -> AsyncIterator[Event]:
        yield self.add_message(Message.from_role_and_content(Role.USER, text))
        async for event in self._run_turn():
            yield event

    async def _retry(self) -> AsyncIterator[Event]:
        index = self.last_user_index()
        if index is None:
            yield ErrorEvent("nothing to retry: no message from you yet")
            yield TurnDone("", error="nothing to retry")
            return
        del self.entries[index + 1 :]
        async for event in self._run_turn():
            yield event

    async def _run_turn(self) -> AsyncIterator[Event]:
        cancel = CancelToken()
        self._cancel = cancel
        try:
            async for event in self._turn_loop(cancel):
                yield event
        finally:
            self._cancel = None

    async def _turn_loop(self, cancel: CancelToken) -> AsyncIterator[Event]:
        stats: list[GenerationStats] = []
        final_parts: list[str] = []
        round_trips = 0
        while True:
            outcome = _CallOutcome()
            async for item in self._model_call(cancel, stats, final_parts):
                if isinstance(item, _CallOutcome):
                    outcome = item
                else:
                    yield item
            if outcome.done is not None:
                yield outcome.done
                return
            call = outcome.tool_call
            assert call is not None, "a model call ends with a TurnDone or a tool call"
            round_trips += 1
            if round_trips > self.settings.max_tool_round_trips:
                text = (
                    f"stopped after {self.settings.max_tool_round_trips} tool calls in one turn; "
                    "send a message to let the model continue"
                )
                yield ErrorEvent(text, kind="round_trips")
                yield TurnDone("".join(final_parts), stats, error=text)
                return
            async for event in self._handle_tool_call(call):
                yield event
            if cancel.cancelled:
                yield TurnDone("".join(final_parts), stats, interrupted=True)
                return

    async def _model_call(
        self, cancel: CancelToken, stats: list[GenerationStats], final_parts: list[str]
    ) -> AsyncIterator[Event | _CallOutcome]:
        prompt = self.render_prompt()
        yield TurnStarted(len(prompt))
        call = _ModelCall(self.encoding)
        error: ErrorEvent | None = None
        last_token: int | None = None
        try:
            async for batch in stream_tokens(
                self.generator,
                prompt,
                stop_tokens=self._stop_tokens,
                sampling=self.settings.sampling,
                cancel=cancel,
            ):
                if self.raw_listener is not None:
                    self.raw_listener(batch)
                last_token = batch[-1]
                for token in batch:
                    for event in call.feed(token):
                        if isinstance(event, TextDelta):
                            final_parts.append(event.text)
                        yield event
        except HarmonyError as exc:
            cancel.cancel()
            error = ErrorEvent(f"the model produced invalid Harmony: {exc}", kind="harmony")
        except GeneratorError as exc:
            kind = "context" if "context" in type(exc).__name__.lower() else "generator"
            error = ErrorEvent(str(exc), kind=kind)
        except Exception as exc:  # an engine bug must not take the conversation down
            error = ErrorEvent(f"generation failed: {type(exc).__name__}: {exc}", kind="generator")
        last_stats = getattr(self.generator, "last_stats", None)
        if isinstance(last_stats, GenerationStats):
            stats.append(last_stats)
            self.context_used = last_stats.prompt_tokens + last_stats.generated_tokens
        else:
            self.context_used = len(prompt)

        for message in call.parser.messages:
            yield self.add_message(message)
        partial = call.partial_message()
        # Only <|return|> or <|call|> ends a model call cleanly; anything else was cut short.
        clean_end = last_token in self._stop_tokens
        stopped_early = error is not None or cancel.cancelled or not clean_end
        if stopped_early:
            if partial is not None:
                yield self.add_message(partial, interrupted=True)
            text = "".join(final_parts)
            if error is not None:
                yield error
                yield _CallOutcome(
                    done=TurnDone(text, stats, interrupted=True, error=error.message)
                )
            elif cancel.cancelled:
                yield _CallOutcome(done=TurnDone(text, stats, interrupted=True))
            else:
                message = "the answer was cut off at the token limit (--max-tokens)"
                yield ErrorEvent(message, kind="length")
                yield _CallOutcome(done=TurnDone(text, stats, interrupted=True, error=message))
            return

        last = call.parser.messages[-1] if call.parser.messages else None
        if last is not None and last.recipient and last.recipient != "assistant":
            yield _CallOutcome(
                tool_call=ToolCall(
                    recipient=last.recipient,
                    arguments=message_text(last),
                    channel=last.channel,
                    content_type=last.content_type,
                )
            )
            return
        yield _CallOutcome(done=TurnDone("".join(final_parts), stats))

    async def _handle_tool_call(self, call: ToolCall) -> AsyncIterator[Event]:
        tool = self.tools.for_recipient(call.recipient)
        if tool is None:
            available = ", ".join(sorted(self._recipient_names())) or "none"
            text = f"no tool named {call.recipient!r} is available (available: {available})"
            yield ErrorEvent(text, kind="unknown_tool")
            yield self.add_message(tool_message(call.recipient, f"Error: {text}", call.channel))
            return
        try:
            proposal = tool.propose(call)
        except ToolCallError as exc:
            yield ErrorEvent(f"{call.recipient}: {exc}", kind="tool")
            yield self.add_message(tool_message(call.recipient, f"Error: {exc}", call.channel))
            return
        except Exception as exc:  # a tool bug becomes a message, not a crash
            text = f"{call.recipient} failed to read the call: {type(exc).__name__}: {exc}"
            yield ErrorEvent(text, kind="tool")
            yield self.add_message(tool_message(call.recipient, f"Error: {text}", call.channel))
            return

        needs_decision = proposal.needs_approval and self._needs_decision(tool.name)
        yield ToolProposed(proposal, needs_decision)
        if needs_decision:
            decision = await self._ask(proposal)
            if decision.choice is ApprovalChoice.ALLOW_SESSION or (
                decision.choice is ApprovalChoice.APPROVE
                and self.settings.policy(tool.name) is ApprovalPolicy.ONCE
            ):
                self._allowed_for_session.add(tool.name)
            if not decision.approved:
                yield ToolDeclined(proposal, decision)
                text = "The user declined this tool call."
                if decision.reason:
                    text += f" Reason: {decision.reason}"
                yield self.add_message(tool_message(call.recipient, text, call.channel))
                return
        try:
            result = await asyncio.to_thread(tool.run, proposal)
        except Exception as exc:  # the tool's own errors should be ToolResults; this is a bug
            text = f"{call.recipient} failed: {type(exc).__name__}: {exc}"
            result = ToolResult(
                [tool_message(call.recipient, f"Error: {text}", call.channel)],
                summary=text,
                is_error=True,
            )
            yield ErrorEvent(text, kind="tool")
        yield ToolFinished(proposal, result)
        for message in result.messages:
            yield self.add_message(message)

    def _needs_decision(self, tool_name: str) -> bool:
        if self.settings.policy(tool_name) is ApprovalPolicy.ALWAYS:
            return False
        return tool_name not in self._allowed_for_session

    async def _ask(self, proposal: Proposal) -> Decision:
        """Await the approver; a cancel while it waits counts as a denial."""
        self._approval = asyncio.ensure_future(self.approver(proposal))
        try:
            return await self._approval
        except asyncio.CancelledError:
            if self._cancel is not None and self._cancel.cancelled:
                return Decision.deny("the user stopped the turn")
            raise
        finally:
            self._approval = None

    def _recipient_names(self) -> list[str]:
        return [tool.recipient_prefix for tool in self.tools.active()]


@dataclass
class _CallOutcome:
    """How one model call ended: the turn is done, or a tool call must be handled."""

    done: TurnDone | None = None
    tool_call: ToolCall | None = None
