"""Builds what a chat needs from the command line: options, tools, generator, session.

The TUI, the plain REPL, one-shot mode and the tests share these functions, so every way in
constructs the same objects. Heavy imports (torch, docker, HTTP clients) happen inside the
functions that need them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptoss_chat.config import TOOL_NAMES, Config, defaults, resolve
from gptoss_chat.generator import Generator, GeneratorError, ReplayGenerator, SamplingOptions
from gptoss_chat.settings import ApprovalPolicy, ChatSettings

if TYPE_CHECKING:
    # Imported where used: the TUI builds LaunchOptions and paints its first frame before it
    # needs openai_harmony (~0.2 s to import), which the conversation and tools pull in.
    from openai_harmony import HarmonyEncoding

    from gptoss_chat.conversation import Approver, ChatSession
    from gptoss_chat.recording import SessionRecorder
    from gptoss_chat.tools.base import ToolRegistry

Progress = Callable[[float, str], None]
"""Called with a fraction in [0, 1] and a short description while a model loads."""


@dataclass
class LaunchOptions:
    """Everything the command line and the config file decide about a chat."""

    model_dir: str | None = None
    backend: str = "auto"
    server: str | None = None
    context: int | None = None
    settings: ChatSettings = field(default_factory=ChatSettings)
    tools_enabled: set[str] = field(default_factory=set)
    workspace: Path = field(default_factory=Path.cwd)
    theme: str | None = None
    plain: bool = False
    raw: bool = False
    resume: str | None = None
    """Session to continue: an id, a unique id prefix or 'last'; None starts a new one."""
    sandbox: dict[str, Any] = field(default_factory=dict)
    """SandboxConfig fields from [sandbox] (image, timeout_s, memory_mb, cpus, pids, network)."""
    browser_backend: str = "auto"
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id -> key, from [keymap]."""
    config: Config = field(default_factory=defaults)
    """The effective config these options came from, with each value's source."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LaunchOptions:
        """Flags override the config file (--config FILE or the user's), which overrides the
        built-in defaults. Raises ConfigError with a message naming the bad key."""
        return cls.from_config(resolve(args), args)

    @classmethod
    def from_config(cls, config: Config, args: argparse.Namespace | None = None) -> LaunchOptions:
        sampling = SamplingOptions(
            temperature=config["sampling.temperature"],
            top_p=config["sampling.top_p"],
            seed=config["sampling.seed"],
            max_tokens=config["sampling.max_tokens"],
        )
        settings = ChatSettings(
            reasoning=config["reasoning"],
            developer_message=config["developer_message"],
            sampling=sampling,
            approval={name: ApprovalPolicy(config[f"approval.{name}"]) for name in TOOL_NAMES},
        )
        enabled = {name for name in TOOL_NAMES if config[f"tools.{name}"]}
        sandbox = {
            key.removeprefix("sandbox."): value
            for key, value in config.values.items()
            if key.startswith("sandbox.") and value is not None
        }
        workspace = config["workspace"]
        backend = config["backend"]
        if backend == "auto" and config["server"]:  # `--server URL` alone means a vLLM server
            backend = "vllm"
        return cls(
            model_dir=config["model_dir"],
            backend=backend,
            server=config["server"],
            context=config["context"],
            settings=settings,
            tools_enabled=enabled,
            workspace=Path(workspace) if workspace else Path.cwd(),
            theme=config["theme"],
            plain=bool(getattr(args, "plain", False)),
            raw=bool(getattr(args, "raw", False)),
            resume=getattr(args, "resume", None),
            sandbox=sandbox,
            browser_backend=config["browser.backend"],
            keymap=dict(config.keymap),
            config=config,
        )


def make_tools(options: LaunchOptions) -> ToolRegistry:
    """All tools, switched on as the options say; a tool that cannot load is left out.

    Construction is cheap: tools connect to Docker or the network on first use.
    """
    from gptoss_chat.tools.base import ToolRegistry

    registry = ToolRegistry()
    for name, build in _TOOL_BUILDERS.items():
        try:
            tool = build(options)
        except ImportError:
            continue
        registry.add(tool, enabled=name in options.tools_enabled)
    return registry


def _browser(options: LaunchOptions):
    import os

    from gptoss_chat.tools.browser.backends import make_backend
    from gptoss_chat.tools.browser.tool import BrowserTool

    backend = options.browser_backend
    return BrowserTool(make_backend(backend, exa_api_key=os.environ.get("EXA_API_KEY")))


def _python(options: LaunchOptions):
    from gptoss_chat.tools.python_tool import PythonTool
    from gptoss_chat.tools.sandbox.config import SandboxConfig

    return PythonTool(SandboxConfig(**options.sandbox))


def _apply_patch(options: LaunchOptions):
    from gptoss_chat.tools.apply_patch import ApplyPatchTool

    # The format guide goes into the developer instructions, as in gpt-oss's chat.
    return ApplyPatchTool(root=options.workspace, instructions_in_description=False)


_TOOL_BUILDERS = {"browser": _browser, "python": _python, "apply_patch": _apply_patch}


def load_encoding_for(options: LaunchOptions) -> HarmonyEncoding:
    from gptoss_chat.encoding import load_encoding

    model_dir = options.model_dir if options.backend not in ("replay",) else None
    return load_encoding(model_dir)


def load_replay(path: str | Path, encoding: HarmonyEncoding) -> ReplayGenerator:
    """A replay file is JSON: {"completions": [...]} where each completion is Harmony text
    (special tokens written out) or a list of token ids. It stands for no model."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        completions = data["completions"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GeneratorError(f"cannot read replay file {path}: {exc}") from exc
    scripts = [
        encoding.encode(c, allowed_special="all") if isinstance(c, str) else [int(t) for t in c]
        for c in completions
    ]
    delay = float(data.get("delay", 0.0))
    return ReplayGenerator(scripts, delay=delay, name=f"replay ({Path(path).name})")


def load_generator(
    options: LaunchOptions, encoding: HarmonyEncoding, progress: Progress | None = None
) -> Generator:
    """The Generator the options name. Blocks (loading weights): call it off the UI loop."""
    if options.backend == "replay":
        if not options.model_dir:
            raise GeneratorError("--backend replay needs a replay file as MODEL_DIR")
        return load_replay(options.model_dir, encoding)
    if options.backend in ("vllm", "ollama"):
        if not options.server:
            raise GeneratorError(f"--backend {options.backend} needs --server URL")
        from gptoss_chat.remote import connect

        return connect(options.backend, options.server, context=options.context, encoding=encoding)
    if not options.model_dir:
        raise GeneratorError(
            "no model folder given: gptoss-chat MODEL_DIR (see README: downloading the weights)"
        )
    from gptoss_chat.model.generator import load_generator as load_local

    return load_local(
        options.model_dir, backend=options.backend, context=options.context, progress=progress
    )


def make_session(
    options: LaunchOptions,
    *,
    encoding: HarmonyEncoding,
    generator: Generator,
    approver: Approver,
    tools: ToolRegistry | None = None,
) -> ChatSession:
    from gptoss_chat.conversation import ChatSession

    return ChatSession(
        encoding=encoding,
        generator=generator,
        tools=tools if tools is not None else make_tools(options),
        settings=options.settings,
        approver=approver,
    )


def attach_persistence(session: ChatSession, options: LaunchOptions) -> SessionRecorder | None:
    """Save `session` in the user's sessions database; with --resume, load that session first.

    Raises StoreError (e.g. SessionNotFound) with a message for the user.
    """
    from gptoss_chat.recording import attach_store, resume_session
    from gptoss_chat.store import SessionStore

    if not options.config["save_sessions"] and not options.resume:
        return None
    store = SessionStore.open_default()
    try:
        if options.resume:
            return resume_session(session, store, options.resume)
        return attach_store(session, store)
    except BaseException:
        store.close()
        raise
