"""`gptoss-chat config`: the effective configuration and where each value came from.

gptoss-chat config                       # config file + defaults
gptoss-chat config -- --temperature 0.2  # ... as a chat with these flags would see it
gptoss-chat config --init                # write a commented config file to start from
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gptoss_chat import locations
from gptoss_chat.config import ConfigError, load_config, render, resolve, template


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="config file (default: user config)")
    parser.add_argument("--path", action="store_true", help="print the config file's path")
    parser.add_argument(
        "--init", action="store_true", help="write a commented config file if there is none"
    )
    parser.add_argument(
        "chat_flags",
        nargs=argparse.REMAINDER,
        metavar="-- FLAGS",
        help="chat flags to apply on top, after --",
    )


def run(args: argparse.Namespace) -> int:
    path = locations.config_file() if args.config is None else args.config
    if args.path:
        print(path)
        return 0
    if args.init:
        return _init(locations.config_file() if args.config is None else _as_path(args.config))
    flags = [flag for flag in args.chat_flags if flag != "--"]
    try:
        if flags:
            from gptoss_chat.cli import build_chat_parser

            chat_args = build_chat_parser().parse_args(flags)
            if args.config is not None and chat_args.config is None:
                chat_args.config = args.config
            config = resolve(chat_args)
        else:
            config = load_config(args.config)
    except ConfigError as exc:
        print(f"gptoss-chat config: {exc}", file=sys.stderr)
        return 2
    where = config.path if config.path else f"{path} (not found: built-in defaults)"
    print(f"# config file: {where}")
    rows = render(config)
    width = max(len(line) for line, _ in rows)
    for line, source in rows:
        print(f"{line:<{width}}  # {source}")
    return 0


def _as_path(text: str) -> Path:
    return Path(text).expanduser()


def _init(path: Path) -> int:
    if path.exists():
        print(f"gptoss-chat config: {path} already exists; edit it instead", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template(), encoding="utf-8")
    print(f"wrote {path}")
    return 0
