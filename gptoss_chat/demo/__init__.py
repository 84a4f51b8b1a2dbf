"""Recorded conversations for demos and the TUI's end-to-end test (`--backend replay`)."""

from pathlib import Path

DEMO_REPLAY = Path(__file__).with_name("replay.json")
