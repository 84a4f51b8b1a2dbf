"""The plain REPL's pure parts: reading approval answers, completing slash commands."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from gptoss_chat.tools.base import ApprovalChoice, Decision
from gptoss_chat.ui.plain import SlashCompleter, parse_approval


@pytest.mark.parametrize(
    ("answer", "decision"),
    [
        ("y", Decision.approve()),
        ("YES", Decision.approve()),
        (" a ", Decision.allow_session()),
        ("always", Decision.allow_session()),
        ("n", Decision.deny("")),
        ("no", Decision.deny("")),
        ("n too risky", Decision.deny("too risky")),
        ("no: use a dry run first", Decision.deny("use a dry run first")),
        ("", None),
        ("maybe", None),
        ("y please", None),
    ],
)
def test_parse_approval(answer: str, decision: Decision | None) -> None:
    assert parse_approval(answer) == decision


def test_a_denial_is_not_an_approval() -> None:
    assert parse_approval("n x").choice is ApprovalChoice.DENY


@pytest.mark.parametrize(
    ("typed", "offered"),
    [
        ("/re", ["/reasoning", "/retry"]),
        ("/q", ["/quit"]),
        ("/reasoning ", ["low", "medium", "high"]),
        ("/reasoning h", ["high"]),
        ("/tools ", ["apply_patch", "python"]),
        ("/tools python ", ["on", "off"]),
        ("/export j", ["json"]),
        ("hello /re", []),
        ("/retry x y", []),
    ],
)
def test_slash_completion(typed: str, offered: list[str]) -> None:
    completer = SlashCompleter(["python", "apply_patch"])
    found = completer.get_completions(Document(typed), CompleteEvent(text_inserted=True))
    assert [completion.text for completion in found] == offered


def test_text_from_the_model_and_tools_is_never_read_as_markup() -> None:
    import io

    from rich.console import Console

    from gptoss_chat.events import ErrorEvent, ToolDeclined
    from gptoss_chat.tools.base import Proposal, ToolCall
    from gptoss_chat.ui.plain_render import EventPrinter

    out = io.StringIO()
    printer = EventPrinter(Console(file=out, width=100))
    printer.handle(ErrorEvent("bad [y]es [/] token"))
    proposal = Proposal("python", ToolCall("python", "x"), "Run [red]code", "x")
    printer.handle(ToolDeclined(proposal, Decision.deny("[bold]no[/bold]")))
    assert "bad [y]es [/] token" in out.getvalue()
    assert "declined: [bold]no[/bold]" in out.getvalue()
