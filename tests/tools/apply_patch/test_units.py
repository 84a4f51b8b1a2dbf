"""Tables for the pure parts: line matching levels and the text-file round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptoss_chat.tools.patch.matching import find_lines
from gptoss_chat.tools.patch.parser import extract_patch_text
from gptoss_chat.tools.patch.textfile import TextFile


@pytest.mark.parametrize(
    ("lines", "pattern", "start", "at_end", "expected"),
    [
        (["a", "b", "c"], ["b", "c"], 0, False, 1),
        (["a", "b", "a", "b"], ["a", "b"], 1, False, 2),  # searches from `start` on
        (["x  ", "y\t"], ["x", "y"], 0, False, 0),  # trailing whitespace ignored
        (["    x", "  y"], ["x", "y"], 0, False, 0),  # surrounding whitespace ignored
        (["a – “b”\u00a0c"], ['a - "b" c'], 0, False, 0),  # typographic punctuation folded
        (["b ", "b"], ["b"], 0, False, 1),  # an exact match further on beats a loose one
        (["end", "mid", "end"], ["end"], 0, True, 2),  # End of File: only the last position
        (["end", "mid"], ["end"], 0, True, None),
        (["a", "end", "", "  "], ["end"], 0, True, 1),  # trailing blank lines left out
        (["end", "x"], ["end", "x"], 1, True, None),  # never before `start`
        (["a"], ["a", "b"], 0, False, None),  # longer than the file
        (["a", "b"], [], 1, False, 1),  # nothing to find: where the search starts
    ],
)
def test_find_lines(lines, pattern, start, at_end, expected) -> None:
    assert find_lines(lines, pattern, start, at_end) == expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("*** Begin Patch\n...", "*** Begin Patch\n..."),
        ('{"patch": "P"}', "P"),
        ('{"input": "P"}', "P"),
        ('{"command": ["apply_patch"], "text": "P"}', "P"),
        ('"P"', "P"),
        ("{not json", "{not json"),
    ],
)
def test_extract_patch_text(arguments: str, expected: str) -> None:
    assert extract_patch_text(arguments) == expected


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(["a", "é", " ", "\n", "\r\n", "\r", "\ufeff", "\t"])))
def test_text_files_round_trip_byte_for_byte(pieces: list[str]) -> None:
    data = "".join(pieces).encode("utf-8")
    decoded = TextFile.decode(data, "f")
    assert decoded.encode() == data
    assert not any("\n" in line for line in decoded.lines)


def test_crlf_file_keeps_crlf_for_new_lines() -> None:
    decoded = TextFile.decode(b"a\r\nb\r\n", "f")
    assert decoded.with_lines(["a", "x", "b"]).encode() == b"a\r\nx\r\nb\r\n"
