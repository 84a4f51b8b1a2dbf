"""App-wide messages (widget-specific ones are nested in their widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

    from gptoss_chat.generator import Generator
    from gptoss_chat.tools.base import ToolRegistry


@dataclass
class ModelLoadProgressed(Message):
    """The loader thread reports progress; consecutive reports merge (only the last matters)."""

    fraction: float
    description: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ModelLoadProgressed)


@dataclass
class ModelLoaded(Message):
    encoding: HarmonyEncoding
    generator: Generator
    tools: ToolRegistry
    """Built in the loader thread too: tool modules pull in SDKs (docker, HTTP clients)."""


@dataclass
class ModelLoadFailed(Message):
    error: str
