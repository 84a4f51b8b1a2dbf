"""`gptoss-chat sessions`: list, show, rename, delete and export saved chat sessions."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from gptoss_chat.export import EXPORT_FORMATS, render
from gptoss_chat.store import SessionStore, StoreError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="saved sessions, most recent first")
    listing.add_argument("-n", "--limit", type=int, default=50, help="how many (default 50)")
    show = actions.add_parser("show", help="print a session as Markdown")
    show.add_argument("session", metavar="ID", nargs="?", default="last", help="id, prefix, last")
    rename = actions.add_parser("rename", help="give a session a title")
    rename.add_argument("session", metavar="ID")
    rename.add_argument("title", metavar="TITLE")
    delete = actions.add_parser("delete", help="delete a session")
    delete.add_argument("session", metavar="ID")
    export = actions.add_parser("export", help="write a session as Markdown or JSON")
    export.add_argument("session", metavar="ID", nargs="?", default="last")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="md")
    export.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")


def run(args: argparse.Namespace) -> int:
    action = args.action or "list"
    try:
        with SessionStore.open_default() as store:
            if action == "list":
                return _list(store, getattr(args, "limit", 50))
            if action == "show":
                sys.stdout.write(render(store.load(args.session), "md"))
                return 0
            if action == "rename":
                info = store.rename(args.session, args.title)
                print(f"renamed {info.id}: {info.title}")
                return 0
            if action == "delete":
                info = store.delete(args.session)
                print(f"deleted {info.id}: {info.display_title}")
                return 0
            text = render(store.load(args.session), args.format)
    except StoreError as exc:
        print(f"gptoss-chat sessions: {exc}", file=sys.stderr)
        return 1
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"gptoss-chat sessions: cannot write {args.output}: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _list(store: SessionStore, limit: int) -> int:
    sessions = store.list_sessions(limit=limit)
    if not sessions:
        print("no saved sessions yet")
        return 0
    for info in sessions:
        when = dt.datetime.fromtimestamp(info.updated_at).strftime("%Y-%m-%d %H:%M")
        count = f"{info.message_count} msg"
        print(f"{info.id}  {when}  {count:>7}  {info.display_title}")
    return 0
