"""`gptoss-chat sandbox run|build|status`: the python tool's Docker sandbox from the shell.

`run` goes through the same door as the model: PythonTool.propose then run, and prints the
exact text of the tool message the model would receive.
"""

from __future__ import annotations

import argparse
import sys

from gptoss_chat.tools.sandbox.config import LOCAL_IMAGE, SandboxConfig

DEFAULTS = SandboxConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run Python code read on stdin as the python tool would; print what the model "
        "would receive (exit 1 if the run failed: timeout, killed, Docker unusable)",
    )
    run.add_argument(
        "--stateless", action="store_true", help="fresh container, no echo of the last value"
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        default=DEFAULTS.timeout_s,
        help=f"wall-clock limit in seconds (default {DEFAULTS.timeout_s:g})",
    )
    run.add_argument(
        "--memory",
        type=int,
        metavar="MIB",
        default=DEFAULTS.memory_mb,
        help=f"memory limit (default {DEFAULTS.memory_mb})",
    )
    run.add_argument("--network", action="store_true", help="allow network access")
    _add_common(run)
    build = actions.add_parser(
        "build", help="build a local sandbox image with debootstrap + docker import (no registry)"
    )
    build.add_argument("--tag", default=LOCAL_IMAGE, help=f"image tag (default {LOCAL_IMAGE})")
    build.add_argument("--suite", default="bookworm", help="Debian suite (default bookworm)")
    build.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror")
    build.add_argument(
        "--if-missing", action="store_true", help="do nothing if the tag already exists"
    )
    build.add_argument("--docker-host", metavar="URL", help="Docker endpoint (like DOCKER_HOST)")
    status = actions.add_parser("status", help="say whether Docker and the image are usable")
    _add_common(status)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image",
        help="sandbox image (default: python:3.12-slim if usable, else the locally built "
        f"{LOCAL_IMAGE})",
    )
    parser.add_argument("--docker-host", metavar="URL", help="Docker endpoint (like DOCKER_HOST)")


def run(args: argparse.Namespace) -> int:
    handlers = {"run": _run_code, "build": _build, "status": _status}
    return handlers[args.action](args)


def _run_code(args: argparse.Namespace) -> int:
    from gptoss_chat.tools.base import ToolCall, ToolCallError
    from gptoss_chat.tools.python_tool import PythonTool
    from gptoss_chat.tools.sandbox.session import PythonSandbox

    if args.timeout <= 0:
        print("sandbox run: --timeout must be positive", file=sys.stderr)
        return 2
    config = SandboxConfig(
        image=args.image,
        stateful=not args.stateless,
        timeout_s=args.timeout,
        memory_mb=args.memory,
        network=args.network,
        docker_host=args.docker_host,
    )
    tool = PythonTool(config, PythonSandbox(config, restart_eagerly=False))
    try:
        proposal = tool.propose(ToolCall(recipient="python", arguments=sys.stdin.read()))
        result = tool.run(proposal)
        text = "".join(getattr(part, "text", "") for part in result.messages[0].content)
        print(text, end="" if text.endswith("\n") else "\n", flush=True)
        report = result.data
        if report is not None and report.problem is not None:
            print(f"sandbox: {report.problem.user_message}", file=sys.stderr)
        return 1 if result.is_error else 0
    except ToolCallError as exc:
        print(f"sandbox run: {exc}", file=sys.stderr)
        return 2
    finally:
        tool.close()  # waits until the container is deleted


def _build(args: argparse.Namespace) -> int:
    from gptoss_chat.tools.sandbox.engine import SandboxUnavailable, connect
    from gptoss_chat.tools.sandbox.image_build import BuildError, BuildPlan, build_image

    try:
        client = connect(SandboxConfig(docker_host=args.docker_host))
    except SandboxUnavailable as problem:
        print(f"sandbox build: {problem.user_message}", file=sys.stderr)
        return 1
    if args.if_missing and client.images.list(name=args.tag):
        print(f"{args.tag} already exists")
        return 0
    plan = BuildPlan(tag=args.tag, suite=args.suite, mirror=args.mirror)
    try:
        image_id = build_image(client, plan, log=lambda line: print(line, file=sys.stderr))
    except BuildError as exc:
        print(f"sandbox build: {exc}", file=sys.stderr)
        return 1
    print(f"built {args.tag} ({image_id[:19]})")
    if args.tag == LOCAL_IMAGE:
        print("the python tool uses it whenever python:3.12-slim is not available")
    else:
        print(f"use it with --image {args.tag} (or the sandbox image setting)")
    return 0


def _status(args: argparse.Namespace) -> int:
    from gptoss_chat.tools.sandbox.engine import (
        SandboxUnavailable,
        connect,
        list_sandbox_containers,
        resolve_image,
    )

    config = SandboxConfig(image=args.image, docker_host=args.docker_host)
    try:
        client = connect(config)
    except SandboxUnavailable as problem:
        print(f"docker: NOT USABLE: {problem.user_message}")
        return 1
    version = client.version()
    print(f"docker: ok (engine {version.get('Version', '?')}, API {version.get('ApiVersion')})")
    containers = list_sandbox_containers(client)
    print(f"sandbox containers: {len(containers)}")
    try:
        image = resolve_image(client, config)
    except SandboxUnavailable as problem:
        print(f"image: NOT USABLE: {problem.user_message}")
        return 1
    print(f"image: {image} (present)")
    return 0
