"""A non-editable install must carry everything a checkout has: build the wheel and look.

The themes are the case that breaks silently: they live in the repository's top-level
`themes/` folder and reach the wheel only through pyproject's package-dir mapping.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "README.md", "gptoss_chat", "themes")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the installed setuptools builds it, so no network is needed.
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*command, "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("gptoss_chat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_has_the_themes_under_the_package(wheel_names: set[str]) -> None:
    themes = sorted(p.name for p in (ROOT / "themes").glob("*.yaml"))
    assert {"dark.yaml", "light.yaml", "high-contrast.yaml"} <= set(themes)
    for name in themes:
        assert f"gptoss_chat/themes/{name}" in wheel_names


def test_wheel_has_the_demo_replay_and_the_stylesheets(wheel_names: set[str]) -> None:
    assert "gptoss_chat/demo/replay.json" in wheel_names
    for path in (ROOT / "gptoss_chat").rglob("*.tcss"):
        assert path.relative_to(ROOT).as_posix() in wheel_names


def test_wheel_has_every_file_of_the_package(wheel_names: set[str]) -> None:
    """A new subpackage must be added to pyproject's package list; this says which."""
    wanted = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "gptoss_chat").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = sorted(wanted - wheel_names)
    assert not missing, f"not in the wheel (pyproject.toml [tool.setuptools]): {missing}"


def test_bundled_themes_are_found_in_a_checkout() -> None:
    from gptoss_chat.ui.themes import BUNDLED_THEMES_DIR, load_themes

    loaded = load_themes([BUNDLED_THEMES_DIR])
    assert {"dark", "light", "high-contrast"} <= set(loaded.themes)
    assert not loaded.errors
