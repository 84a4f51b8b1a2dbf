"""App-wide messages (widget-specific ones are nested in their widgets)."""

from __future__ import annotations

from dataclasses import dataclass

from openai_harmony import HarmonyEncoding
from textual.message import Message

from gptoss_chat.generator import Generator


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


@dataclass
class ModelLoadFailed(Message):
    error: str
