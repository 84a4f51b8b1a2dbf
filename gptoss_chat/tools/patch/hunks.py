"""Apply an Update File section's hunks to a file's lines (in memory)."""

from __future__ import annotations

from collections.abc import Sequence

from gptoss_chat.tools.patch.diff import Region
from gptoss_chat.tools.patch.errors import PatchError
from gptoss_chat.tools.patch.matching import find_lines
from gptoss_chat.tools.patch.parser import Hunk, HunkLine

_MAX_LINES_IN_MESSAGE = 12


def apply_hunks(
    path: str, lines: Sequence[str], hunks: Sequence[Hunk]
) -> tuple[list[str], list[Region]]:
    """The file's new lines, and the region each hunk replaced (for a fast diff).

    Hunks are searched in file order, each from where the last ended. Context lines keep the
    file's own text (they may have matched loosely); only '-' lines are dropped and '+' lines
    inserted.
    """
    result: list[str] = []
    regions: list[Region] = []
    position = 0  # lines[:position] are already copied or replaced
    for number, hunk in enumerate(hunks, 1):
        search_from = position
        for anchor in hunk.anchors:
            found = find_lines(lines, [anchor], search_from)
            if found is None:
                raise PatchError(
                    f"{path}: hunk {number} (patch line {hunk.line_number}): could not find the "
                    f"'@@ {anchor}' line" + _searched_from(search_from)
                )
            search_from = found + 1
        body = list(hunk.lines)
        start = _locate(lines, hunk, body, search_from)
        if start is None and hunk.anchors:
            # Models often repeat the anchor line as the first context line.
            start = _locate(lines, hunk, body, search_from - 1)
        if start is None:
            # A blank context line the model added at the end is a frequent near miss.
            while body and body[-1] == HunkLine(" ", ""):
                body.pop()
                start = _locate(lines, hunk, body, search_from)
                if start is not None:
                    break
        if start is None:
            raise PatchError(_missing_context(path, number, hunk, search_from))
        result.extend(lines[position:start])
        cursor, new_start = start, len(result)
        indent = _indent_shift(lines, start, body)
        for line in body:
            if line.kind == "+":
                result.append(_reindent(line.text, indent))
                continue
            if line.kind == " ":
                result.append(lines[cursor])
            cursor += 1
        position = cursor
        regions.append((start, cursor, new_start, len(result)))
    result.extend(lines[position:])
    return result, regions


def _locate(lines: Sequence[str], hunk: Hunk, body: list[HunkLine], search_from: int) -> int | None:
    old = [line.text for line in body if line.kind != "+"]
    if old:
        return find_lines(lines, old, search_from, hunk.at_end_of_file)
    # Pure addition: after the anchor if there is one, else at the end of the file.
    if hunk.anchors and not hunk.at_end_of_file:
        return search_from
    return max(len(lines), search_from)


def _leading_whitespace(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def _indent_shift(lines: Sequence[str], start: int, body: list[HunkLine]) -> tuple[str, str]:
    """(patch prefix, file prefix) when the hunk matched with a uniformly different indentation.

    A loose match ignores leading whitespace, so '+' lines written at the patch's indentation
    would land misaligned. If every matched non-blank line is the patch line with one leading
    prefix swapped for another, the same swap is applied to the added lines; otherwise nothing
    is changed (an empty shift).
    """
    old = [line.text for line in body if line.kind != "+"]
    pairs = [
        (_leading_whitespace(patch), _leading_whitespace(actual))
        for patch, actual in zip(old, lines[start : start + len(old)], strict=True)
        if patch.strip()
    ]
    if not pairs or all(patch == actual for patch, actual in pairs):
        return ("", "")
    patch_prefix, file_prefix = min(pairs, key=lambda pair: len(pair[0]))
    for patch, actual in pairs:
        if not patch.startswith(patch_prefix) or actual != file_prefix + patch[len(patch_prefix) :]:
            return ("", "")
    return (patch_prefix, file_prefix)


def _reindent(text: str, shift: tuple[str, str]) -> str:
    patch_prefix, file_prefix = shift
    if shift == ("", "") or not text.strip() or not text.startswith(patch_prefix):
        return text
    return file_prefix + text[len(patch_prefix) :]


def _searched_from(index: int) -> str:
    return f" (searched from line {index + 1})" if index else ""


def _missing_context(path: str, number: int, hunk: Hunk, search_from: int) -> str:
    old = hunk.old_lines
    shown = "\n".join(f"  {line}" for line in old[:_MAX_LINES_IN_MESSAGE])
    if len(old) > _MAX_LINES_IN_MESSAGE:
        shown += f"\n  ... ({len(old) - _MAX_LINES_IN_MESSAGE} more lines)"
    where = " at the end of the file" if hunk.at_end_of_file else _searched_from(search_from)
    return (
        f"{path}: hunk {number} (patch line {hunk.line_number}): could not find these "
        f"lines{where}:\n{shown}\n"
        "Read the file again and resend the patch with context copied exactly from it."
    )
