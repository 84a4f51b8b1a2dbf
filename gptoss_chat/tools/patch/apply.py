"""Write a set of file edits all together or not at all, and undo them later.

Order of work, so that a failure at any step leaves the tree as it was:

1. verify: every file still holds the bytes the plan was made from (nothing changed since review);
2. stage: write each new content to a temporary file beside its target, fsync it, set its mode;
3. commit: rename each temporary file over its target (atomic per file) and unlink deletions;
4. on any failure, put back the original bytes of every file already committed, remove the
   staged temporaries and the directories we created, then report.

Undo is the same operation with before and after swapped, so it gets the same guarantees; it
refuses if a file was changed after the patch went in.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gptoss_chat.tools.patch.errors import PatchError, RollbackError


@dataclass(frozen=True)
class FileEdit:
    """One file's transition. `None` content means the file does not exist."""

    path: Path
    """Absolute and resolved inside the workspace."""
    before: bytes | None
    after: bytes | None
    before_mode: int | None = None
    after_mode: int | None = None
    """Permission bits for the written file; None: a fresh file's default (0o666 & ~umask)."""
    label: str = ""
    """How messages name the file (relative to the workspace); the full path if empty."""

    def inverted(self) -> FileEdit:
        return FileEdit(
            self.path, self.after, self.before, self.after_mode, self.before_mode, self.label
        )

    @property
    def name(self) -> str:
        return self.label or str(self.path)


@dataclass(frozen=True)
class UndoRecord:
    """What an applied patch did, enough to revert it."""

    edits: tuple[FileEdit, ...]
    created_directories: tuple[Path, ...] = ()
    """Directories the apply created (outermost first): removed on undo if left empty."""
    description: tuple[str, ...] = field(default=())
    """The plan's summary lines, for the undo message."""

    def undo(self, operations: FileOperations | None = None) -> str:
        """Revert the patch (atomically, like the apply) and say what was reverted.

        PatchError, with nothing changed, when a file no longer holds what the patch wrote.
        """
        undo_edits(self, operations)
        return "Reverted the last patch:\n" + "\n".join(self.description)


class FileOperations:
    """The disk side effects of an apply, one method per step so tests can make one fail."""

    def make_directory(self, path: Path) -> None:
        path.mkdir()

    def stage(self, target: Path, data: bytes, mode: int | None) -> Path:
        """Write `data` to a new temporary file beside `target`; return its path."""
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.patch-tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                if mode is not None:
                    os.fchmod(handle.fileno(), mode)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return temporary

    def commit(self, temporary: Path, target: Path) -> None:
        os.replace(temporary, target)

    def remove(self, target: Path) -> None:
        target.unlink()

    def sync_directory(self, path: Path) -> None:
        """Persist renames in `path` (best effort: some file systems refuse)."""
        with contextlib.suppress(OSError):
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def apply_edits(
    edits: Sequence[FileEdit], operations: FileOperations | None = None, *, since: str = "planned"
) -> tuple[Path, ...]:
    """Apply `edits` atomically and return the directories created.

    On failure raises PatchError with the tree as it was (RollbackError if restoring failed).

    `since` completes the message about files that no longer hold their `before` bytes:
    "changed since the patch was {since}".
    """
    operations = operations or FileOperations()
    _verify_current_state(edits, since)
    created: list[Path] = []
    staged: dict[Path, Path] = {}
    committed: list[FileEdit] = []
    try:
        for edit in edits:
            if edit.after is not None:
                created.extend(_make_parents(edit.path.parent, operations))
                staged[edit.path] = operations.stage(edit.path, edit.after, edit.after_mode)
        for edit in edits:
            if edit.after is None:
                operations.remove(edit.path)
            else:
                operations.commit(staged[edit.path], edit.path)
                del staged[edit.path]  # only once renamed: a failed rename leaves it to clean up
            committed.append(edit)
        for directory in {edit.path.parent for edit in edits}:
            operations.sync_directory(directory)
    except BaseException as exc:
        problems = _roll_back(committed, staged, created)
        if not isinstance(exc, Exception):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" at {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
        if problems:
            raise RollbackError(
                f"writing failed ({reason}{where}) and the rollback failed too: "
                + "; ".join(problems)
            ) from exc
        raise PatchError(
            f"writing failed ({reason}{where}); every file was restored, nothing changed"
        ) from exc
    return tuple(created)


def undo_edits(record: UndoRecord, operations: FileOperations | None = None) -> None:
    """Revert an applied patch; PatchError (and nothing changed) if that is no longer safe."""
    inverse = [edit.inverted() for edit in reversed(record.edits)]
    apply_edits(inverse, operations, since="applied")
    for directory in reversed(record.created_directories):
        with contextlib.suppress(OSError):  # not empty any more: the user put files there
            directory.rmdir()


def _verify_current_state(edits: Sequence[FileEdit], since: str) -> None:
    changed = []
    for edit in edits:
        # A symlink swapped into a parent since the plan was made would redirect the write.
        if os.path.realpath(edit.path.parent) != str(edit.path.parent):
            raise PatchError(f"{edit.name}: a parent directory became a symlink; refused")
        try:
            current: bytes | None = edit.path.read_bytes()
        except FileNotFoundError:
            current = None if not os.path.lexists(edit.path) else b"\0<dangling link>"
        except NotADirectoryError:
            current = None
        except OSError as exc:
            raise PatchError(f"{edit.name}: cannot read ({exc.strerror})") from exc
        if current != edit.before:
            changed.append(edit.name)
    if changed:
        raise PatchError(
            f"these files changed since the patch was {since}, so nothing was written: "
            + ", ".join(changed)
        )


def _make_parents(directory: Path, operations: FileOperations) -> list[Path]:
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    created = []
    for path in reversed(missing):
        operations.make_directory(path)
        created.append(path)
    return created


def _roll_back(
    committed: list[FileEdit], staged: dict[Path, Path], created: list[Path]
) -> list[str]:
    """Undo a half-done apply; return what could not be restored (empty when all went well)."""
    problems = []
    restore = FileOperations()  # never the injected one: rollback must not be sabotaged
    for edit in reversed(committed):
        try:
            if edit.before is None:
                edit.path.unlink(missing_ok=True)
            else:
                restore.commit(restore.stage(edit.path, edit.before, edit.before_mode), edit.path)
        except OSError as exc:
            problems.append(f"{edit.name}: {exc.strerror or exc}")
    for temporary in staged.values():
        with contextlib.suppress(OSError):
            temporary.unlink()
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            directory.rmdir()
    return problems
