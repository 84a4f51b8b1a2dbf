"""`gptoss-chat browse`: run the browser tool by hand and print exactly what the model gets.

    gptoss-chat browse search "tide tables oban"
    gptoss-chat browse open https://example.org --loc 40 --num-lines 20
    gptoss-chat browse find "high water" https://example.org

Each command goes through the same BrowserTool code path as the model's calls (propose, then
run), so the printed view is byte for byte the tool message text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from gptoss_chat.tools.base import ToolCall, ToolCallError
from gptoss_chat.tools.browser.backends import BACKEND_NAMES, FetchLimits, make_backend
from gptoss_chat.tools.browser.tool import BrowserTool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default="auto",
        help="exa: Exa API (needs EXA_API_KEY); keyless: fetch pages directly and search with "
        "ddgs; auto (default): exa when EXA_API_KEY is set, else keyless",
    )
    parser.add_argument(
        "--allow-local",
        action="store_true",
        help="let the keyless backend open loopback addresses (127.0.0.0/8, ::1)",
    )
    parser.add_argument(
        "--exa-base-url", metavar="URL", help="Exa API address (default: https://api.exa.ai)"
    )
    parser.add_argument(
        "--timeout", type=float, default=15.0, metavar="S", help="seconds per fetch (15)"
    )
    parser.add_argument(
        "--max-bytes", type=int, default=2_000_000, metavar="N", help="page size cap (2000000)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    search = actions.add_parser("search", help="search the web; prints the results page")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--topn", type=int, default=10, help="number of results (10)")
    open_ = actions.add_parser("open", help="open a URL; prints the first view of the page")
    open_.add_argument("url", metavar="URL")
    open_.add_argument("--loc", type=int, default=-1, help="first line to show")
    open_.add_argument("--num-lines", type=int, default=-1, help="lines to show")
    open_.add_argument("--view-source", action="store_true", help="show the raw page source")
    find = actions.add_parser("find", help="open a URL, then print the find results view")
    find.add_argument("pattern", metavar="PATTERN")
    find.add_argument("url", metavar="URL")


def _calls(args: argparse.Namespace) -> list[ToolCall]:
    if args.action == "search":
        return [ToolCall("browser.search", json.dumps({"query": args.query, "topn": args.topn}))]
    opened = {"id": args.url}
    if args.action == "open":
        opened.update(loc=args.loc, num_lines=args.num_lines, view_source=args.view_source)
        return [ToolCall("browser.open", json.dumps(opened))]
    return [
        ToolCall("browser.open", json.dumps(opened)),
        ToolCall("browser.find", json.dumps({"pattern": args.pattern})),
    ]


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.max_bytes <= 0:
        print("browse: --timeout and --max-bytes must be positive", file=sys.stderr)
        return 2
    try:
        backend = make_backend(
            args.backend,
            exa_api_key=os.environ.get("EXA_API_KEY"),
            exa_base_url=args.exa_base_url,
            allow_local=args.allow_local,
            limits=FetchLimits(timeout_s=args.timeout, max_bytes=args.max_bytes),
        )
    except ValueError as exc:
        print(f"browse: {exc}", file=sys.stderr)
        return 2
    tool = BrowserTool(backend)
    try:
        text = ""
        for call in _calls(args):
            try:
                result = tool.run(tool.propose(call))
            except ToolCallError as exc:
                print(f"browse: {exc}", file=sys.stderr)
                return 1
            text = result.messages[0].content[0].text
            if result.is_error:
                print(text, file=sys.stderr)
                return 1
        try:
            print(text, flush=True)
        except BrokenPipeError:
            # `browse … | head`: the reader left; not an error. Silence the exit-time flush too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        tool.close()
