"""Split a combined unified diff into per-file sections with +/- counts (patch review)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_GIT_HEADER = re.compile(r"^diff --git a/(.*?) b/(.*)$")


@dataclass(frozen=True)
class FileDiff:
    path: str
    """The file's path after the change (its old path for a deletion)."""
    diff: str
    added: int
    removed: int

    @property
    def label(self) -> str:
        return f"+{self.added} -{self.removed}  {self.path}"


def _path_of(header: str) -> str:
    """'+++ b/src/x.py' → 'src/x.py'; '/dev/null' stays as is."""
    name = header[4:].split("\t")[0].strip()
    return name[2:] if name[:2] in ("a/", "b/") else name


def split_diff(text: str) -> list[FileDiff]:
    """Sections start at 'diff --git' or, for plain diffs, at a '--- ' line followed by '+++ '."""
    lines = text.splitlines(keepends=True)
    starts: list[int] = []
    for index, line in enumerate(lines):
        if line.startswith("diff --git ") or (
            line.startswith("--- ")
            and index + 1 < len(lines)
            and lines[index + 1].startswith("+++ ")
            and not (starts and _in_git_section(lines, starts[-1], index))
        ):
            starts.append(index)
    if not starts:
        return [_section(lines)] if text.strip() else []
    return [
        _section(lines[start:end])
        for start, end in zip(starts, [*starts[1:], len(lines)], strict=True)
    ]


def _in_git_section(lines: list[str], start: int, index: int) -> bool:
    """A '---' line right after a 'diff --git' header belongs to that header's section."""
    if not lines[start].startswith("diff --git "):
        return False
    return not any(line.startswith("@@") for line in lines[start:index])


def _section(lines: list[str]) -> FileDiff:
    path = ""
    added = removed = 0
    in_hunk = False
    for line in lines:
        if line.startswith("@@"):
            in_hunk = True
        elif not in_hunk and line.startswith("+++ "):
            target = _path_of(line)
            path = target if target != "/dev/null" else path
        elif not in_hunk and line.startswith("--- "):
            path = path or (_path_of(line) if _path_of(line) != "/dev/null" else "")
        elif not in_hunk and (match := _GIT_HEADER.match(line.rstrip("\n"))):
            path = match.group(2)
        elif in_hunk and line.startswith("+"):
            added += 1
        elif in_hunk and line.startswith("-"):
            removed += 1
    return FileDiff(path or "(patch)", "".join(lines), added, removed)
