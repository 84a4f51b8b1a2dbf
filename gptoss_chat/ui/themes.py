"""Themes: YAML files in the top-level `themes/` folder (and user folders) → Textual `Theme`s.

A theme file names its colours once; the CSS only ever uses the variables (`$primary`,
`$surface`). A file that cannot be read or does not validate is skipped with a message the app
shows as a notice, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from textual.color import Color, ColorParseError
from textual.theme import Theme


def bundled_themes_dir() -> Path:
    """dark, light, high-contrast: `gptoss_chat/themes` in an installed wheel (pyproject maps
    the repository's top-level `themes/` there), the top-level `themes/` in a checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "themes"
    return installed if installed.is_dir() else package.parent / "themes"


BUNDLED_THEMES_DIR = bundled_themes_dir()
DEFAULT_THEME = "dark"
_COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)


class ThemeFileError(ValueError):
    """A theme file is not valid; the text says which file and why."""


@dataclass
class LoadedThemes:
    themes: dict[str, Theme] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    """One line per file that was skipped."""


def theme_from_mapping(data: object, source: str) -> Theme:
    """Validate one theme's YAML mapping; ThemeFileError says what is wrong."""
    if not isinstance(data, dict):
        raise ThemeFileError(f"{source}: a theme file must be a mapping of names to colours")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f"{source}: 'name' is required")
    if "primary" not in data:
        raise ThemeFileError(f"{source}: 'primary' colour is required")
    unknown = set(data) - {*_COLOR_FIELDS, "name", "dark", "variables", "ansi"}
    if unknown:
        raise ThemeFileError(f"{source}: unknown keys: {', '.join(sorted(unknown))}")
    colors: dict[str, str] = {}
    for key in _COLOR_FIELDS:
        value = data.get(key)
        if value is None:
            continue
        try:
            Color.parse(str(value))
        except ColorParseError as exc:
            raise ThemeFileError(f"{source}: {key}: {value!r} is not a colour") from exc
        colors[key] = str(value)
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ThemeFileError(f"{source}: 'variables' must be a mapping")
    return Theme(
        name=name.strip(),
        dark=bool(data.get("dark", True)),
        variables={str(k): str(v) for k, v in variables.items()},
        **colors,
    )


def load_theme_file(path: Path) -> Theme:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ThemeFileError(f"{path.name}: cannot read: {exc}") from exc
    return theme_from_mapping(data, path.name)


def load_themes(directories: Iterable[Path]) -> LoadedThemes:
    """Every `*.yaml`/`*.yml` theme in `directories`; later folders override earlier ones."""
    loaded = LoadedThemes()
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                loaded.errors.append(f"theme skipped: {exc}")
                continue
            loaded.themes[theme.name] = theme
    return loaded
