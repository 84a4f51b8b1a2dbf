"""Time `gptoss-chat --help` and check that it imports neither torch nor textual.

Each run is a fresh subprocess, as when a user types the command, so the figures include
interpreter start-up. One extra run with PYTHONPROFILEIMPORTTIME=1 lists every imported module.
Prints one JSON line per command measured; exits 1 if a forbidden module was imported.

    PYTHONPATH=$PWD python benchmarks/cli_help.py --runs 30
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run_context import run_context  # benchmarks/ is on sys.path when run as a script

FORBIDDEN = ("torch", "textual")
TARGET_SECONDS = 0.5
REPO_ROOT = Path(__file__).resolve().parents[1]


def commands_to_time() -> list[list[str]]:
    """The console script when installed (what users type), and `python -m` always."""
    commands = []
    script = shutil.which("gptoss-chat")
    if script:
        commands.append([script, "--help"])
    commands.append([sys.executable, "-m", "gptoss_chat", "--help"])
    return commands


def child_env() -> dict[str, str]:
    """Run this checkout's code, whichever copy of the package is installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def imported_modules(command: list[str], env: dict[str, str]) -> set[str]:
    """Every module the command imports, from Python's -X importtime report on stderr."""
    done = subprocess.run(
        command,
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    } - {"imported package"}


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_runs(
    command: list[str], env: dict[str, str], runs: int
) -> tuple[list[float], list[float]]:
    """Wall-clock seconds per run, and CPU seconds per run (steadier on a shared machine)."""
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)  # warm the caches
    wall, cpu = [], []
    for _ in range(runs):
        cpu_before = children_cpu_seconds()
        start = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
        wall.append(time.perf_counter() - start)
        cpu.append(children_cpu_seconds() - cpu_before)
    return wall, cpu


def measure(command: list[str], runs: int) -> dict[str, object]:
    env = child_env()
    seconds, cpu_seconds = time_runs(command, env, runs)
    modules = imported_modules(command, env)
    forbidden = sorted({name.split(".")[0] for name in modules} & set(FORBIDDEN))
    median = statistics.median(seconds)
    return {
        "benchmark": "cli_help",
        "command": " ".join(command),
        "runs": runs,
        "median_s": round(median, 4),
        "p90_s": round(statistics.quantiles(seconds, n=10)[-1], 4),
        "min_s": round(min(seconds), 4),
        "max_s": round(max(seconds), 4),
        "cpu_median_s": round(statistics.median(cpu_seconds), 4),
        "target_s": TARGET_SECONDS,
        "within_target": median < TARGET_SECONDS,
        "modules_imported": len(modules),
        "forbidden_imports": forbidden,
        **run_context(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (>= 2)")
    parser.add_argument(
        "--command",
        action="append",
        metavar="CMD",
        help="time this command line instead (repeatable), e.g. 'gptoss-chat --help'",
    )
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    commands = [shlex.split(line) for line in args.command or []] or commands_to_time()
    clean = True
    for command in commands:
        result = measure(command, args.runs)
        print(json.dumps(result), flush=True)
        clean = clean and not result["forbidden_imports"]
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
