"""What `gptoss-chat MODEL_DIR [PROMPT]` does: one-shot mode, the plain REPL or the TUI."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from gptoss_chat.conversation import approve_all, deny_all
from gptoss_chat.events import (
    ErrorEvent,
    ReasoningDelta,
    TextDelta,
    ToolDeclined,
    ToolFinished,
    ToolProposed,
    TurnDone,
)
from gptoss_chat.factory import LaunchOptions, load_encoding_for, load_generator, make_session


def launch(args: argparse.Namespace) -> int:
    options = LaunchOptions.from_args(args)
    if args.prompt is not None:
        return run_one_shot(options, args.prompt, show_analysis=args.show_analysis)
    if options.plain or options.raw:
        from gptoss_chat.ui.plain import run_plain

        return run_plain(options)
    from gptoss_chat.ui.app import run_app

    return run_app(options)


def run_one_shot(
    options: LaunchOptions,
    prompt: str,
    *,
    show_analysis: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """One turn without an interface: the answer on stdout, everything else on stderr.

    Tool calls are denied unless --yes approved them all. Exit code 1 on any error.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    approver = approve_all if args_said_yes(options) else deny_all
    try:
        encoding = load_encoding_for(options)
        generator = load_generator(options, encoding)
    except Exception as exc:  # loading errors are the user's to read, not a traceback
        print(f"gptoss-chat: {exc}", file=err)
        return 1
    session = make_session(options, encoding=encoding, generator=generator, approver=approver)
    if options.raw:
        session.raw_listener = lambda ids: err.write(encoding.decode(ids))

    async def drive() -> int:
        failed = False
        async for event in session.send(prompt):
            if isinstance(event, TextDelta):
                out.write(event.text)
                out.flush()
            elif isinstance(event, ReasoningDelta) and show_analysis:
                err.write(event.text)
                err.flush()
            elif isinstance(event, ToolProposed):
                err.write(f"\n[tool] {event.proposal.title}\n")
            elif isinstance(event, ToolDeclined):
                err.write(f"[tool] declined: {event.decision.reason}\n")
            elif isinstance(event, ToolFinished) and event.result.summary:
                err.write(f"[tool] {event.result.summary}\n")
            elif isinstance(event, ErrorEvent):
                err.write(f"\ngptoss-chat: {event.message}\n")
                failed = True
            elif isinstance(event, TurnDone):
                out.write("\n")
                failed = failed or event.error is not None
        return 1 if failed else 0

    try:
        return asyncio.run(drive())
    finally:
        session.tools.close()


def args_said_yes(options: LaunchOptions) -> bool:
    from gptoss_chat.settings import ApprovalPolicy

    return any(p is ApprovalPolicy.ALWAYS for p in options.settings.approval.values())
