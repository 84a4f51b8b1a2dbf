"""Snapshot and copy small directory trees for apply_patch tests."""

from __future__ import annotations

import shutil
from pathlib import Path

IGNORED_NAMES = {".gitkeep"}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` (not following symlinks) as relative path -> bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name not in IGNORED_NAMES
    }


def copy_tree(source: Path, destination: Path) -> None:
    ignore = shutil.ignore_patterns(*IGNORED_NAMES)
    shutil.copytree(source, destination, symlinks=True, ignore=ignore)
