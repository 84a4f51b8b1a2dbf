from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from openai_harmony import HarmonyEncoding, ToolDescription

from gptoss_chat.conversation import ChatSession
from gptoss_chat.events import Event
from gptoss_chat.generator import ReplayGenerator
from gptoss_chat.settings import ChatSettings
from gptoss_chat.tools.base import Decision, Proposal, Tool, ToolCall, ToolRegistry, ToolResult
from gptoss_chat.tools.base import tool_message as make_tool_message


@pytest.fixture(scope="session")
def encoding(harmony_encoding: HarmonyEncoding) -> HarmonyEncoding:
    return harmony_encoding


class WeatherTool(Tool):
    """A function tool with the cookbook's weather example; records the calls it runs."""

    name = "weather"

    def __init__(self, *, fail: bool = False) -> None:
        self.runs: list[str] = []
        self.fail = fail

    @property
    def recipient_prefix(self) -> str:
        return "functions.get_current_weather"

    def function_descriptions(self) -> list[ToolDescription]:
        return [
            ToolDescription.new(
                "get_current_weather",
                "Gets the current weather in the provided location.",
                parameters={
                    "type": "object",
                    "properties": {
                        "location": {
                            "type": "string",
                            "description": "The city and state, e.g. San Francisco, CA",
                        },
                        "format": {
                            "type": "string",
                            "enum": ["celsius", "fahrenheit"],
                            "default": "celsius",
                        },
                    },
                    "required": ["location"],
                },
            )
        ]

    def propose(self, call: ToolCall) -> Proposal:
        args = call.json_arguments()
        return Proposal(self.name, call, f"Weather in {args.get('location')}", call.arguments)

    def run(self, proposal: Proposal) -> ToolResult:
        if self.fail:
            raise RuntimeError("weather service exploded")
        self.runs.append(proposal.call.arguments)
        text = '{"sunny": true, "temperature": 20}'
        return ToolResult([make_tool_message(proposal.call.recipient, text, "commentary")])


class ScriptedApprover:
    """Answers approvals from a list and records what it was shown."""

    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.seen: list[Proposal] = []

    async def __call__(self, proposal: Proposal) -> Decision:
        self.seen.append(proposal)
        return self.decisions.pop(0) if self.decisions else Decision.deny("no more answers")


@pytest.fixture
def script(encoding: HarmonyEncoding) -> Callable[[str], list[int]]:
    """Harmony text as the model would produce it → token ids."""

    def encode(text: str) -> list[int]:
        return encoding.encode(text, allowed_special="all")

    return encode


def make_session(
    encoding: HarmonyEncoding,
    completions: list[list[int]],
    *,
    tools: list[Tool] = (),
    approver: ScriptedApprover | None = None,
    settings: ChatSettings | None = None,
    delay: float = 0.0,
) -> ChatSession:
    import datetime as dt

    registry = ToolRegistry()
    for tool in tools:
        registry.add(tool)
    return ChatSession(
        encoding=encoding,
        generator=ReplayGenerator(completions, delay=delay),
        tools=registry,
        settings=settings or ChatSettings(),
        approver=approver or ScriptedApprover(),
        today=dt.date(2025, 6, 28),
    )


async def collect(stream) -> list[Event]:
    return [event async for event in stream]


def run(coro):
    return asyncio.run(coro)
