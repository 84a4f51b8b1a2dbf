"""Turn a parsed patch into a plan: the exact bytes every file will have, and a diff per file.

Building a plan reads files but writes nothing, so it can be shown for approval. The plan is
also what gets applied: `edits` pins each file's expected current bytes, so a file that changes
between review and apply makes the apply fail instead of clobbering the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gptoss_chat.tools.patch.apply import FileEdit
from gptoss_chat.tools.patch.diff import Region, unified_diff
from gptoss_chat.tools.patch.errors import PatchError
from gptoss_chat.tools.patch.hunks import apply_hunks
from gptoss_chat.tools.patch.parser import AddFile, DeleteFile, Patch, UpdateFile
from gptoss_chat.tools.patch.textfile import TextFile
from gptoss_chat.tools.patch.workspace import Workspace

ChangeKind = Literal["add", "update", "delete", "move"]
_SUMMARY_LETTER: dict[ChangeKind, str] = {"add": "A", "update": "M", "delete": "D", "move": "R"}
_NEW_FILE_MODE = None  # let the umask decide, as any editor would


@dataclass(frozen=True)
class FileChange:
    """One file section of the plan, for the reviewer."""

    kind: ChangeKind
    path: str
    """Relative to the root, '/'-separated; the source of a move."""
    new_path: str | None
    """The destination of a move."""
    diff: str
    """Unified diff of this file (a/ and b/ prefixes, like git)."""
    added: int
    removed: int
    replaces_existing: bool = False
    """An Add File or Move to whose target already existed: its old content is replaced."""

    @property
    def summary(self) -> str:
        """'M src/app.py (+2 -1)', 'R old.txt -> new/name.txt (+0 -0)'."""
        target = f"{self.path} -> {self.new_path}" if self.new_path else self.path
        note = ", replaced existing file" if self.replaces_existing else ""
        return f"{_SUMMARY_LETTER[self.kind]} {target} (+{self.added} -{self.removed}{note})"


@dataclass(frozen=True)
class PatchPlan:
    """Everything a patch will do, decided before anything is written."""

    root: Path
    changes: tuple[FileChange, ...]
    edits: tuple[FileEdit, ...] = field(repr=False)

    @property
    def diff(self) -> str:
        """The combined unified diff: the approval preview."""
        return "".join(change.diff for change in self.changes)

    def summary_lines(self) -> list[str]:
        return [change.summary for change in self.changes]

    @property
    def title(self) -> str:
        count = len(self.changes)
        return f"Apply patch: {count} file{'s' if count != 1 else ''} ({self._paths()})"

    def _paths(self) -> str:
        paths = [change.new_path or change.path for change in self.changes]
        shown = ", ".join(paths[:3])
        return shown + (f", +{len(paths) - 3} more" if len(paths) > 3 else "")


def build_plan(patch: Patch, workspace: Workspace) -> PatchPlan:
    """Resolve, read and patch every file in memory; PatchError on the first problem."""
    builder = _PlanBuilder(workspace)
    for operation in patch.operations:
        if isinstance(operation, AddFile):
            builder.add(operation)
        elif isinstance(operation, DeleteFile):
            builder.delete(operation)
        else:
            builder.update(operation)
    return PatchPlan(workspace.root, tuple(builder.changes), tuple(builder.edits))


class _PlanBuilder:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.changes: list[FileChange] = []
        self.edits: list[FileEdit] = []
        self._claimed: dict[Path, str] = {}

    def _claim(self, path: str) -> Path:
        """Resolve `path` and make sure no earlier section of this patch touched the same file."""
        resolved = self.workspace.resolve(path)
        if resolved in self._claimed:
            raise PatchError(
                f"{path}: the patch changes this file twice (also as {self._claimed[resolved]!r}); "
                "put all changes to one file in one section"
            )
        self._claimed[resolved] = path
        return resolved

    def add(self, operation: AddFile) -> None:
        resolved = self._claim(operation.path)
        self.workspace.check_parent_directories(operation.path, resolved)
        existing = self.workspace.read(operation.path, resolved)
        shown = self.workspace.display(resolved)
        new = TextFile.from_patch_content(operation.content)
        old = TextFile.decode(existing.data, operation.path) if existing else None
        self.edits.append(
            FileEdit(
                path=resolved,
                before=existing.data if existing else None,
                after=new.encode(),
                before_mode=existing.mode if existing else None,
                after_mode=existing.mode if existing else _NEW_FILE_MODE,
                label=shown,
            )
        )
        self._record("add", shown, None, old, new, replaces_existing=existing is not None)

    def delete(self, operation: DeleteFile) -> None:
        resolved = self._claim(operation.path)
        existing = self.workspace.read(operation.path, resolved)
        if existing is None:
            raise PatchError(f"{operation.path}: cannot delete, no such file")
        old = TextFile.decode(existing.data, operation.path)
        shown = self.workspace.display(resolved)
        self.edits.append(FileEdit(resolved, existing.data, None, existing.mode, None, shown))
        self._record("delete", shown, None, old, None)

    def update(self, operation: UpdateFile) -> None:
        resolved = self._claim(operation.path)
        existing = self.workspace.read(operation.path, resolved)
        if existing is None:
            raise PatchError(
                f"{operation.path}: cannot update, no such file (use '*** Add File:' to create it)"
            )
        old = TextFile.decode(existing.data, operation.path)
        new_lines, regions = apply_hunks(operation.path, old.lines, operation.hunks)
        new = old.with_lines(new_lines)
        shown = self.workspace.display(resolved)
        destination = self.workspace.resolve(operation.move_to) if operation.move_to else None
        if destination is None or destination == resolved:
            self.edits.append(
                FileEdit(resolved, existing.data, new.encode(), existing.mode, existing.mode, shown)
            )
            self._record("update", shown, None, old, new, regions=regions)
            return
        assert operation.move_to is not None
        destination = self._claim(operation.move_to)
        self.workspace.check_parent_directories(operation.move_to, destination)
        replaced = self.workspace.read(operation.move_to, destination)
        if replaced is not None:
            TextFile.decode(replaced.data, operation.move_to)  # refuse to overwrite binaries
        shown_destination = self.workspace.display(destination)
        self.edits.append(
            FileEdit(
                destination,
                replaced.data if replaced else None,
                new.encode(),
                replaced.mode if replaced else None,
                existing.mode,
                shown_destination,
            )
        )
        self.edits.append(FileEdit(resolved, existing.data, None, existing.mode, None, shown))
        self._record(
            "move",
            shown,
            shown_destination,
            old,
            new,
            replaces_existing=replaced is not None,
            regions=regions,
        )

    def _record(
        self,
        kind: ChangeKind,
        path: str,
        new_path: str | None,
        old: TextFile | None,
        new: TextFile | None,
        *,
        replaces_existing: bool = False,
        regions: list[Region] | None = None,
    ) -> None:
        diff, added, removed = _unified_diff(kind, path, new_path, old, new, regions)
        self.changes.append(
            FileChange(kind, path, new_path, diff, added, removed, replaces_existing)
        )


def _unified_diff(
    kind: ChangeKind,
    path: str,
    new_path: str | None,
    old: TextFile | None,
    new: TextFile | None,
    regions: list[Region] | None,
) -> tuple[str, int, int]:
    old_lines = old.diff_lines() if old else []
    new_lines = new.diff_lines() if new else []
    from_file = f"a/{path}" if old is not None and kind != "add" else "/dev/null"
    to_file = "/dev/null" if new is None else f"b/{new_path or path}"
    if kind == "add" and old is not None:
        from_file = f"a/{path}"  # an Add File over an existing file replaces it
    header = f"diff --git a/{path} b/{new_path or path}\n"
    if kind == "move":
        header += f"rename from {path}\nrename to {new_path}\n"
    body: list[str] = []
    added = removed = 0
    for line in unified_diff(old_lines, new_lines, from_file, to_file, regions):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
        body.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    if not body and kind != "update":
        body = [f"--- {from_file}\n", f"+++ {to_file}\n"]  # an empty file or a pure rename
    return header + "".join(body), added, removed
