"""`gptoss-chat apply-patch`: apply (or just inspect) a V4A patch read on stdin.

It goes through the apply_patch tool's own propose/run, so what it prints and refuses is
exactly what the model's call would get.
"""

from __future__ import annotations

import argparse
import sys

from gptoss_chat.tools.apply_patch import RECIPIENT, ApplyPatchTool
from gptoss_chat.tools.base import ToolCall, ToolCallError
from gptoss_chat.tools.patch import PatchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=".",
        help="workspace root: every path in the patch is relative to it and must stay inside "
        "(default: the current directory)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the per-file diffs and check the patch applies, but write nothing",
    )


def run(args: argparse.Namespace) -> int:
    try:
        tool = ApplyPatchTool(args.root)
    except PatchError as exc:
        print(f"apply-patch: {exc}", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        print("apply-patch: reading the patch from stdin (end with Ctrl-D)", file=sys.stderr)
    try:
        patch_text = sys.stdin.read()
    except UnicodeDecodeError as exc:
        print(f"apply-patch: the patch is not UTF-8 text ({exc.reason})", file=sys.stderr)
        return 1
    try:
        proposal = tool.propose(ToolCall(RECIPIENT, patch_text))
    except ToolCallError as exc:
        print(f"apply-patch: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(proposal.preview)
    if args.dry_run:
        print(
            f"dry run: {proposal.title.removeprefix('Apply patch: ')} would change; nothing written"
        )
        return 0
    result = tool.run(proposal)
    text = "\n".join(str(getattr(content, "text", "")) for content in result.messages[0].content)
    if result.is_error:
        print(f"apply-patch: {text}", file=sys.stderr)
        return 1
    print(text)
    return 0
