"""`gptoss-chat generate`: raw completion on the local engine, without Harmony.

Prints the generated ids, their text and the speed figures (one JSON object with --json), for
debugging, benchmarks and parity checks against other engines.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="gpt-oss checkpoint folder")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--text", help="prompt text (encoded with the o200k_harmony tokenizer)")
    prompt.add_argument("--ids", help="prompt token ids, comma separated: 1,2,3")
    parser.add_argument("--max-tokens", type=int, default=32, metavar="N", help="default 32")
    parser.add_argument(
        "--temperature", type=float, default=0.0, metavar="T", help="default 0 (greedy)"
    )
    parser.add_argument("--top-p", type=float, default=1.0, metavar="P", help="default 1")
    parser.add_argument("--seed", type=int, help="sampling seed")
    parser.add_argument("--stop", metavar="IDS", help="stop token ids, comma separated")
    parser.add_argument("--device", help="cuda, cuda:1 or cpu (default: cuda if available)")
    parser.add_argument("--context", type=int, metavar="N", help="KV cache size in tokens")
    parser.add_argument("--backend", choices=("auto", "torch", "triton"), default="auto")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _parse_ids(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValueError(f"{option} takes comma-separated integers, got {text!r}") from None


def _load_encoding(model_dir: str) -> Any:
    try:
        from gptoss_chat.encoding import load_encoding
    except ModuleNotFoundError:
        return _fallback_encoding()
    return load_encoding(model_dir)


def _fallback_encoding() -> Any:
    """Until gptoss_chat.encoding lands: rebuild o200k_base offline from quicktok (the snippet
    the tests use), then load Harmony's encoding from it."""
    import base64
    import os
    from pathlib import Path

    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    directory = Path.home() / ".cache" / "gptoss-chat" / "encodings"
    path = directory / "o200k_base.tiktoken"
    if not path.exists():
        import quicktok

        tok = quicktok.get_encoding("o200k_base")
        lines = [
            base64.b64encode(tok.decode_single_token_bytes(rank)) + b" " + str(rank).encode()
            for rank in range(199998)
        ]
        directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(directory)
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


def _decode(encoding: Any, ids: list[int]) -> str:
    """Text of `ids`; ids the tokenizer does not know (a random model emits any of the 201,088)
    show as <|id|>."""
    parts = []
    for token in ids:
        try:
            parts.append(encoding.decode([token]))
        except Exception:  # harmony's error types for unknown ids are not public
            parts.append(f"<|{token}|>")
    return "".join(parts)


def run(args: argparse.Namespace) -> int:
    from gptoss_chat.generator import GeneratorError, SamplingOptions
    from gptoss_chat.model.generator import load_generator

    def fail(message: str, code: int = 1) -> int:
        print(f"gptoss-chat generate: {message}", file=sys.stderr)
        return code

    try:
        stop = _parse_ids(args.stop, "--stop") if args.stop else []
        ids = _parse_ids(args.ids, "--ids") if args.ids is not None else None
    except ValueError as exc:
        return fail(str(exc), 2)
    encoding = None
    if args.text is not None:
        try:
            encoding = _load_encoding(args.model_dir)
        except Exception as exc:  # any loader failure becomes a message
            return fail(f"cannot load the tokenizer for --text ({exc}); use --ids")
        ids = encoding.encode(args.text, allowed_special="all")
    assert ids is not None
    if args.max_tokens < 0:
        return fail("--max-tokens must be >= 0", 2)

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\rloading {done * 100 // total:3d}%", end="", file=sys.stderr, flush=True)

    try:
        generator = load_generator(
            args.model_dir,
            device=args.device,
            context=args.context,
            backend=args.backend,
            progress=progress,
        )
        if not args.json and sys.stderr.isatty():
            print(file=sys.stderr)
        sampling = SamplingOptions(
            temperature=args.temperature,
            top_p=args.top_p,
            seed=args.seed,
            max_tokens=args.max_tokens,
        )
        generated = list(generator.generate(ids, stop_tokens=stop, sampling=sampling))
    except GeneratorError as exc:
        return fail(str(exc))
    stats = generator.last_stats
    report = generator.load_report
    if encoding is None:
        try:
            encoding = _load_encoding(args.model_dir)
        except Exception:  # with --ids the text is a courtesy: no tokenizer, no text
            encoding = None
    text = _decode(encoding, generated) if encoding is not None else None
    result = {
        "model": generator.name,
        "prompt_ids": ids,
        "ids": generated,
        "text": text,
        "prompt_tokens": stats.prompt_tokens,
        "cached_tokens": stats.cached_tokens,
        "generated_tokens": stats.generated_tokens,
        "time_to_first_token": stats.time_to_first_token,
        "prefill_tokens_per_second": stats.prefill_tokens_per_second,
        "decode_tokens_per_second": stats.decode_tokens_per_second,
        "stop_reason": stats.stop_reason,
        "load_seconds": report.seconds if report else None,
        "context": generator.context_length,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print("ids:", " ".join(map(str, generated)))
    print("text:", text)
    print(
        f"{generator.name} · prompt {stats.prompt_tokens} tokens ({stats.cached_tokens} cached) "
        f"· first token {stats.time_to_first_token:.3f} s "
        f"({stats.prefill_tokens_per_second:.1f} tok/s prefill) "
        f"· {stats.generated_tokens} generated at {stats.decode_tokens_per_second:.1f} tok/s "
        f"· stop: {stats.stop_reason}"
    )
    return 0
