"""Run a blocking Generator in a thread and receive its tokens on the event loop.

The engine blocks (GPU kernels, HTTP reads), the core is async. A worker thread drives the
generator and hands tokens over in batches: it only wakes the loop when the consumer has
drained the previous batch, so a fast generator costs one loop wake-up per batch instead of one
per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Collection, Sequence

from gptoss_chat.generator import CancelToken, Generator, SamplingOptions


class _Channel:
    """A thread-to-loop mailbox of token batches, ending with None or an exception."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[int] = []
        self._end: BaseException | bool | None = False
        self._ready = asyncio.Event()

    def push(self, token: int) -> None:
        with self._lock:
            wake = not self._pending
            self._pending.append(token)
        if wake:
            self._wake()

    def close(self, error: BaseException | None = None) -> None:
        with self._lock:
            self._end = error if error is not None else True
        self._wake()

    def _wake(self) -> None:
        # RuntimeError: the loop has closed (the app quit mid-answer); nobody is listening.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ready.set)

    async def batches(self) -> AsyncIterator[list[int]]:
        while True:
            await self._ready.wait()
            with self._lock:
                batch, self._pending = self._pending, []
                end = self._end
                self._ready.clear()
            if batch:
                yield batch
            if isinstance(end, BaseException):
                raise end
            if end is True:
                return


async def stream_tokens(
    generator: Generator,
    tokens: Sequence[int],
    *,
    stop_tokens: Collection[int],
    sampling: SamplingOptions,
    cancel: CancelToken,
) -> AsyncIterator[list[int]]:
    """Yield batches of generated ids; exceptions from the generator re-raise here.

    If the consumer stops early, the generation is cancelled so the thread ends.
    """
    channel = _Channel(asyncio.get_running_loop())

    def work() -> None:
        try:
            for token in generator.generate(
                tokens, stop_tokens=stop_tokens, sampling=sampling, cancel=cancel
            ):
                channel.push(token)
        except BaseException as exc:  # handed to the consumer, which reports it
            channel.close(exc)
        else:
            channel.close()

    thread = threading.Thread(target=work, name="gptoss-generate", daemon=True)
    thread.start()
    finished = False
    try:
        async for batch in channel.batches():
            yield batch
        finished = True
    finally:
        if not finished:
            cancel.cancel()
