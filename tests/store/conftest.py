from __future__ import annotations

import datetime as dt

import pytest
from openai_harmony import HarmonyEncoding

from gptoss_chat.conversation import ChatSession
from gptoss_chat.generator import ReplayGenerator
from gptoss_chat.tools.base import ToolRegistry

ANSWER = (
    "<|channel|>analysis<|message|>The user greets me. Answer briefly.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello! How can I help?<|return|>"
)


@pytest.fixture(scope="session")
def encoding(harmony_encoding: HarmonyEncoding) -> HarmonyEncoding:
    return harmony_encoding


def make_chat(encoding: HarmonyEncoding, *completions: str, delay: float = 0.0) -> ChatSession:
    scripts = [encoding.encode(text, allowed_special="all") for text in completions]
    return ChatSession(
        encoding=encoding,
        generator=ReplayGenerator(
            scripts or [encoding.encode(ANSWER, allowed_special="all")], delay=delay
        ),
        tools=ToolRegistry(),
        today=dt.date(2025, 6, 28),
    )


async def drain(stream) -> list:
    return [event async for event in stream]
