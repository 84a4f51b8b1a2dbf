"""Prompts the user sent, kept across sessions in a JSON-lines file (newest last)."""

from __future__ import annotations

import json
from pathlib import Path

_MAX_ENTRIES = 1000


class PromptHistory:
    """Up/Down in the prompt walk this list; the file is optional (tests pass None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: list[str] = self._read()

    def _read(self) -> list[str]:
        if self.path is None or not self.path.exists():
            return []
        entries: list[str] = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return []  # an unreadable history is not worth a failure: start empty
        for line in lines:
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, str):
                entries.append(value)
        return entries[-_MAX_ENTRIES:]

    def add(self, text: str) -> None:
        if not text.strip() or (self.entries and self.entries[-1] == text):
            return
        self.entries.append(text)
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(text) + "\n")
        except OSError:
            self.path = None  # read-only home: keep the history in memory only
