"""V4A patches: parse the text, plan the file changes (with diffs), apply them atomically.

The split mirrors the approval flow: `parse_patch` and `build_plan` are pure reads, so the plan
and its unified diff can be shown before `apply_plan` writes anything.
"""

from gptoss_chat.tools.patch.apply import FileEdit, UndoRecord, apply_edits, undo_edits
from gptoss_chat.tools.patch.errors import PatchError
from gptoss_chat.tools.patch.parser import (
    AddFile,
    DeleteFile,
    Hunk,
    Patch,
    UpdateFile,
    extract_patch_text,
    parse_patch,
)
from gptoss_chat.tools.patch.plan import FileChange, PatchPlan, build_plan
from gptoss_chat.tools.patch.workspace import DEFAULT_MAX_FILE_BYTES, Workspace

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "AddFile",
    "DeleteFile",
    "FileChange",
    "FileEdit",
    "Hunk",
    "Patch",
    "PatchError",
    "PatchPlan",
    "UndoRecord",
    "UpdateFile",
    "Workspace",
    "apply_edits",
    "build_plan",
    "extract_patch_text",
    "parse_patch",
    "undo_edits",
]
