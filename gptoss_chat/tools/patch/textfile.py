"""A text file as lines, remembering how to write it back byte for byte.

Patches speak in lines without line endings. We keep the file's own line ending (LF or CRLF),
its UTF-8 byte-order mark and whether it ended with a newline, so an edit changes only the lines
it names and a CRLF file stays CRLF.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gptoss_chat.tools.patch.errors import PatchError

_BOM = "\ufeff"
_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class TextFile:
    lines: tuple[str, ...]
    newline: str = "\n"
    ends_with_newline: bool = True
    byte_order_mark: bool = False

    @classmethod
    def decode(cls, data: bytes, path: str) -> TextFile:
        """Split UTF-8 `data` into lines; PatchError for binary or non-UTF-8 content."""
        if b"\0" in data[:_BINARY_SNIFF_BYTES]:
            raise PatchError(f"{path}: is a binary file; apply_patch edits text files only")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PatchError(
                f"{path}: is not UTF-8 text (byte {exc.start}); apply_patch edits text files only"
            ) from exc
        byte_order_mark = text.startswith(_BOM)
        text = text.removeprefix(_BOM)
        # CRLF only when every line break is one; in a mixed file the '\r's stay inside their
        # lines, so the file round-trips byte for byte and no line ever holds a '\n'.
        breaks = text.count("\n")
        newline = "\r\n" if breaks and text.count("\r\n") == breaks else "\n"
        if not text:
            return cls((), newline, True, byte_order_mark)
        ends_with_newline = text.endswith(newline)
        body = text[: -len(newline)] if ends_with_newline else text
        return cls(tuple(body.split(newline)), newline, ends_with_newline, byte_order_mark)

    @classmethod
    def from_patch_content(cls, content: str) -> TextFile:
        """A new file from an Add File section ('+' lines joined with LF, newline-terminated)."""
        return TextFile.decode(content.encode("utf-8"), "<new file>") if content else cls(())

    def with_lines(self, lines: list[str]) -> TextFile:
        # An empty file that gains lines gets a final newline, whatever it "had" before.
        ends_with_newline = self.ends_with_newline or not self.lines
        return replace(self, lines=tuple(lines), ends_with_newline=ends_with_newline)

    def encode(self) -> bytes:
        if not self.lines:
            return _BOM.encode() if self.byte_order_mark else b""
        text = self.newline.join(self.lines)
        if self.ends_with_newline:
            text += self.newline
        if self.byte_order_mark:
            text = _BOM + text
        return text.encode("utf-8")

    def diff_lines(self) -> list[str]:
        """Lines with '\\n' endings for difflib; the last lacks one if the file does."""
        result = [line + "\n" for line in self.lines]
        if result and not self.ends_with_newline:
            result[-1] = self.lines[-1]
        return result
