"""What `gptoss-chat MODEL_DIR [PROMPT]` does: one-shot mode, the plain REPL or the TUI."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from gptoss_chat.config import ConfigError
from gptoss_chat.factory import (
    LaunchOptions,
    attach_persistence,
    load_encoding_for,
    load_generator,
    make_session,
)


def launch(args: argparse.Namespace) -> int:
    _resume_value_is_model_dir(args)
    try:
        options = LaunchOptions.from_args(args)
    except ConfigError as exc:
        print(f"gptoss-chat: {exc}", file=sys.stderr)
        return 2
    prompt = args.prompt
    if prompt is None and _model_dir_is_a_prompt(options, args):
        prompt, options.model_dir = args.model_dir, None
    if prompt is not None:
        return run_one_shot(options, prompt, show_analysis=args.show_analysis)
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

    Tool calls run only where the policy says `always` (--yes, or the config file); the rest
    are denied. The turn is saved like any chat (--resume continues a session).
    Exit code 1 on any error.
    """
    # Here, not at the top: the TUI's first frame comes before openai_harmony is imported.
    from gptoss_chat.conversation import deny_all
    from gptoss_chat.events import (
        ErrorEvent,
        ReasoningDelta,
        TextDelta,
        ToolDeclined,
        ToolFinished,
        ToolProposed,
        TurnDone,
    )
    from gptoss_chat.store import StoreError

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        encoding = load_encoding_for(options)
        generator = load_generator(options, encoding)
    except Exception as exc:  # loading errors are the user's to read, not a traceback
        print(f"gptoss-chat: {exc}", file=err)
        return 1
    try:
        session = make_session(options, encoding=encoding, generator=generator, approver=deny_all)
        recorder = attach_persistence(session, options)
    except (StoreError, ValueError) as exc:  # a stored session or tool setting the user must fix
        print(f"gptoss-chat: {exc}", file=err)
        return 1
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
        if recorder is not None:
            recorder.store.close()


def _model_dir_is_a_prompt(options: LaunchOptions, args: argparse.Namespace) -> bool:
    """`gptoss-chat --backend vllm --server URL "question"`: a server needs no MODEL_DIR, so
    the one positional argument is the prompt (unless it names an existing path)."""
    return (
        options.backend in ("vllm", "ollama")
        and args.model_dir is not None
        and not Path(args.model_dir).expanduser().exists()
    )


def _resume_value_is_model_dir(args: argparse.Namespace) -> None:
    """`gptoss-chat --resume MODEL_DIR`: argparse hands MODEL_DIR to --resume; give it back."""
    resume = getattr(args, "resume", None)
    if resume and resume != "last" and args.model_dir is None and Path(resume).exists():
        args.model_dir, args.resume = resume, "last"
