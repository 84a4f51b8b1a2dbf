"""Parse V4A patch text (the format gpt-oss was trained to emit) into file operations.

The grammar, in short:

    *** Begin Patch
    *** Add File: PATH        then '+' lines (the new file)
    *** Delete File: PATH     nothing follows
    *** Update File: PATH     optionally '*** Move to: NEW', then hunks:
    @@ [anchor]               one or more (nested) anchors narrowing where the hunk is
    ' ' / '-' / '+' lines     context, removed, added
    *** End of File           the hunk ends at the end of the file
    *** End Patch

The parser is lenient where models are sloppy but the intent is clear: the patch may arrive
inside JSON or a heredoc, markers may carry padding whitespace, a blank line inside a hunk is a
blank context line, a unified-diff '@@ -1,3 +1,4 @@' header is taken as a bare '@@'. It knows
nothing of the files: matching hunks against them is the plan's job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from gptoss_chat.tools.patch.errors import PatchError

BEGIN_PATCH = "*** Begin Patch"
END_PATCH = "*** End Patch"
ADD_FILE = "*** Add File:"
DELETE_FILE = "*** Delete File:"
UPDATE_FILE = "*** Update File:"
MOVE_TO = "*** Move to:"
END_OF_FILE = "*** End of File"
FILE_HEADERS = (ADD_FILE, DELETE_FILE, UPDATE_FILE)

# '@@ -12,7 +12,8 @@ optional trailing text': a unified diff header a model may write by habit.
_UNIFIED_HUNK_HEADER = re.compile(r"^-\d+(?:,\d+)?\s+\+\d+(?:,\d+)?\s*@@\s?(?P<rest>.*)$")
_HEREDOC_START = re.compile(r"^(?:apply_patch\s*)?<<-?\s*['\"]?(?P<tag>\w+)['\"]?$")
# JSON keys under which a model has been seen to put the patch text.
_JSON_PATCH_KEYS = ("patch", "input", "content", "text", "diff")

LineKind = Literal[" ", "-", "+"]


@dataclass(frozen=True)
class HunkLine:
    kind: LineKind
    """' ' context, '-' removed, '+' added."""
    text: str


@dataclass(frozen=True)
class Hunk:
    """One contiguous block of context/removed/added lines in an updated file."""

    anchors: tuple[str, ...]
    """The '@@ text' lines before the block, outermost first: each is searched after the last."""
    lines: tuple[HunkLine, ...]
    at_end_of_file: bool
    line_number: int
    """Where the hunk starts in the patch text (1-based), for error messages."""

    @property
    def old_lines(self) -> list[str]:
        """The lines the hunk expects in the file (context and removed)."""
        return [line.text for line in self.lines if line.kind != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.kind != "-"]


@dataclass(frozen=True)
class AddFile:
    path: str
    content: str


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class UpdateFile:
    path: str
    move_to: str | None
    hunks: tuple[Hunk, ...]


FileOperation = AddFile | DeleteFile | UpdateFile


@dataclass(frozen=True)
class Patch:
    operations: tuple[FileOperation, ...]


def extract_patch_text(arguments: str) -> str:
    """The patch inside a tool call's text: raw, or a JSON string / object holding it.

    gpt-oss declares apply_patch's argument as a plain string, but the model sometimes wraps it
    as {"patch": "..."} or {"input": "..."} (or JSON-quotes the string).
    """
    text = arguments.strip()
    if not text.startswith(("{", '"')):
        return arguments
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return arguments  # not JSON after all; the parser will say what is wrong with it
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in _JSON_PATCH_KEYS:
            if isinstance(value.get(key), str):
                return value[key]
        strings = [item for item in value.values() if isinstance(item, str)]
        if len(strings) == 1:
            return strings[0]
        raise PatchError(
            'the JSON arguments hold no patch: send the patch text itself, or {"patch": "..."}'
        )
    raise PatchError('the arguments must be the patch text, or a JSON object {"patch": "..."}')


def parse_patch(text: str) -> Patch:
    """Parse patch text into operations, or raise PatchError naming the offending line."""
    lines, dropped = _unwrap(text.replace("\r\n", "\n").split("\n"))
    if not lines:
        raise PatchError(f"the patch is empty: it must start with '{BEGIN_PATCH}'")
    if lines[0].strip() != BEGIN_PATCH:
        raise PatchError(f"the first line of the patch must be '{BEGIN_PATCH}', got {lines[0]!r}")
    if len(lines) < 2 or lines[-1].strip() != END_PATCH:
        raise PatchError(
            f"the last line of the patch must be '{END_PATCH}' (was the patch cut short?)"
        )
    reader = _Reader(lines[1:-1], first_line_number=2 + dropped)
    operations: list[FileOperation] = []
    while reader.skip_blank_lines():
        operations.append(_parse_operation(reader))
    if not operations:
        raise PatchError("the patch is empty: it contains no Add, Update or Delete File section")
    return Patch(tuple(operations))


def _unwrap(lines: list[str], dropped: int = 0) -> tuple[list[str], int]:
    """Drop surrounding blank lines, a Markdown code fence and a shell heredoc wrapper.

    Returns the remaining lines and how many were dropped before them (for line numbers).
    """
    while lines and not lines[0].strip():
        lines, dropped = lines[1:], dropped + 1
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if len(lines) >= 2 and lines[0].strip().startswith("```") and lines[-1].strip() == "```":
        return _unwrap(lines[1:-1], dropped + 1)
    heredoc = _HEREDOC_START.match(lines[0].strip()) if len(lines) >= 2 else None
    if heredoc and lines[-1].strip() == heredoc["tag"]:
        return _unwrap(lines[1:-1], dropped + 1)
    return lines, dropped


class _Reader:
    """A cursor over the patch body that remembers patch line numbers for messages."""

    def __init__(self, lines: list[str], first_line_number: int) -> None:
        self.lines = lines
        self.index = 0
        self.first_line_number = first_line_number

    @property
    def line_number(self) -> int:
        return self.first_line_number + self.index

    def peek(self) -> str | None:
        return self.lines[self.index] if self.index < len(self.lines) else None

    def advance(self) -> str:
        line = self.lines[self.index]
        self.index += 1
        return line

    def skip_blank_lines(self) -> bool:
        """Skip blank lines; True if a line remains."""
        while (line := self.peek()) is not None and not line.strip():
            self.index += 1
        return self.peek() is not None


def _is_file_header(line: str) -> bool:
    return line.strip().startswith(FILE_HEADERS)


def _header_path(line: str, marker: str, line_number: int) -> str:
    path = line.strip()[len(marker) :].strip()
    if not path:
        raise PatchError(f"line {line_number}: '{marker}' needs a path")
    return path


def _parse_operation(reader: _Reader) -> FileOperation:
    line_number = reader.line_number
    header = reader.advance()
    stripped = header.strip()
    if stripped.startswith(ADD_FILE):
        return _parse_add(reader, _header_path(header, ADD_FILE, line_number))
    if stripped.startswith(DELETE_FILE):
        path = _header_path(header, DELETE_FILE, line_number)
        while (line := reader.peek()) is not None and not _is_file_header(line):
            if line.strip():
                raise PatchError(
                    f"line {reader.line_number}: '{DELETE_FILE} {path}' takes no lines, "
                    f"got {line!r}"
                )
            reader.advance()
        return DeleteFile(path)
    if stripped.startswith(UPDATE_FILE):
        return _parse_update(reader, _header_path(header, UPDATE_FILE, line_number))
    expected = "', '".join(f"{marker} PATH" for marker in FILE_HEADERS)
    raise PatchError(
        f"line {line_number}: {header!r} is not a valid file header; expected '{expected}'"
    )


def _parse_add(reader: _Reader, path: str) -> AddFile:
    content: list[str] = []
    pending_blank = 0  # blank lines count as content only when more '+' lines follow
    while (line := reader.peek()) is not None and not _is_file_header(line):
        if line.startswith("+"):
            content.extend([""] * pending_blank)
            pending_blank = 0
            content.append(line[1:])
        elif not line.strip():
            pending_blank += 1
        else:
            raise PatchError(
                f"line {reader.line_number}: every line of '{ADD_FILE} {path}' must start "
                f"with '+', got {line!r}"
            )
        reader.advance()
    return AddFile(path, "".join(text + "\n" for text in content))


def _parse_update(reader: _Reader, path: str) -> UpdateFile:
    move_to = None
    if (line := reader.peek()) is not None and line.strip().startswith(MOVE_TO):
        move_to = _header_path(line, MOVE_TO, reader.line_number)
        reader.advance()
    hunks: list[Hunk] = []
    anchors: list[str] = []
    body: list[HunkLine] = []
    start = reader.line_number
    trailing_empty = 0  # empty (not even a space) lines at the end of `body`

    def close_hunk(at_end_of_file: bool) -> None:
        nonlocal anchors, body, start, trailing_empty
        trailing_empty = 0
        if body:
            hunks.append(Hunk(tuple(anchors), tuple(body), at_end_of_file, start))
        anchors, body, start = [], [], reader.line_number

    while (line := reader.peek()) is not None and not _is_file_header(line):
        line_number = reader.line_number
        stripped = line.strip()
        if stripped == END_OF_FILE:
            if not body:
                raise PatchError(f"line {line_number}: '{END_OF_FILE}' must end a hunk")
            reader.advance()
            close_hunk(at_end_of_file=True)
            continue
        if line.startswith("@@"):
            if body:
                close_hunk(at_end_of_file=False)
            if not anchors:
                start = line_number
            anchor = _anchor_text(line)
            if anchor:
                anchors.append(anchor)
        elif line[:1] in (" ", "-", "+"):
            body.append(HunkLine(line[0], line[1:]))  # type: ignore[arg-type]
            trailing_empty = 0
        elif not line:
            body.append(HunkLine(" ", ""))  # a blank context line whose space got lost
            trailing_empty += 1
        elif stripped.startswith("***"):
            raise PatchError(
                f"line {line_number}: unknown marker {line!r} in '{UPDATE_FILE} {path}'"
            )
        else:
            raise PatchError(
                f"line {line_number}: invalid line {line!r} in '{UPDATE_FILE} {path}': hunk lines "
                "start with ' ' (context), '-' (remove) or '+' (add)"
            )
        reader.advance()
    # Empty lines before the next header separate sections; they are not context.
    del body[len(body) - trailing_empty :]
    if anchors and not body:
        raise PatchError(f"line {start}: '@@ {anchors[-1]}' in {path} is not followed by any lines")
    close_hunk(at_end_of_file=False)
    if not hunks and move_to is None:
        raise PatchError(f"'{UPDATE_FILE} {path}' has no hunks: nothing to change")
    return UpdateFile(path, move_to, tuple(hunks))


def _anchor_text(line: str) -> str:
    """The anchor of an '@@' line: '' for a bare '@@' or a unified diff range header."""
    rest = line[2:].strip()
    if match := _UNIFIED_HUNK_HEADER.match(rest):
        return match["rest"].strip()
    return rest
