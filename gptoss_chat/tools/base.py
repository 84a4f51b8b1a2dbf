"""The one interface every tool implements.

A tool call goes through two steps so the user can approve it in between:

1. `propose(call)` is pure: it parses the model's arguments and returns a `Proposal` that shows
   exactly what would happen (the code, the URL, the diff). Bad arguments raise `ToolCallError`,
   which the core turns into a tool message so the model can correct itself.
2. `run(proposal)` does it. It may block (Docker, HTTP, disk): the core calls it in a thread.

Each tool owns its safety (sandbox limits, workspace confinement, URL guard) and has no module
globals; side effects sit behind objects injected at construction.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

from openai_harmony import Author, Message, Role, TextContent, ToolDescription, ToolNamespaceConfig

PreviewKind = Literal["code", "url", "diff", "text"]


@dataclass(frozen=True)
class ToolCall:
    """A message the model addressed to a tool, as parsed from Harmony."""

    recipient: str
    """Where the model sent it: 'browser.search', 'python', 'functions.apply_patch'."""
    arguments: str
    """The message text: JSON for browser and functions, source code for python."""
    channel: str | None = "commentary"
    content_type: str | None = None
    """E.g. '<|constrain|>json' or 'json' when the model declared the argument format."""

    @property
    def function(self) -> str:
        """The part after the namespace: 'search' for 'browser.search', '' for 'python'."""
        _, _, rest = self.recipient.partition(".")
        return rest

    def json_arguments(self) -> dict[str, Any]:
        """The arguments as a JSON object, or ToolCallError saying why they are not one."""
        text = self.arguments.strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolCallError(f"arguments are not valid JSON ({exc.msg} at {exc.pos})") from exc
        if not isinstance(value, dict):
            raise ToolCallError("arguments must be a JSON object")
        return value


@dataclass(frozen=True)
class Proposal:
    """What a tool call would do, shown to the user before it runs."""

    tool: str
    """The tool's name ('browser', 'python', 'apply_patch'): the key of approval policies."""
    call: ToolCall
    title: str
    """One line for the approval prompt: 'Run Python code', 'Open https://…'."""
    preview: str
    """The code, URL, query or unified diff the user approves."""
    preview_kind: PreviewKind = "text"
    language: str | None = None
    """Syntax of a 'code' preview, for highlighting."""
    needs_approval: bool = True
    """False for calls that touch neither the machine nor the network (e.g. find in a page)."""
    payload: Any = None
    """The parsed call, private to the tool (a patch plan, parsed browser arguments)."""


@dataclass(frozen=True)
class ToolResult:
    """What running a proposal produced."""

    messages: list[Message]
    """Harmony messages appended to the conversation (author: the tool)."""
    summary: str = ""
    """A short line for the UI's tool block: 'exit 0, 12 lines', 'Done! 2 files changed'."""
    is_error: bool = False
    data: Any = None
    """Extra detail for the UI (citations, changed files), never sent to the model."""


class ToolCallError(Exception):
    """The model's call cannot be run as written; the text goes back to the model."""


class ApprovalChoice(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    ALLOW_SESSION = "allow_session"
    """Approve this call and every later call of the same tool in this session."""


@dataclass(frozen=True)
class Decision:
    """The user's answer to a Proposal."""

    choice: ApprovalChoice
    reason: str = ""
    """For a denial: why, sent to the model so it can adjust."""

    @property
    def approved(self) -> bool:
        return self.choice is not ApprovalChoice.DENY

    @classmethod
    def approve(cls) -> Decision:
        return cls(ApprovalChoice.APPROVE)

    @classmethod
    def deny(cls, reason: str = "") -> Decision:
        return cls(ApprovalChoice.DENY, reason)

    @classmethod
    def allow_session(cls) -> Decision:
        return cls(ApprovalChoice.ALLOW_SESSION)


class Tool(ABC):
    """Base class of browser, python and apply_patch."""

    name: ClassVar[str]
    """Toggle and policy key: 'browser', 'python', 'apply_patch'."""

    @property
    def recipient_prefix(self) -> str:
        """Calls to this recipient or `prefix.something` belong to this tool."""
        return self.name

    def handles(self, recipient: str) -> bool:
        prefix = self.recipient_prefix
        return recipient == prefix or recipient.startswith(prefix + ".")

    def system_config(self) -> ToolNamespaceConfig | None:
        """The builtin tool namespace for the system message (browser, python), if any."""
        return None

    def function_descriptions(self) -> list[ToolDescription]:
        """Function tools for the developer message's `functions` namespace (apply_patch)."""
        return []

    def developer_instructions(self) -> str:
        """Text appended to the developer message's instructions while the tool is on."""
        return ""

    @abstractmethod
    def propose(self, call: ToolCall) -> Proposal:
        """Parse the call into a previewable Proposal; raise ToolCallError on bad arguments."""

    @abstractmethod
    def run(self, proposal: Proposal) -> ToolResult:
        """Carry out an approved proposal. May block; never called on the UI's event loop."""

    def close(self) -> None:  # noqa: B027 - optional hook, most tools hold nothing
        """Release what the tool holds (containers, HTTP sessions) when the session ends."""


def tool_message(author: str, text: str, channel: str | None = "commentary") -> Message:
    """A Harmony message from tool `author` (e.g. 'browser.search') back to the assistant."""
    message = Message.from_author_and_content(
        Author.new(Role.TOOL, author), TextContent(text=text)
    ).with_recipient("assistant")
    return message.with_channel(channel) if channel else message


@dataclass
class ToolRegistry:
    """The tools of one session, with their on/off switches."""

    tools: dict[str, Tool] = field(default_factory=dict)
    enabled: set[str] = field(default_factory=set)

    def add(self, tool: Tool, *, enabled: bool = True) -> None:
        self.tools[tool.name] = tool
        if enabled:
            self.enabled.add(tool.name)

    def set_enabled(self, name: str, on: bool) -> None:
        if name not in self.tools:
            raise KeyError(f"no tool named {name!r}")
        (self.enabled.add if on else self.enabled.discard)(name)

    def active(self) -> list[Tool]:
        return [tool for name, tool in self.tools.items() if name in self.enabled]

    def for_recipient(self, recipient: str) -> Tool | None:
        """The enabled tool that answers `recipient`, or None."""
        return next((tool for tool in self.active() if tool.handles(recipient)), None)

    def close(self) -> None:
        for tool in self.tools.values():
            tool.close()
