"""The apply_patch tool: the model edits workspace files with V4A patches, after review.

`propose` parses and plans the patch (reading files, writing nothing) and shows the combined
unified diff; `run` applies the approved plan atomically; `undo` reverts the last applied patch.
The `gptoss-chat apply-patch` command drives the same three steps.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from openai_harmony import ToolDescription

from gptoss_chat.tools.apply_patch_instructions import (
    APPLY_PATCH_DESCRIPTION,
    APPLY_PATCH_INSTRUCTIONS,
)
from gptoss_chat.tools.base import Proposal, Tool, ToolCall, ToolCallError, ToolResult, tool_message
from gptoss_chat.tools.patch import (
    DEFAULT_MAX_FILE_BYTES,
    PatchError,
    PatchPlan,
    UndoRecord,
    Workspace,
    apply_edits,
    build_plan,
    extract_patch_text,
    parse_patch,
)
from gptoss_chat.tools.patch.apply import FileOperations
from gptoss_chat.tools.patch.errors import RollbackError

RECIPIENT = "functions.apply_patch"
_UNDO_DEPTH = 20
"""Applied patches remembered for /undo; older ones can no longer be reverted."""


class ApplyPatchTool(Tool):
    """Edits files under one workspace root, never outside it."""

    name = "apply_patch"
    instructions = APPLY_PATCH_INSTRUCTIONS
    """The format guide gpt-oss expects; also the function's description (see below)."""

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        instructions_in_description: bool = True,
        file_operations: FileOperations | None = None,
    ) -> None:
        """`root` defaults to the current directory. With `instructions_in_description` False the
        function description is just "Patch a file", as in gpt-oss's own chat, and the caller
        puts `instructions` into the developer message's instructions instead.
        `file_operations` lets tests inject a failing disk. PatchError if the root is no directory.
        """
        self.workspace = Workspace(root if root is not None else os.getcwd(), max_file_bytes)
        self._instructions_in_description = instructions_in_description
        self._file_operations = file_operations
        self._undo_stack: list[UndoRecord] = []
        # run() happens on a worker thread while /undo may come from the UI: one at a time.
        self._lock = threading.Lock()

    @property
    def recipient_prefix(self) -> str:
        return RECIPIENT

    @property
    def root(self) -> Path:
        return self.workspace.root

    def function_descriptions(self) -> list[ToolDescription]:
        # gpt-oss was trained with the argument declared as one plain string (the patch) and the
        # format guide in the developer instructions. By default the guide rides in the
        # description, so the model sees it wherever the functions namespace is rendered.
        description = APPLY_PATCH_DESCRIPTION
        if self._instructions_in_description:
            description = f"{APPLY_PATCH_DESCRIPTION}.\n\n{APPLY_PATCH_INSTRUCTIONS}"
        return [
            ToolDescription.new(
                "apply_patch",
                description,
                parameters={
                    "type": "string",
                    "description": "Formatted patch code",
                    "default": "*** Begin Patch\n*** End Patch\n",
                },
            )
        ]

    def developer_instructions(self) -> str:
        return "" if self._instructions_in_description else APPLY_PATCH_INSTRUCTIONS

    def plan(self, patch_text: str) -> PatchPlan:
        """Parse and plan `patch_text` (raw or JSON-wrapped); PatchError says what is wrong."""
        return build_plan(parse_patch(extract_patch_text(patch_text)), self.workspace)

    def propose(self, call: ToolCall) -> Proposal:
        try:
            plan = self.plan(call.arguments)
        except PatchError as exc:
            raise ToolCallError(f"apply_patch failed: {exc}\nNo file was changed.") from exc
        return Proposal(
            tool=self.name,
            call=call,
            title=plan.title,
            preview=plan.diff,
            preview_kind="diff",
            payload=plan,
        )

    def run(self, proposal: Proposal) -> ToolResult:
        plan = proposal.payload
        if not isinstance(plan, PatchPlan):
            raise TypeError("apply_patch.run needs a proposal made by apply_patch.propose")
        try:
            with self._lock:
                created = apply_edits(plan.edits, self._file_operations)
                record = UndoRecord(plan.edits, created, tuple(plan.summary_lines()))
                self._undo_stack.append(record)
                del self._undo_stack[:-_UNDO_DEPTH]
        except PatchError as exc:
            outcome = (
                "Some files may be changed."
                if isinstance(exc, RollbackError)
                else ("No file was changed.")
            )
            text = f"Error: apply_patch failed: {exc}\n{outcome}"
            return ToolResult([tool_message(RECIPIENT, text)], "patch failed", is_error=True)
        count = len(plan.changes)
        text = "Done!\n" + "\n".join(plan.summary_lines())
        summary = f"Done! {count} file{'s' if count != 1 else ''} changed"
        return ToolResult([tool_message(RECIPIENT, text)], summary, data=plan.changes)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo_stack)

    def undo(self) -> str:
        """Revert the last applied patch and say what was reverted.

        Raises PatchError (and changes nothing) when there is nothing to undo or a file was
        edited after the patch went in; the record is kept so the user can fix that and retry.
        """
        with self._lock:
            if not self._undo_stack:
                raise PatchError("nothing to undo: no patch has been applied in this session")
            text = self._undo_stack[-1].undo(self._file_operations)
            self._undo_stack.pop()
            return text
