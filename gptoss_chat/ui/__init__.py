"""Textual user interface: a thin client of the conversation core."""
