"""Theme files: bundled ones load, bad ones become notices, the flag picks one, NO_COLOR."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_chat.ui.themes import (
    BUNDLED_THEMES_DIR,
    ThemeFileError,
    load_themes,
    theme_from_mapping,
)
from tests.ui.conftest import ANSWER, build_session


def test_bundled_themes_load():
    loaded = load_themes([BUNDLED_THEMES_DIR])
    assert loaded.errors == []
    assert {"dark", "light", "high-contrast"} <= set(loaded.themes)
    assert loaded.themes["light"].dark is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "must be a mapping"),
        ({"primary": "#fff"}, "'name' is required"),
        ({"name": "x"}, "'primary' colour is required"),
        ({"name": "x", "primary": "not-a-colour"}, "is not a colour"),
        ({"name": "x", "primary": "#fff", "wat": 1}, "unknown keys: wat"),
        ({"name": "x", "primary": "#fff", "variables": [1]}, "'variables' must be a mapping"),
    ],
)
def test_invalid_theme_mappings(data, message):
    with pytest.raises(ThemeFileError, match=message):
        theme_from_mapping(data, "t.yaml")


def test_bad_files_are_skipped_with_a_reason(tmp_path: Path):
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "ok.yaml").write_text("name: mine\nprimary: '#123456'\n")
    loaded = load_themes([tmp_path])
    assert list(loaded.themes) == ["mine"]
    assert len(loaded.errors) == 1 and "broken.yaml" in loaded.errors[0]


@pytest.mark.parametrize("name", ["dark", "light", "high-contrast"])
async def test_theme_flag_selects_theme(encoding, make_test_app, name):
    app = make_test_app(build_session(encoding, [ANSWER]), theme=name)
    async with app.run_test(size=(100, 30)):
        assert app.theme == name


async def test_unknown_theme_and_bad_user_file_notify(encoding, make_test_app, tmp_path):
    user_themes = tmp_path / "themes"
    user_themes.mkdir()
    (user_themes / "bad.yaml").write_text("name: bad\nprimary: nope\n")
    app = make_test_app(
        build_session(encoding, [ANSWER]), theme="solarized-nope", theme_dirs=[user_themes]
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert app.theme == "dark"
        assert any("unknown theme 'solarized-nope'" in m for m in messages)
        assert any("bad.yaml" in m for m in messages)


async def test_no_color_turns_the_screen_monochrome(encoding, make_test_app, monkeypatch):
    from textual.filter import Monochrome

    monkeypatch.setenv("NO_COLOR", "1")
    app = make_test_app(build_session(encoding, [ANSWER]))
    async with app.run_test(size=(100, 30)):
        assert app.no_color
        assert any(isinstance(f, Monochrome) for f in app._filters)
