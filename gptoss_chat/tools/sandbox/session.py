"""The python sandbox of one conversation: stateful (one long-lived container) or stateless.

It turns every run into a `SandboxReport`: the exact text the model receives, a one-line summary
for the user, and whether it failed. Nothing here raises for Docker trouble: an unusable engine
becomes a report too, so the app keeps running.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from gptoss_chat.tools.sandbox.config import WORK_DIR, SandboxConfig, container_options
from gptoss_chat.tools.sandbox.container import CellRun, Outcome, ReplContainer
from gptoss_chat.tools.sandbox.engine import (
    SandboxUnavailable,
    classify_connection_error,
    connect,
    remove_leftovers,
    resolve_image,
    sandbox_labels,
)

if TYPE_CHECKING:
    from docker import DockerClient

T = TypeVar("T")

NO_OUTPUT_STATELESS = (
    "[WARN] No output available. Use print() to output anything to stdout to receive the output"
)
NO_OUTPUT_STATEFUL = (
    "[WARN] No output available. Use print(), or end the code with an expression, to see values"
)
STATE_LOST = (
    f"The python session was reset: variables, imports and files in {WORK_DIR} from earlier "
    "calls are lost; the next call starts a fresh session."
)
ENDED_BETWEEN_CALLS = (
    "[NOTE] The previous python session had ended, so this code ran in a fresh one: "
    "variables, imports and files from earlier calls are gone.\n"
)


@dataclass(frozen=True)
class SandboxReport:
    """The outcome of one python call, for the model and for the user."""

    model_text: str
    """Exactly what the tool message to the model says."""
    summary: str
    """One line for the user: 'ok in 0.1 s, 3 lines', 'timed out after 10 s; session reset'."""
    is_error: bool = False
    outcome: Outcome | None = None
    """None when the code never ran (Docker unusable)."""
    problem: SandboxUnavailable | None = None
    """Why Docker could not be used, with the user-facing fix."""
    state_lost: bool = False


class PythonSandbox:
    """Runs code for one conversation. Thread-safe; `close()` may interrupt a running call.

    Deleting a container and starting a new one take seconds (Docker's vfs driver copies the
    whole image): both happen in the background, so a timeout is reported as soon as the code
    is killed, and a stateful session restarts while the model reads the news.
    """

    def __init__(
        self,
        config: SandboxConfig,
        connect_fn: Callable[[SandboxConfig], DockerClient] = connect,
        *,
        restart_eagerly: bool = True,
    ) -> None:
        """`restart_eagerly`: start the next container as soon as one is used up (after a
        stateless call, a timeout or a crash); a one-shot caller (`sandbox run`) turns it off."""
        self.config = config
        self._connect = connect_fn
        self._restart_eagerly = restart_eagerly
        self._lock = threading.Lock()
        self._client: DockerClient | None = None
        self._image: str | None = None
        self._session: ReplContainer | None = None
        self._next: Future[ReplContainer] | None = None
        self._background: ThreadPoolExecutor | None = None
        self._removals: list[Future[None]] = []
        self._had_session = False
        self._closing = False
        self._interrupted = False
        self._running: ReplContainer | None = None

    @property
    def image(self) -> str | None:
        """The image in use, once resolved."""
        return self._image

    @property
    def container_id(self) -> str | None:
        session = self._session
        return session.id if session is not None and session.alive else None

    def prepare(self) -> tuple[DockerClient, str]:
        """Connect, remove leftovers of dead app processes, pick the image (once)."""
        if self._client is None or self._image is None:
            client = self._connect(self.config)
            remove_leftovers(client)
            self._image = resolve_image(client, self.config)
            self._client = client
        return self._client, self._image

    def execute(self, code: str) -> SandboxReport:
        import docker
        import requests

        with self._lock:
            self._closing = False
            try:
                return self._execute(code)
            except SandboxUnavailable as problem:
                self._forget_engine()
                return self._unavailable(problem)
            except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
                # The engine failed mid-way (daemon stopped, image removed): reconnect next time.
                self._forget_engine()
                return self._unavailable(classify_connection_error(exc, self._endpoint_text()))

    def warm_up(self) -> SandboxUnavailable | None:
        """Get ready before the first call (at app start, in a worker thread): connect, clean
        up leftovers, pick the image and start a container in the background. Returns the
        problem if Docker is unusable, so the app can say so early."""
        with self._lock:
            try:
                client, image = self.prepare()
            except SandboxUnavailable as problem:
                return problem
            if self._session is None and self._next is None:
                self._next = self._submit(ReplContainer, client, self._options(image))
        return None

    def _execute(self, code: str) -> SandboxReport:
        client, image = self.prepare()
        prefix = ""
        container = self._session
        if container is not None and not container.is_running():
            self._discard(container)  # it died between calls (killed from outside, daemon)
            container = None
            prefix = ENDED_BETWEEN_CALLS
        if container is None:
            container = self._take_next()
            if container is not None and not container.is_running():
                self._discard(container)
                container = None
        if container is None:
            container = ReplContainer(client, self._options(image))
        self._had_session = True
        if self.config.stateful:
            self._session = container
        stateful = self.config.stateful
        self._interrupted = False
        self._running = container
        try:
            run = container.run(code, echo=stateful, **self._limits())
        finally:
            self._running = None
        if self._interrupted and run.outcome is not Outcome.OK:
            run = replace(run, outcome=Outcome.INTERRUPTED)
        if not stateful or not container.alive:
            self._session = None
            self._discard(container)
            # Stateless calls each need a fresh container and a failed session needs a new
            # one: start it now, while the model reads this answer.
            if self._restart_eagerly and not self._closing:
                self._next = self._submit(ReplContainer, client, self._options(image))
        return self._report(run, prefix)

    def _take_next(self) -> ReplContainer | None:
        """The container started in the background, if it started."""
        upcoming, self._next = self._next, None
        if upcoming is None:
            return None
        try:
            return upcoming.result()
        except Exception:  # starting again in the foreground reports the cause
            return None

    def _discard(self, container: ReplContainer) -> None:
        container.kill()
        self._removals.append(self._submit(container.remove))

    def _submit(self, work: Callable[..., T], *args: object) -> Future[T]:
        if self._background is None:
            self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox")
        return self._background.submit(work, *args)

    def _options(self, image: str) -> dict:
        return container_options(self.config, image, sandbox_labels())

    def _limits(self) -> dict:
        return {"timeout_s": self.config.timeout_s, "output_limit": self.config.output_limit}

    def _report(self, run: CellRun, prefix: str) -> SandboxReport:
        text = run.output.text()
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        stateful = self.config.stateful
        reset = f" {STATE_LOST}" if stateful else ""
        if run.outcome is Outcome.OK:
            if not text.strip():
                text = NO_OUTPUT_STATEFUL if stateful else NO_OUTPUT_STATELESS
            truncated = ", output truncated" if run.output.truncated else ""
            summary = f"ok in {run.seconds:.1f} s, {lines} lines{truncated}"
            return SandboxReport(prefix + text, summary, outcome=run.outcome)
        if run.outcome is Outcome.TIMEOUT:
            error = f"[ERROR] Execution timed out after {self.config.timeout_s:g} seconds and was "
            error += f"stopped.{reset}"
            summary = f"timed out after {self.config.timeout_s:g} s"
        elif run.outcome is Outcome.INTERRUPTED:
            error = f"[ERROR] The user stopped the run after {run.seconds:.0f} seconds.{reset}"
            summary = "stopped by the user"
        elif run.outcome is Outcome.OUT_OF_MEMORY:
            error = (
                f"[ERROR] The code was killed: it used more than the sandbox's "
                f"{self.config.memory_mb} MiB of memory.{reset}"
            )
            summary = f"killed: out of memory ({self.config.memory_mb} MiB)"
        else:
            detail = f" {run.diagnostics}" if run.diagnostics else ""
            error = (
                f"[ERROR] The python process exited unexpectedly (exit code {run.exit_code})."
                f"{detail}{reset}"
            )
            summary = f"python exited (code {run.exit_code})"
        if stateful:
            summary += "; session reset"
        body = text if not text or text.endswith("\n") else text + "\n"
        return SandboxReport(
            prefix + body + error,
            summary,
            is_error=True,
            outcome=run.outcome,
            state_lost=stateful,
        )

    def _unavailable(self, problem: SandboxUnavailable) -> SandboxReport:
        return SandboxReport(
            problem.model_message,
            problem.user_message,
            is_error=True,
            problem=problem,
            state_lost=self._had_session,
        )

    def _endpoint_text(self) -> str:
        return self.config.docker_host or os.environ.get("DOCKER_HOST") or "the Docker socket"

    def _forget_engine(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._discard(session)
        self._client = None
        self._image = None

    def interrupt(self) -> None:
        """Stop the running call now (the user pressed stop); its container is killed, so a
        stateful session loses its state and the model is told. Callable from any thread."""
        running = self._running
        if running is not None:
            self._interrupted = True
            running.kill()

    def close(self) -> None:
        """Remove the session's containers, interrupting a running call, and wait until they
        are gone."""
        self._closing = True
        self.interrupt()
        with self._lock:
            session, self._session = self._session, None
            if session is not None:
                self._discard(session)
            upcoming, self._next = self._next, None
            if upcoming is not None:
                with contextlib.suppress(Exception):
                    self._discard(upcoming.result())
            removals, self._removals = self._removals, []
            for removal in removals:
                with contextlib.suppress(Exception):
                    removal.result()
            background, self._background = self._background, None
            if background is not None:
                background.shutdown(wait=True)
