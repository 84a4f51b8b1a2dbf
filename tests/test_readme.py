"""The README's two commands are the ones CI runs and a new user types."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run the tests", 1)[1]
    test_command = _bash_blocks(section)[0]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_documents_every_cli_option():
    from gptoss_chat.cli import SUBCOMMANDS, build_chat_parser

    readme = (ROOT / "README.md").read_text()
    options = [
        option
        for action in build_chat_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option not in ("--help", "--version")
    ]
    missing = [option for option in options if f"`{option}" not in readme]
    assert not missing, f"README lacks {missing}"
    assert all(f"`{name}`" in readme for name in SUBCOMMANDS)
