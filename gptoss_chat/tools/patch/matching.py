"""Find a hunk's lines in a file, from strict to forgiving.

Models copy context from memory, so exact matching alone rejects many good patches. We try, in
order: exact; ignoring trailing whitespace; ignoring surrounding whitespace; and finally also
folding typographic punctuation (dashes, curly quotes, odd spaces) to ASCII. Every level scans
the whole allowed range before the next, looser one is tried, so an exact match further down
always beats a loose one nearby.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_PUNCTUATION_TO_ASCII = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys(
            "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "
        ),
    }
)


def _exact(line: str) -> str:
    return line


def _rstrip(line: str) -> str:
    return line.rstrip()


def _strip(line: str) -> str:
    return line.strip()


def _fold(line: str) -> str:
    return line.strip().translate(_PUNCTUATION_TO_ASCII)


_LEVELS: tuple[Callable[[str], str], ...] = (_exact, _rstrip, _strip, _fold)


def find_lines(
    lines: Sequence[str], pattern: Sequence[str], start: int, at_end_of_file: bool = False
) -> int | None:
    """Index of the first occurrence of `pattern` in `lines` at or after `start`, or None.

    With `at_end_of_file` the pattern must end the file (or end just before its trailing blank
    lines, which models tend to leave out): only those positions are tried, none before `start`.
    """
    if not pattern:
        return start
    last = len(lines) - len(pattern)
    if at_end_of_file:
        end = len(lines)
        while end > 0 and not lines[end - 1].strip():
            end -= 1
        candidates = [index for index in (last, end - len(pattern)) if index >= start]
        for normalise in _LEVELS:
            wanted = [normalise(line) for line in pattern]
            for index in candidates:
                if [normalise(line) for line in lines[index : index + len(pattern)]] == wanted:
                    return index
        return None
    if last < start:
        return None
    for normalise in _LEVELS:
        # Normalise the searched range once per level; list.index then scans at C speed.
        window = [normalise(line) for line in lines[start:]]
        wanted = [normalise(line) for line in pattern]
        index = 0
        while True:
            try:
                index = window.index(wanted[0], index, last - start + 1)
            except ValueError:
                break
            if window[index : index + len(wanted)] == wanted:
                return start + index
            index += 1
    return None
