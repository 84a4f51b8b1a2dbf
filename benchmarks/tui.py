"""TUI benchmarks: first paint and streaming throughput. Prints one JSON object per line.

    PYTHONPATH=. python benchmarks/tui.py            # both
    PYTHONPATH=. python benchmarks/tui.py --only stream --tokens 20000

first_paint: the real command (`python -m gptoss_chat --backend replay …`) started in tmux,
timed until its status bar is on the screen (capture-pane polled every 10 ms). The model is not
waited for: the screen must paint while it loads. A second figure, first_paint_probe, runs the
same imports and app in tmux and records, at the app's first refresh, the wall time since the
process was spawned and the CPU time the process used: on a shared machine the CPU figure is
the one that does not depend on what the neighbours are doing.

stream: a headless app (Textual's run_test) answers one message from a replayed recording: a
long analysis and a long Markdown answer. Counted from Enter to the turn's end with every
buffered delta written into the analysis and answer panes; tokens/s is over both panes. The
generator thread, the Harmony parser and the core's events are inside the measurement. Two
ways: unthrottled (the replay as fast as it goes: the most the view can absorb), and paced at
--rate tokens/s like a model (then `lag_s`, from the generator's last token to the last pixel,
says whether the view kept up).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ANALYSIS_PARAGRAPH = (
    "The user wants to know how the cache behaves when the working set grows past memory. "
    "I should check the eviction order first, then what happens to dirty pages, and whether "
    "the write-back thread can keep up with {n} concurrent writers. Let me reason step by step "
    "about the numbers: pages are 4 KiB, the cache holds 2^{n} of them, and a miss costs one "
    "read. "
)
ANSWER_SECTION = """## Part {n}

The cache evicts the **least recently used** page first, so a scan that touches every page once
pushes the working set out. With `{n}` writers the dirty pages are written back before they are
evicted, and a miss costs one read of `4 KiB` from the backing store. That is why the hit rate
falls off a cliff rather than gently once the scan is larger than the cache.

The write-back thread batches pages, which keeps the disk queue short: {n} pages per batch is
enough to hide the seek time on spinning disks, while on SSDs a smaller batch keeps latency
down. Measure before tuning; the defaults are good for most workloads.

"""
ANSWER_CODE = """```python
def hit_rate(hits: int, misses: int) -> float:
    return hits / max(1, hits + misses)  # part {n}
```

- dirty pages are written back first;
- a miss costs one read.

"""


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.node()} · {platform.processor() or platform.machine()} · {cpus} cores"


def emit(record: dict) -> None:
    record.setdefault("date", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    record.setdefault("machine", machine())
    print(json.dumps(record), flush=True)


# -- first paint --------------------------------------------------------------------------------


def pane_env(**extra: str) -> str:
    """`env K=V …` for a tmux pane command: a running tmux server starts panes with its own
    environment, not the client's, so variables must travel in the command itself. COLUMNS and
    LINES are removed: a server that inherited them would make Textual draw 80x24."""
    values = {"PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **extra}
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in values.items())
    return f"env -u COLUMNS -u LINES {assignments}"


class TmuxServer:
    """Keeps one idle session open so the tmux server does not exit (and race the next
    new-session) between measured runs."""

    def __enter__(self) -> TmuxServer:
        self.name = f"gptoss-bench-anchor-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "sleep 900"], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False, capture_output=True)


def first_paint(repeats: int) -> None:
    if shutil.which("tmux") is None:
        emit({"bench": "tui_first_paint", "skipped": "tmux is not installed"})
        return
    replay = ROOT / "gptoss_chat" / "demo" / "replay.json"
    times: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        app = f"{sys.executable} -m gptoss_chat --backend replay {replay}"
        command = f"{pane_env(XDG_DATA_HOME=home)} {app}"
        env = os.environ
        for _ in range(repeats):
            name = f"gptoss-bench-{uuid.uuid4().hex[:8]}"
            start = time.perf_counter()
            started = subprocess.run(
                ["tmux", "new-session", "-d", "-s", name, "-x", "140", "-y", "40", command],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if started.returncode:
                raise RuntimeError(f"tmux failed: {started.stderr.strip()}")
            try:
                while True:
                    screen = subprocess.run(
                        ["tmux", "capture-pane", "-p", "-t", name],
                        capture_output=True,
                        text=True,
                        check=False,
                    ).stdout
                    if "reasoning medium" in screen:
                        break
                    if time.perf_counter() - start > 30:
                        raise RuntimeError(f"no status bar after 30 s:\n{screen}")
                    time.sleep(0.01)
                times.append(time.perf_counter() - start)
            finally:
                subprocess.run(["tmux", "kill-session", "-t", name], check=False)
    times.sort()
    emit(
        {
            "bench": "tui_first_paint",
            "command": app,
            "repeats": repeats,
            "median_s": round(times[len(times) // 2], 3),
            "min_s": round(times[0], 3),
            "max_s": round(times[-1], 3),
            "load_average": os.getloadavg()[0],
            "target_s": 1.0,
        }
    )


def paint_probe_child(out: Path, spawned_at: float) -> None:
    """Run in the tmux pane: the CLI's imports, then the app; record the first refresh."""
    import resource

    from gptoss_chat import launch  # noqa: F401 - the import chain `gptoss-chat` pays for
    from gptoss_chat.factory import LaunchOptions
    from gptoss_chat.ui.app import GptossChatApp

    replay = ROOT / "gptoss_chat" / "demo" / "replay.json"
    options = LaunchOptions(model_dir=str(replay), backend="replay")

    class ProbeApp(GptossChatApp):
        def on_mount(self) -> None:
            super().on_mount()
            self.call_after_refresh(self.painted)

        def painted(self) -> None:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            record = {
                "wall_s": time.time() - spawned_at,
                "cpu_s": usage.ru_utime + usage.ru_stime,
            }
            out.write_text(json.dumps(record))
            self.exit()

    ProbeApp(options, history_path=None).run()


def first_paint_probe(repeats: int) -> None:
    if shutil.which("tmux") is None:
        return
    env = os.environ
    walls: list[float] = []
    cpus: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(repeats):
            out = Path(scratch) / f"paint-{index}.json"
            name = f"gptoss-probe-{uuid.uuid4().hex[:8]}"
            command = (
                f"{pane_env()} {sys.executable} {Path(__file__).resolve()} --paint-probe {out} "
                f"--spawned-at {time.time()}"
            )
            subprocess.run(
                ["tmux", "new-session", "-d", "-s", name, "-x", "140", "-y", "40", command],
                env=env,
                check=False,
            )
            deadline = time.monotonic() + 30
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            subprocess.run(["tmux", "kill-session", "-t", name], check=False, capture_output=True)
            if out.exists():
                record = json.loads(out.read_text())
                walls.append(record["wall_s"])
                cpus.append(record["cpu_s"])
    walls.sort()
    cpus.sort()
    if not walls:
        emit({"bench": "tui_first_paint_probe", "error": "the probe never painted"})
        return
    emit(
        {
            "bench": "tui_first_paint_probe",
            "repeats": len(walls),
            "median_wall_s": round(walls[len(walls) // 2], 3),
            "median_cpu_s": round(cpus[len(cpus) // 2], 3),
            "min_cpu_s": round(cpus[0], 3),
            "load_average": os.getloadavg()[0],
            "target_s": 1.0,
        }
    )


# -- streaming ----------------------------------------------------------------------------------


def long_completion(tokens: int, encoding, *, dense: bool = False) -> tuple[str, int, int]:
    """Harmony text with about `tokens` tokens split evenly between analysis and answer.

    The answer is prose under headings with a code block and a short list every other
    section (about one Markdown block per 40 tokens); `dense` puts them in every section.
    """
    half = tokens // 2
    analysis, answer = "", ""
    n = 0
    while len(encoding.encode(analysis)) < half:
        n += 1
        analysis += ANALYSIS_PARAGRAPH.format(n=n) + ("\n\n" if n % 3 == 0 else "")
    n = 0
    while len(encoding.encode(answer)) < half:
        n += 1
        answer += ANSWER_SECTION.format(n=n)
        if dense or n % 2 == 0:
            answer += ANSWER_CODE.format(n=n)
    text = (
        f"<|channel|>analysis<|message|>{analysis}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{answer}<|return|>"
    )
    return text, len(encoding.encode(analysis)), len(encoding.encode(answer))


WARM_UP = (
    "<|channel|>analysis<|message|>Say hi.<|end|><|start|>assistant<|channel|>final<|message|>"
    "Hi!\n\n```python\nprint('hi')\n```<|return|>"
)


def paced_replay(script: list[int], rate: float):
    """A ReplayGenerator that releases tokens at `rate` per second, in 1 ms bursts (a sleep
    per token is too coarse at thousands of tokens per second)."""
    from gptoss_chat.generator import ReplayGenerator

    class PacedReplay(ReplayGenerator):
        finished_at = 0.0

        def _play(self, script, prompt_tokens, stop_tokens, sampling, cancel):
            start = time.perf_counter()
            inner = super()._play(script, prompt_tokens, stop_tokens, sampling, cancel)
            for index, token in enumerate(inner):
                due = start + index / rate
                delay = due - time.perf_counter()
                if delay > 0.001:
                    time.sleep(delay)
                yield token
            PacedReplay.finished_at = time.perf_counter()

    return PacedReplay([script], name="paced replay")


def screen_settled(screen) -> bool:
    """Nothing left for the screen to lay out or paint (Textual's own idle test)."""
    return not (
        screen._layout_required
        or screen._scroll_required
        or screen._repaint_required
        or screen._recompose_required
        or screen._dirty_widgets
    )


async def stream_once(
    encoding, text: str, rate: float | None = None, *, end: str = "idle"
) -> tuple[float, int, float]:
    """(seconds from Enter to the rendered end, tokens, seconds after the generator ended).

    `end="idle"` (the figures recorded so far): Enter goes through `pilot.press`, which
    returns only once the process has been idle for a 20 ms slice (or after 2 x 1 s on long
    turns), then the turn's end is polled every 5 ms; on short turns the end is thus found
    10-40 ms late. `end="rendered"`: Enter is posted without waiting, and the end is the
    first 2 ms poll that finds the turn over and nothing left for the screen to lay out or
    paint."""
    from gptoss_chat.conversation import ChatSession
    from gptoss_chat.factory import LaunchOptions
    from gptoss_chat.generator import ReplayGenerator
    from gptoss_chat.ui.app import make_app
    from gptoss_chat.ui.widgets.prompt_input import PromptInput

    script = encoding.encode(text, allowed_special="all")
    warm_up = encoding.encode(WARM_UP, allowed_special="all")
    generator = ReplayGenerator([warm_up, script]) if rate is None else paced_replay(script, rate)
    if rate is not None:
        generator.scripts.insert(0, warm_up)
    session = ChatSession(encoding=encoding, generator=generator)
    app = make_app(LaunchOptions(settings=session.settings), session=session, history_path=None)
    async with app.run_test(size=(140, 45)) as pilot:
        prompt = app.query_one(PromptInput)
        # A first short turn pays for what a session pays once (importing Markdown, pygments).
        prompt.load_text("warm up")
        await pilot.press("enter")
        while not session.entries or app.chat_screen.busy:
            await asyncio.sleep(0.005)
        prompt.load_text("go")
        start = time.perf_counter()
        if end == "idle":
            await pilot.press("enter")
            while not session.entries or app.chat_screen.busy:
                await asyncio.sleep(0.005)
        else:
            from textual import events

            key = events.Key("enter", "\r")
            key.set_sender(app)
            app._driver.send_message(key)
            await asyncio.sleep(0.05)
            while app.chat_screen.busy or not screen_settled(app.screen):
                await asyncio.sleep(0.002)
        done = time.perf_counter()
        generated = session.generator.last_stats.generated_tokens
        await pilot.pause(0.1)  # let the turn's worker end before the app shuts down
    lag = done - getattr(generator, "finished_at", done)
    return done - start, generated, lag


def stream(
    tokens: int,
    repeats: int,
    *,
    dense: bool = False,
    rate: float | None = None,
    end: str = "idle",
) -> None:
    from gptoss_chat.encoding import load_encoding

    encoding = load_encoding()
    text, analysis_tokens, answer_tokens = long_completion(tokens, encoding, dense=dense)
    runs = [asyncio.run(stream_once(encoding, text, rate, end=end)) for _ in range(repeats)]
    runs.sort()
    elapsed, generated, lag = runs[len(runs) // 2]
    name = "tui_stream_dense" if dense else "tui_stream"
    record = {
        "bench": name if rate is None else f"{name}_paced",
        "tokens": generated,
        "analysis_tokens": analysis_tokens,
        "answer_tokens": answer_tokens,
        "repeats": repeats,
        "median_s": round(elapsed, 3),
        "tokens_per_second": round(generated / elapsed),
        "best_tokens_per_second": round(runs[0][1] / runs[0][0]),
        "target_tokens_per_second": 5000,
        "load_average": os.getloadavg()[0],
    }
    if rate is not None:
        record["paced_at"] = rate
        record["lag_s"] = round(lag, 3)
        record["max_lag_s"] = round(max(run[2] for run in runs), 3)
        record["lags_s"] = sorted(round(run[2], 3) for run in runs)
        record["end"] = end
    emit(record)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("first_paint", "stream"))
    parser.add_argument("--tokens", type=int, default=12000, help="tokens in the streamed turn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5000.0, help="paced run: tokens/s")
    parser.add_argument(
        "--dense", action="store_true", help="also run with a code block and list per section"
    )
    parser.add_argument(
        "--end",
        choices=("idle", "rendered"),
        default="idle",
        help="how the end of a turn is found (see stream_once)",
    )
    parser.add_argument("--paint-probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.paint_probe:
        paint_probe_child(args.paint_probe, args.spawned_at)
        return 0
    if args.only in (None, "first_paint") and shutil.which("tmux"):
        with TmuxServer():
            first_paint(args.repeats)
            first_paint_probe(args.repeats)
    if args.only in (None, "stream"):
        stream(args.tokens, args.repeats)
        stream(args.tokens, args.repeats, rate=args.rate, end=args.end)
        if args.dense:
            stream(args.tokens, args.repeats, dense=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
