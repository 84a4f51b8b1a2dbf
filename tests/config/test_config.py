"""Config file: precedence flag > file > default, sources, and messages for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_chat.cli import build_chat_parser, main
from gptoss_chat.config import ConfigError, load_config, resolve
from gptoss_chat.factory import LaunchOptions
from gptoss_chat.settings import ApprovalPolicy

USER_CONFIG = """
model_dir = "/models/gpt-oss-20b"
reasoning = "high"
theme = "light"

[tools]
python = true

[approval]
python = "once"
apply_patch = "always"

[sampling]
temperature = 0.5
seed = 7

[sandbox]
image = "my/sandbox:1"
memory_mb = 1024

[keymap]
stop = "ctrl+g"
"""


@pytest.fixture
def user_config(user_dirs) -> Path:
    path = user_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(USER_CONFIG)
    return path


def options_for(*argv: str) -> LaunchOptions:
    return LaunchOptions.from_args(build_chat_parser().parse_args(list(argv)))


def test_built_in_defaults_without_a_file(user_dirs) -> None:
    options = options_for()
    assert options.settings.reasoning == "medium"
    assert options.settings.sampling.temperature == 1.0
    assert options.tools_enabled == set()
    assert options.settings.policy("python") is ApprovalPolicy.ASK
    assert options.config.source("reasoning") == "default"


def test_the_user_config_file_sets_defaults(user_config) -> None:
    options = options_for()
    assert options.model_dir == "/models/gpt-oss-20b"
    assert options.settings.reasoning == "high"
    assert options.theme == "light"
    assert options.tools_enabled == {"python"}
    assert options.settings.policy("python") is ApprovalPolicy.ONCE
    assert options.settings.policy("apply_patch") is ApprovalPolicy.ALWAYS
    assert options.settings.sampling.temperature == 0.5 and options.settings.sampling.seed == 7
    assert options.sandbox["image"] == "my/sandbox:1" and options.sandbox["memory_mb"] == 1024
    assert options.keymap == {"stop": "ctrl+g"}
    assert options.config.source("sampling.temperature") == f"config {user_config}"


def test_flags_override_the_file(user_config) -> None:
    options = options_for("/other/model", "--reasoning", "low", "--temperature", "0", "--yes")
    assert options.model_dir == "/other/model"
    assert options.settings.reasoning == "low"
    assert options.settings.sampling.temperature == 0.0
    assert options.settings.sampling.seed == 7, "what no flag names still comes from the file"
    assert options.settings.policy("python") is ApprovalPolicy.ALWAYS
    assert options.config.source("reasoning") == "flag --reasoning"
    assert options.config.source("approval.python") == "flag --yes"


def test_an_explicit_config_file_replaces_the_user_one(user_config, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('reasoning = "low"\n')
    options = options_for("--config", str(other))
    assert options.settings.reasoning == "low"
    assert options.model_dir is None
    with pytest.raises(ConfigError, match="does not exist"):
        options_for("--config", str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('reasoning = "extreme"', "'reasoning' must be one of 'low', 'medium', 'high'"),
        (
            "[sampling]\ntemprature = 0.2",
            "unknown key 'sampling.temprature' (did you mean 'sampling.temperature'?)",
        ),
        ("[sampling]\ntemperature = 'hot'", "'sampling.temperature' must be a number >= 0"),
        ("[sampling]\ntop_p = 0", "'sampling.top_p' must be a number > 0 and <= 1, not 0"),
        ("context = 12.5", "'context' must be a whole number >= 256"),
        ("[tools]\npython = 'yes'", "'tools.python' must be true or false, not 'yes'"),
        (
            "[approval]\npython = 'never'",
            "'approval.python' must be one of 'ask', 'once', 'always'",
        ),
        ("[toolz]\npython = true", "unknown table [toolz] (did you mean 'tools'?)"),
        ("sampling = 3", "'sampling' must be a table ([sampling])"),
        ("[keymap]\nstop = 3", "'keymap.stop' must be a key name string"),
        ("reasoning = ", "not valid TOML"),
    ],
)
def test_a_bad_file_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_a_bad_flag_value_is_named(user_dirs) -> None:
    with pytest.raises(ConfigError, match="--context must be a whole number >= 256"):
        options_for("--context", "10")


def test_chat_with_a_bad_config_exits_with_the_message(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[sampling]\ntemperature = -1\n")
    assert main(["--config", str(path), "--backend", "replay", "x.json", "hi"]) == 2
    err = capsys.readouterr().err
    assert "'sampling.temperature' must be a number >= 0, not -1" in err
    assert "Traceback" not in err


def test_config_command_prints_values_and_sources(user_config, capsys) -> None:
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"# config file: {user_config}"
    lines = {line.split("#")[0].strip(): line.split("#")[-1].strip() for line in out.splitlines()}
    assert lines['reasoning = "high"'] == f"config {user_config}"
    assert lines['backend = "auto"'] == "default"
    assert lines['keymap.stop = "ctrl+g"'] == f"config {user_config}"

    assert main(["config", "--", "--temperature", "0.2", "--python"]) == 0
    out = capsys.readouterr().out
    assert "sampling.temperature = 0.2" in out and "# flag --temperature" in out


def test_config_init_writes_a_file_that_loads_to_the_defaults(user_dirs, capsys) -> None:
    assert main(["config", "--init"]) == 0
    path = user_dirs["config"] / "config.toml"
    assert path.exists()
    config = load_config()
    assert config.path == path
    assert all(config.source(key) == "default" for key in config.values)
    assert main(["config", "--init"]) == 1, "never overwrites"
    uncommented = "\n".join(
        line.removeprefix("# ") if " = " in line else line for line in path.read_text().splitlines()
    )
    path.write_text(uncommented)
    assert load_config()["sampling.max_tokens"] == 4096, "every example line is valid"


def test_config_command_reports_a_bad_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("colour = 'red'\n")
    assert main(["config", "--config", str(path)]) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err


def test_resolve_without_a_config_attribute(user_config) -> None:
    """Callers that build a Namespace by hand (tests, the TUI) need not set --config."""
    args = build_chat_parser().parse_args([])
    del args.config
    assert resolve(args)["reasoning"] == "high"


def test_sandbox_and_browser_settings_reach_the_tools(user_config, monkeypatch) -> None:
    from gptoss_chat.factory import make_tools

    monkeypatch.delenv("EXA_API_KEY", raising=False)
    user_config.write_text(USER_CONFIG + '\n[browser]\nbackend = "keyless"\n')
    registry = make_tools(options_for())
    python = registry.tools["python"]
    assert python.config.image == "my/sandbox:1" and python.config.memory_mb == 1024
    assert registry.enabled == {"python"}
    assert type(registry.tools["browser"].backend).__name__ == "KeylessBackend"
