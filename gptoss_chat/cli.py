"""Command line entry point.

`gptoss-chat MODEL_DIR [PROMPT]` chats; `gptoss-chat SUBCOMMAND ...` runs a helper command.
This module imports only the standard library at top level so that `--help` stays fast
(no torch, no textual): each subcommand's module is imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Each module defines
#   add_arguments(parser: argparse.ArgumentParser) -> None
#   run(args: argparse.Namespace) -> int
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "apply-patch": (
        "gptoss_chat.commands.apply_patch",
        "apply a V4A patch read on stdin (the apply_patch tool's code path)",
    ),
    "sandbox": (
        "gptoss_chat.commands.sandbox",
        "run code in the python tool's Docker sandbox; build the image; check Docker",
    ),
    "browse": (
        "gptoss_chat.commands.browse",
        "search, open and find exactly as the browser tool shows pages to the model",
    ),
    "make-checkpoint": (
        "gptoss_chat.commands.make_checkpoint",
        "write a random gpt-oss checkpoint (tiny, 20b or 120b) for tests and benchmarks",
    ),
    "generate": (
        "gptoss_chat.commands.generate",
        "raw completion without Harmony: token ids, text and speed figures",
    ),
    "config": (
        "gptoss_chat.commands.config",
        "print the effective configuration and where each value came from",
    ),
    "sessions": (
        "gptoss_chat.commands.sessions",
        "list, rename, delete and export saved chat sessions",
    ),
}

REASONING_EFFORTS = ("low", "medium", "high")
BACKENDS = ("auto", "triton", "torch", "vllm", "ollama", "replay")


def build_chat_parser() -> argparse.ArgumentParser:
    subcommands = "\n".join(f"  {name:<16} {text}" for name, (_, text) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="gptoss-chat",
        description="Chat with gpt-oss in your terminal, running the model on your own GPU.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"subcommands (gptoss-chat SUBCOMMAND --help):\n{subcommands}",
    )
    parser.add_argument(
        "model_dir",
        metavar="MODEL_DIR",
        nargs="?",
        help="gpt-oss checkpoint folder: the downloaded folder (its original/ is found) or a "
        "Hugging Face layout; with --backend replay, a recorded token file",
    )
    parser.add_argument(
        "prompt",
        metavar="PROMPT",
        nargs="?",
        help="run one turn without the interface: final answer to stdout, then exit",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--reasoning", choices=REASONING_EFFORTS, help="reasoning effort")
    model.add_argument("--developer-message", metavar="TEXT", help="instructions for the model")
    model.add_argument("--context", type=int, metavar="N", help="context window in tokens")
    model.add_argument("--temperature", type=float, metavar="T", help="0 is greedy")
    model.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling mass")
    model.add_argument("--seed", type=int, help="sampling seed")
    model.add_argument("--max-tokens", type=int, metavar="N", help="tokens per model turn")
    model.add_argument(
        "--backend",
        choices=BACKENDS,
        help="auto: Triton kernels on a CUDA GPU, torch elsewhere; vllm/ollama: drive a "
        "server given by --server; replay: play back recorded tokens (demos, tests)",
    )
    model.add_argument("--server", metavar="URL", help="server URL for --backend vllm/ollama")
    tools = parser.add_argument_group("tools")
    tools.add_argument("--browser", action="store_true", default=None, help="enable browser")
    tools.add_argument("--python", action="store_true", default=None, help="enable python")
    tools.add_argument(
        "--apply-patch", action="store_true", default=None, help="enable apply_patch"
    )
    tools.add_argument(
        "--workspace", metavar="DIR", help="root that apply_patch may edit (default: cwd)"
    )
    tools.add_argument("--yes", action="store_true", help="one-shot mode: approve every tool call")
    ui = parser.add_argument_group("interface")
    ui.add_argument("--plain", action="store_true", help="line-based REPL instead of the TUI")
    ui.add_argument("--raw", action="store_true", help="print the raw Harmony token stream")
    ui.add_argument(
        "--show-analysis",
        action="store_true",
        help="one-shot mode: print the model's reasoning to stderr",
    )
    ui.add_argument("--theme", metavar="NAME", help="dark, light, high-contrast or your own")
    ui.add_argument("--resume", nargs="?", const="last", metavar="ID", help="resume a session")
    ui.add_argument("--config", metavar="FILE", help="config file (default: user config dir)")
    ui.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def _run_subcommand(name: str, argv: Sequence[str]) -> int:
    module_name, text = SUBCOMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"gptoss-chat {name}", description=text)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"gptoss-chat {name}: not available in this build", file=sys.stderr)
        return 2
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    return int(module.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _run_subcommand(argv[0], argv[1:])
    args = build_chat_parser().parse_args(argv)
    if args.version:
        from gptoss_chat import __version__

        print(f"gptoss-chat {__version__}")
        return 0
    from gptoss_chat.launch import launch

    return launch(args)


if __name__ == "__main__":
    raise SystemExit(main())
