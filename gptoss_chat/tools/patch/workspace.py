"""The directory a patch may touch, and the only way patch paths become real paths.

Every path in a patch is relative to the workspace root and must resolve, after following
symlinks, to a file strictly inside it: absolute paths, '..' escapes and symlinks that lead out
are refused before anything is read. Files are read whole, so binary files and files over a
size limit are refused too (a diff of them would be useless to review).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from gptoss_chat.tools.patch.errors import PatchError

DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024
"""Larger files are refused: the model cannot have meant to rewrite them through a diff."""


@dataclass(frozen=True)
class ExistingFile:
    data: bytes
    mode: int
    """Permission bits (st_mode & 0o7777), restored on the rewritten file."""


class Workspace:
    """A root directory plus the rules for reaching files under it."""

    def __init__(self, root: Path | str, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        try:
            resolved = Path(root).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise PatchError(f"workspace root {str(root)!r} does not exist") from exc
        if not resolved.is_dir():
            raise PatchError(f"workspace root {str(root)!r} is not a directory")
        self.root = resolved
        self.max_file_bytes = max_file_bytes

    def resolve(self, path: str) -> Path:
        """The real absolute path of patch path `path`, or PatchError if it leaves the root."""
        if not path or "\0" in path:
            raise PatchError(f"invalid path {path!r}")
        windows = PureWindowsPath(path)
        if PurePosixPath(path).is_absolute() or windows.is_absolute() or windows.drive:
            raise PatchError(
                f"{path}: absolute paths are not allowed; use a path relative to {self.root}"
            )
        try:
            # resolve() follows every symlink that exists, so a link pointing out is caught here.
            resolved = (self.root / path).resolve(strict=False)
        except (OSError, RuntimeError) as exc:
            raise PatchError(f"{path}: cannot resolve the path ({exc})") from exc
        if resolved == self.root:
            raise PatchError(f"{path}: names the workspace root itself, not a file")
        if not resolved.is_relative_to(self.root):
            raise PatchError(f"{path}: resolves outside the workspace {self.root}; refused")
        return resolved

    def display(self, resolved: Path) -> str:
        """How a resolved path is shown in diffs and messages: relative, with '/'."""
        return resolved.relative_to(self.root).as_posix()

    def read(self, path: str, resolved: Path) -> ExistingFile | None:
        """The file's bytes and mode, or None if absent. Refuses non-files and big files."""
        try:
            info = os.stat(resolved)
        except FileNotFoundError:
            return None
        except NotADirectoryError as exc:
            raise PatchError(f"{path}: a parent of this path is a file, not a directory") from exc
        except OSError as exc:
            raise PatchError(f"{path}: cannot read ({exc.strerror})") from exc
        if stat.S_ISDIR(info.st_mode):
            raise PatchError(f"{path}: is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise PatchError(f"{path}: not a regular file; refused")
        if info.st_size > self.max_file_bytes:
            raise PatchError(
                f"{path}: {info.st_size} bytes is over the {self.max_file_bytes}-byte limit for "
                "patched files; refused"
            )
        try:
            data = resolved.read_bytes()
        except OSError as exc:
            raise PatchError(f"{path}: cannot read ({exc.strerror})") from exc
        return ExistingFile(data, stat.S_IMODE(info.st_mode))

    def check_parent_directories(self, path: str, resolved: Path) -> None:
        """Refuse a new file whose parent path runs into an existing non-directory."""
        for parent in resolved.parents:
            if parent == self.root:
                return
            if parent.exists() and not parent.is_dir():
                raise PatchError(
                    f"{path}: {self.display(parent)} is a file, so it cannot hold {path}"
                )
