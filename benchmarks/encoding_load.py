"""Time `gptoss_chat.encoding.load_encoding` cold (rebuilding the vocabulary) and warm (cached).

Each sample is a fresh interpreter; the figure is the `load_encoding()` call alone (imports
excluded), next to harmony's own load of the same file as the floor we cannot go below.
Prints one JSON line per case.

    PYTHONPATH=$PWD python benchmarks/encoding_load.py --runs 7 [--model-dir gpt-oss-20b]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from run_context import run_context  # benchmarks/ is on sys.path when run as a script

REPO_ROOT = Path(__file__).resolve().parents[1]

# Prints the seconds spent in load_encoding (or, with HARMONY_ONLY, in harmony's loader).
TIMED_LOAD = """
import os, sys, time
if os.environ.get("BLOCK_QUICKTOK"):
    sys.modules["quicktok"] = None
from openai_harmony import HarmonyEncodingName, load_harmony_encoding
from gptoss_chat.encoding import load_encoding
start, cpu_start = time.perf_counter(), time.process_time()
if os.environ.get("HARMONY_ONLY"):
    load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
else:
    load_encoding(os.environ.get("MODEL_DIR") or None, cache_dir=os.environ["CACHE"])
print(time.perf_counter() - start, time.process_time() - cpu_start)
"""


def sample(env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one load in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", TIMED_LOAD], env=env, capture_output=True, text=True, check=True
    )
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def summary(case: str, samples: list[tuple[float, float]]) -> dict[str, object]:
    seconds = [wall for wall, _ in samples]
    return {
        "benchmark": "encoding_load",
        "case": case,
        "runs": len(seconds),
        "median_s": round(statistics.median(seconds), 4),
        "min_s": round(min(seconds), 4),
        "max_s": round(max(seconds), 4),
        "cpu_median_s": round(statistics.median(cpu for _, cpu in samples), 4),
        **run_context(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="samples per case")
    parser.add_argument("--model-dir", help="also time a cold rebuild from its tokenizer.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="encoding-bench-") as scratch:
        cache = Path(scratch) / "cache"
        base = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_ENCODINGS_BASE"}
        base.update(
            PYTHONPATH=str(REPO_ROOT),
            CACHE=str(cache),
            TIKTOKEN_RS_CACHE_DIR=str(Path(scratch) / "no-harmony-cache"),
        )
        cases = [("cold: rebuild from quicktok", dict(base))]
        if args.model_dir:
            cases.append(
                ("cold: rebuild from tokenizer.json", {**base, "MODEL_DIR": args.model_dir})
            )
        for case, env in cases:
            seconds = []
            for _ in range(args.runs):
                shutil.rmtree(cache, ignore_errors=True)
                seconds.append(sample(env))
            print(json.dumps(summary(case, seconds)), flush=True)

        sample(base)  # leaves a valid cache behind
        warm = [sample({**base, "BLOCK_QUICKTOK": "1"}) for _ in range(args.runs)]
        print(json.dumps(summary("warm: cached file", warm)), flush=True)
        floor_env = {
            **base,
            "HARMONY_ONLY": "1",
            "TIKTOKEN_ENCODINGS_BASE": str(cache / "encodings"),
        }
        floor = [sample(floor_env) for _ in range(args.runs)]
        print(json.dumps(summary("floor: openai_harmony alone, same file", floor)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
