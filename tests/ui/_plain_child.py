"""`python -m tests.ui._plain_child TARGET_FILE CHAT_FLAGS...`: the plain REPL with a test tool.

The tool stands in for apply_patch: its proposal is a diff, and running it appends a line to
TARGET_FILE, so the test can see whether an approval really let it run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openai_harmony import ToolDescription

from gptoss_chat.tools.base import Proposal, Tool, ToolCall, ToolRegistry, ToolResult, tool_message


class EditTool(Tool):
    name = "edit"

    def __init__(self, target: Path) -> None:
        self.target = target

    @property
    def recipient_prefix(self) -> str:
        return "functions.edit_file"

    def function_descriptions(self) -> list[ToolDescription]:
        parameters = {"type": "object", "properties": {"line": {"type": "string"}}}
        return [ToolDescription.new("edit_file", "Append a line to the file.", parameters)]

    def propose(self, call: ToolCall) -> Proposal:
        line = call.json_arguments().get("line", "")
        diff = f"--- a/{self.target.name}\n+++ b/{self.target.name}\n@@ -1 +1,2 @@\n old\n+{line}\n"
        return Proposal(self.name, call, f"Edit {self.target.name}", diff, "diff")

    def run(self, proposal: Proposal) -> ToolResult:
        line = proposal.call.json_arguments().get("line", "")
        with self.target.open("a") as file:
            file.write(line + "\n")
        message = tool_message(proposal.call.recipient, "edited", proposal.call.channel)
        return ToolResult([message], summary="1 file changed")


def main(argv: list[str]) -> int:
    from gptoss_chat.cli import build_chat_parser
    from gptoss_chat.factory import LaunchOptions
    from gptoss_chat.ui.plain import run_plain

    target = Path(argv[0])
    options = LaunchOptions.from_args(build_chat_parser().parse_args(argv[1:]))
    registry = ToolRegistry()
    registry.add(EditTool(target))
    return run_plain(options, tools=registry)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
