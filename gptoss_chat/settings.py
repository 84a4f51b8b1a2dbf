"""What a chat session needs to know to build its prompt and run tools.

Changes take effect on the next model call: the system and developer messages are rebuilt
from these settings every time the prompt is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gptoss_chat.generator import SamplingOptions

REASONING_EFFORTS = ("low", "medium", "high")
DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"


class ApprovalPolicy(StrEnum):
    ASK = "ask"
    """Ask before every call."""
    ONCE = "once"
    """Ask before the first call; approving it allows the rest of the session."""
    ALWAYS = "always"
    """Never ask."""


@dataclass
class ChatSettings:
    reasoning: str = "medium"
    """Reasoning effort: low, medium or high."""
    developer_message: str = ""
    """Instructions placed in the developer message."""
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    max_tool_round_trips: int = 16
    """Tool calls allowed in one turn before the core stops the loop."""
    approval: dict[str, ApprovalPolicy] = field(default_factory=dict)
    """Per tool name; tools not listed use ASK."""
    model_identity: str = DEFAULT_IDENTITY
    knowledge_cutoff: str = KNOWLEDGE_CUTOFF

    def __post_init__(self) -> None:
        if self.reasoning not in REASONING_EFFORTS:
            raise ValueError(
                f"reasoning effort must be one of {', '.join(REASONING_EFFORTS)}, "
                f"not {self.reasoning!r}"
            )

    def policy(self, tool: str) -> ApprovalPolicy:
        return self.approval.get(tool, ApprovalPolicy.ASK)

    def next_reasoning(self) -> str:
        """The effort after the current one, wrapping around (the UI's cycle key)."""
        index = REASONING_EFFORTS.index(self.reasoning)
        return REASONING_EFFORTS[(index + 1) % len(REASONING_EFFORTS)]
