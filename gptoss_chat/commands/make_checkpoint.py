"""`gptoss-chat make-checkpoint`: write a random gpt-oss checkpoint for tests and benchmarks."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="folder to write (created if needed)")
    parser.add_argument(
        "--preset", choices=("tiny", "20b", "120b"), default="tiny", help="model shape"
    )
    parser.add_argument(
        "--layout",
        choices=("original", "hf"),
        default="original",
        help="original: DIR/original/{config.json,model.safetensors} as OpenAI ships it; "
        "hf: the Hugging Face layout (sharded safetensors + index)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="same seed: same weights in either layout"
    )
    parser.add_argument(
        "--device",
        help="where to draw the numbers (default: cuda if available, else cpu); CPU and CUDA "
        "draws differ",
    )
    parser.add_argument("--force", action="store_true", help="write into a non-empty folder")


def run(args: argparse.Namespace) -> int:
    import torch

    from gptoss_chat.model.config import PRESETS
    from gptoss_chat.model.layout import Layout
    from gptoss_chat.model.random_checkpoint import write_random_checkpoint

    directory = Path(args.directory)
    if directory.exists() and not directory.is_dir():
        print(f"make-checkpoint: {directory} exists and is not a folder", file=sys.stderr)
        return 2
    if directory.is_dir() and any(directory.iterdir()) and not args.force:
        print(
            f"make-checkpoint: {directory} is not empty (use --force to write into it)",
            file=sys.stderr,
        )
        return 2
    try:
        device = torch.device(args.device) if args.device else None
    except RuntimeError as exc:
        print(f"make-checkpoint: bad --device: {exc}", file=sys.stderr)
        return 2
    if device is not None and device.type == "cuda" and not torch.cuda.is_available():
        print("make-checkpoint: --device cuda given but no CUDA GPU is visible", file=sys.stderr)
        return 2
    shown = -1

    def progress(done: int, total: int) -> None:
        nonlocal shown
        percent = done * 100 // total
        if percent // 5 != shown // 5 and sys.stderr.isatty():
            print(f"\rwriting {percent:3d}%", end="", file=sys.stderr, flush=True)
        shown = percent

    started = time.perf_counter()
    config = PRESETS[args.preset]
    try:
        write_random_checkpoint(
            directory, config, Layout(args.layout), seed=args.seed, device=device,
            progress=progress,
        )  # fmt: skip
    except OSError as exc:
        print(f"\nmake-checkpoint: writing {directory} failed: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in directory.rglob("*.safetensors"))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(
        f"wrote {args.preset} ({args.layout} layout, seed {args.seed}) to {directory}: "
        f"{size / 1e9:.2f} GB in {seconds:.1f} s"
    )
    return 0
