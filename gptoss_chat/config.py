"""The TOML config file: defaults for every chat, below the command-line flags.

Precedence is flag > config file > built-in default, and every value remembers where it came
from so `gptoss-chat config` can say. The schema is one table (`SETTINGS`): a dotted key, its
built-in default, a checker and a docstring. A file with an unknown key, a wrong type or an
out-of-range value is refused with a message naming the key and the file.

    model_dir = "~/models/gpt-oss-20b"
    reasoning = "high"
    [tools]
    python = true
    [approval]
    python = "once"
    [sampling]
    temperature = 0.7
    [keymap]
    stop = "ctrl+c"
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptoss_chat import locations
from gptoss_chat.settings import REASONING_EFFORTS, ApprovalPolicy

BACKENDS = ("auto", "triton", "torch", "vllm", "ollama", "replay")
TOOL_NAMES = ("browser", "python", "apply_patch")
DEFAULT_SOURCE = "default"

Checker = Callable[[Any], Any]
"""Returns the value (normalised) or raises ValueError with what was expected."""


class ConfigError(Exception):
    """The config file cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    check: Checker
    doc: str


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _path(value: Any) -> str:
    return str(Path(_text(value)).expanduser())


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _choice(*choices: str) -> Checker:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("one of " + ", ".join(repr(c) for c in choices))
        return value

    return check


def _number(low: float, high: float | None = None, *, low_open: bool = False) -> Checker:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(_range_text("a number", low, high, low_open))
        if value < low or (low_open and value == low) or (high is not None and value > high):
            raise ValueError(_range_text("a number", low, high, low_open))
        return float(value)

    return check


def _integer(low: int) -> Checker:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"a whole number >= {low}")
        return value

    return check


def _range_text(kind: str, low: float, high: float | None, low_open: bool) -> str:
    text = f"{kind} {'>' if low_open else '>='} {low:g}"
    return text + (f" and <= {high:g}" if high is not None else "")


_POLICY = _choice(*(policy.value for policy in ApprovalPolicy))

SETTINGS: tuple[Setting, ...] = (
    Setting("model_dir", None, _path, "gpt-oss checkpoint folder used when none is given"),
    Setting("backend", "auto", _choice(*BACKENDS), "engine: auto, triton, torch, vllm, ollama"),
    Setting("server", None, _text, "server URL for backend vllm or ollama"),
    Setting("context", None, _integer(256), "context window in tokens (default: the model's)"),
    Setting("reasoning", "medium", _choice(*REASONING_EFFORTS), "reasoning effort"),
    Setting("developer_message", "", _text, "instructions placed in the developer message"),
    Setting("workspace", None, _path, "root that apply_patch may edit (default: cwd)"),
    Setting("save_sessions", True, _boolean, "save every chat in the sessions database"),
    Setting("theme", "dark", _text, "TUI theme: dark, light, high-contrast or your own"),
    *(Setting(f"tools.{n}", False, _boolean, f"enable the {n} tool") for n in TOOL_NAMES),
    *(
        Setting(f"approval.{n}", "ask", _POLICY, f"{n} calls: ask, once (per session), always")
        for n in TOOL_NAMES
    ),
    Setting("sampling.temperature", 1.0, _number(0.0), "0 is greedy"),
    Setting("sampling.top_p", 1.0, _number(0.0, 1.0, low_open=True), "nucleus sampling mass"),
    Setting("sampling.seed", None, _integer(0), "sampling seed (unset: random)"),
    Setting("sampling.max_tokens", None, _integer(1), "tokens per model turn (unset: no limit)"),
    Setting("sandbox.image", None, _text, "Docker image of the python tool (unset: built-in)"),
    Setting("sandbox.timeout_s", 120.0, _number(0.0, low_open=True), "seconds per python call"),
    Setting("sandbox.memory_mb", 512, _integer(16), "memory limit of the sandbox container"),
    Setting("sandbox.cpus", 1.0, _number(0.0, low_open=True), "CPUs of the sandbox container"),
    Setting("sandbox.pids", 64, _integer(1), "processes and threads in the sandbox"),
    Setting("sandbox.network", False, _boolean, "give the sandbox network access"),
    Setting(
        "browser.backend",
        "auto",
        _choice("auto", "exa", "keyless"),
        "browser search: exa (needs EXA_API_KEY), keyless, or auto (exa when a key is set)",
    ),
)
SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}
TABLE_NAMES = {"tools", "approval", "sampling", "sandbox", "browser", "keymap"}

# chat flag (argparse dest) -> config key; a flag left out (None) falls through to the file.
FLAG_KEYS = {
    "model_dir": "model_dir",
    "backend": "backend",
    "server": "server",
    "context": "context",
    "reasoning": "reasoning",
    "developer_message": "developer_message",
    "workspace": "workspace",
    "theme": "theme",
    "browser": "tools.browser",
    "python": "tools.python",
    "apply_patch": "tools.apply_patch",
    "temperature": "sampling.temperature",
    "top_p": "sampling.top_p",
    "seed": "sampling.seed",
    "max_tokens": "sampling.max_tokens",
}


@dataclass
class Config:
    """Effective values by dotted key, each with its source ('default', a file, a flag)."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id -> key, for the TUI's remappable bindings."""
    path: Path | None = None
    """The file read, if any."""

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source


def defaults() -> Config:
    return Config(
        values={s.key: s.default for s in SETTINGS},
        sources={s.key: DEFAULT_SOURCE for s in SETTINGS},
    )


def load_config(path: str | Path | None = None) -> Config:
    """Defaults overlaid with a config file.

    `path` None reads the user's config file if there is one; an explicit path must exist.
    """
    explicit = path is not None
    file = Path(path).expanduser() if explicit else locations.config_file()
    config = defaults()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return config
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from exc
    config.path = file
    source = f"config {file}"
    for key, value in _flatten(data, file):
        if key.startswith("keymap."):
            if not isinstance(value, str):
                raise ConfigError(f"{file}: {key!r} must be a key name string, e.g. 'ctrl+r'")
            config.keymap[key.removeprefix("keymap.")] = value
            continue
        setting = SETTINGS_BY_KEY.get(key)
        if setting is None:
            raise ConfigError(f"{file}: unknown key {key!r}{_suggestion(key)}")
        try:
            config.set(key, setting.check(value), source)
        except ValueError as exc:
            raise ConfigError(f"{file}: {key!r} must be {exc}, not {value!r}") from None
    return config


def _flatten(data: dict[str, Any], file: Path, prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for name, value in data.items():
        key = prefix + name
        if isinstance(value, dict):
            if prefix or name not in TABLE_NAMES:
                raise ConfigError(f"{file}: unknown table [{key}]{_suggestion(key)}")
            items.extend(_flatten(value, file, key + "."))
        elif not prefix and name in TABLE_NAMES:
            raise ConfigError(f"{file}: {key!r} must be a table ([{key}]), not {value!r}")
        else:
            items.append((key, value))
    return items


def _suggestion(key: str) -> str:
    known = [*SETTINGS_BY_KEY, *TABLE_NAMES]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def apply_flags(config: Config, args: argparse.Namespace) -> Config:
    """Overlay the chat flags the user gave (those not None) on the config, in place."""
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        setting = SETTINGS_BY_KEY[key]
        try:
            value = setting.check(value)
        except ValueError as exc:
            raise ConfigError(f"--{dest.replace('_', '-')} must be {exc}") from None
        config.set(key, value, f"flag --{dest.replace('_', '-')}")
    if getattr(args, "yes", False):
        for name in TOOL_NAMES:
            config.set(f"approval.{name}", ApprovalPolicy.ALWAYS.value, "flag --yes")
    return config


def resolve(args: argparse.Namespace) -> Config:
    """The effective config of a chat command line: its --config file (or the user's) + flags."""
    return apply_flags(load_config(getattr(args, "config", None)), args)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def render(config: Config) -> list[tuple[str, str]]:
    """(TOML line, source) for every setting; unset values appear as comments."""
    rows = []
    for setting in SETTINGS:
        value = config.values.get(setting.key)
        line = (
            f"# {setting.key} = (unset)"
            if value is None
            else f"{setting.key} = {toml_value(value)}"
        )
        rows.append((line, config.source(setting.key)))
    for binding, key in sorted(config.keymap.items()):
        rows.append((f"keymap.{binding} = {toml_value(key)}", f"config {config.path}"))
    return rows


# What to show for settings without a default, so an uncommented line is valid TOML.
_EXAMPLES = {
    "model_dir": "~/models/gpt-oss-20b",
    "server": "http://localhost:8000",
    "context": 131072,
    "workspace": ".",
    "sampling.seed": 0,
    "sampling.max_tokens": 4096,
    "sandbox.image": "python:3.12-slim",
}


def template() -> str:
    """A config file with every setting commented out at its default, for `config --init`."""
    lines = ["# gptoss-chat config: uncomment what you want to change.", ""]
    table = ""
    for setting in SETTINGS:
        head, _, name = setting.key.rpartition(".")
        if head != table:
            table = head
            lines += ["", f"[{head}]"]
        lines.append(f"# {setting.doc}")
        value = toml_value(_EXAMPLES.get(setting.key, setting.default))
        lines.append(f"# {name} = {value}")
    lines += ["", "[keymap]", "# binding id: key, for example", '# stop = "ctrl+c"', ""]
    return "\n".join(lines)
