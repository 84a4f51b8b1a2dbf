"""Bounded capture of a cell's output: the head and the tail are kept, the middle is counted."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BoundedOutput:
    """Keeps the first 3/4 and the last 1/4 of `limit` bytes: the start shows what the code
    was doing, the end usually holds the error or the result."""

    limit: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    @property
    def head_limit(self) -> int:
        return self.limit - self.limit // 4

    @property
    def tail_limit(self) -> int:
        return self.limit // 4

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_limit:
            self.tail += data
            del self.tail[: max(0, len(self.tail) - self.tail_limit)]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        """The kept output, with a note in place of what was cut out."""
        head = self.head.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + self.tail.decode("utf-8", errors="replace")
        omitted = self.total - len(self.head) - len(self.tail)
        note = (
            f"\n[... output truncated: {omitted:,} of {self.total:,} bytes omitted; "
            f"only {self.limit:,} bytes are shown ...]\n"
        )
        return head + note + self.tail.decode("utf-8", errors="replace")
