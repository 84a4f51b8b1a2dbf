"""Unified diffs for the approval preview, fast on big files with few changes.

difflib compares whole files, which takes seconds on a large file even when a patch touched
three lines. The patch already tells us which regions changed, so we only compare inside those
regions and format the result ourselves, in the same layout as `difflib.unified_diff`
(3 lines of context, hunks merged when their context would overlap).
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

Opcode = tuple[str, int, int, int, int]
"""(tag, old_start, old_end, new_start, new_end), as difflib's get_opcodes."""
Region = tuple[int, int, int, int]
"""(old_start, old_end, new_start, new_end): where a hunk replaced old lines with new ones."""


def unified_diff(
    old: Sequence[str],
    new: Sequence[str],
    from_file: str,
    to_file: str,
    regions: Sequence[Region] | None = None,
    context: int = 3,
) -> list[str]:
    """Diff lines ('\\n'-terminated input lines in, '\\n'-terminated diff lines out).

    `regions`, in order and not overlapping, say where the two sides can differ; everything
    between them must be equal. Without them the whole files are compared.
    """
    if regions is not None and old and new and old[-1] != new[-1]:
        regions = _cover_last_line(regions, len(old), len(new))
    opcodes = _opcodes(old, new, regions)
    groups = _group_changes(opcodes, context)
    if not groups:
        return []
    lines = [f"--- {from_file}\n", f"+++ {to_file}\n"]
    for group in groups:
        first, last = group[0], group[-1]
        old_start = max(0, first[1] - context)
        new_start = first[3] - (first[1] - old_start)
        old_end = min(len(old), last[2] + context)
        new_end = last[4] + (old_end - last[2])
        lines.append(f"@@ -{_range(old_start, old_end)} +{_range(new_start, new_end)} @@\n")
        position = old_start
        for _, old_from, old_to, new_from, new_to in group:
            lines.extend(" " + line for line in old[position:old_from])
            lines.extend("-" + line for line in old[old_from:old_to])
            lines.extend("+" + line for line in new[new_from:new_to])
            position = old_to
        lines.extend(" " + line for line in old[position:old_end])
    return lines


def _opcodes(
    old: Sequence[str], new: Sequence[str], regions: Sequence[Region] | None
) -> list[Opcode]:
    if regions is None:
        return list(SequenceMatcher(None, old, new, autojunk=False).get_opcodes())
    opcodes: list[Opcode] = []
    for old_from, old_to, new_from, new_to in regions:
        inner = SequenceMatcher(
            None, old[old_from:old_to], new[new_from:new_to], autojunk=False
        ).get_opcodes()
        opcodes.extend(
            (tag, old_from + a1, old_from + a2, new_from + b1, new_from + b2)
            for tag, a1, a2, b1, b2 in inner
        )
    return opcodes


def _cover_last_line(regions: Sequence[Region], old_length: int, new_length: int) -> list[Region]:
    """`regions` extended over the last line of both sides.

    In a file without a final newline the last lines can differ outside every hunk: the old
    last line gains a newline when lines are appended, and the new last line loses it when the
    old last line is deleted.
    """
    merged = list(regions)
    start, delta = old_length - 1, new_length - old_length  # the candidate's old start, offset
    while True:
        start = max(0, min(start, new_length - 1 - delta))
        if not merged or merged[-1][1] < start:
            break
        old_from, _, new_from, _ = merged.pop()
        # Lines just before a region are equal on both sides, shifted by the region's offset.
        start, delta = min(start, old_from), new_from - old_from
    merged.append((start, old_length, start + delta, new_length))
    return merged


def _group_changes(opcodes: Sequence[Opcode], context: int) -> list[list[Opcode]]:
    """Changes grouped into hunks: two changes share one when at most 2*context equal lines
    separate them (their contexts would touch)."""
    groups: list[list[Opcode]] = []
    for opcode in opcodes:
        if opcode[0] == "equal":
            continue
        if groups and opcode[1] - groups[-1][-1][2] <= 2 * context:
            groups[-1].append(opcode)
        else:
            groups.append([opcode])
    return groups


def _range(start: int, stop: int) -> str:
    """'start,length' in unified diff notation (1-based; an empty range names the line before)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"
