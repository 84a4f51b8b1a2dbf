from __future__ import annotations

import datetime as dt

import pytest
from openai_harmony import HarmonyEncoding

from gptoss_chat.conversation import ChatSession
from gptoss_chat.generator import Generator
from gptoss_chat.tools.base import ToolRegistry

ANSWER = (
    "<|channel|>analysis<|message|>Simple greeting.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello from the server!<|return|>"
)


@pytest.fixture(scope="session")
def encoding(harmony_encoding: HarmonyEncoding) -> HarmonyEncoding:
    return harmony_encoding


def pieces(encoding: HarmonyEncoding, text: str, size: int = 3) -> list[list[int]]:
    ids = encoding.encode(text, allowed_special="all")
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def chat_with(encoding: HarmonyEncoding, generator: Generator) -> ChatSession:
    return ChatSession(
        encoding=encoding, generator=generator, tools=ToolRegistry(), today=dt.date(2025, 6, 28)
    )


async def drain(stream) -> list:
    return [event async for event in stream]
