"""Reaching the Docker engine: connection, image choice, leftover cleanup, clear failures.

Every way Docker can be unusable becomes a `SandboxUnavailable` carrying one sentence for the
user (with the fix) and one for the model, so neither the app nor the tool call crashes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from gptoss_chat.tools.sandbox.config import DEFAULT_IMAGE, LABEL, LOCAL_IMAGE, SandboxConfig

if TYPE_CHECKING:
    from docker import DockerClient

OWNER_LABEL = "gptoss-chat.owner"
"""host:pid:start-time of the app process that created a container."""
BUILD_HINT = "run `gptoss-chat sandbox build` to build a local image without any registry"


class Problem(StrEnum):
    NO_SDK = "docker SDK missing"
    NOT_INSTALLED = "Docker not installed"
    DAEMON_DOWN = "Docker daemon not running"
    PERMISSION = "permission denied on the Docker socket"
    IMAGE_MISSING = "sandbox image missing"
    ENGINE_ERROR = "Docker error"


class SandboxUnavailable(Exception):
    """Docker or the image cannot be used; `user_message` says what to do about it."""

    def __init__(self, problem: Problem, user_message: str) -> None:
        super().__init__(user_message)
        self.problem = problem
        self.user_message = user_message

    @property
    def model_message(self) -> str:
        return (
            f"[ERROR] The python tool is unavailable ({self.problem.value}); the code was not "
            "run. The user has been told how to fix it. Continue without running code."
        )


def _error_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _endpoint(config: SandboxConfig) -> str:
    return config.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def classify_connection_error(exc: BaseException, endpoint: str) -> SandboxUnavailable:
    """Turn whatever the docker SDK raised while connecting into a clear problem."""
    chain = _error_chain(exc)
    text = " ".join(str(item) for item in chain)
    if any(isinstance(item, PermissionError) for item in chain) or "Permission denied" in text:
        return SandboxUnavailable(
            Problem.PERMISSION,
            f"Permission denied on the Docker socket ({endpoint}). Add your user to the "
            "'docker' group (`sudo usermod -aG docker $USER`, then log in again) or use "
            "rootless Docker.",
        )
    missing_socket = any(isinstance(item, FileNotFoundError) for item in chain)
    refused = any(isinstance(item, ConnectionRefusedError) for item in chain)
    if missing_socket or refused or "Connection refused" in text or "No such file" in text:
        if shutil.which("dockerd") is None and shutil.which("docker") is None:
            return SandboxUnavailable(
                Problem.NOT_INSTALLED,
                "Docker is not installed, so the python tool cannot run code. Install it "
                "(Debian/Ubuntu: `sudo apt-get install docker.io`) and start the daemon.",
            )
        return SandboxUnavailable(
            Problem.DAEMON_DOWN,
            f"The Docker daemon is not running (nothing answers at {endpoint}). Start it "
            "(`sudo systemctl start docker`, or `sudo dockerd &`).",
        )
    return SandboxUnavailable(
        Problem.ENGINE_ERROR, f"Cannot use Docker at {endpoint}: {chain[-1] or exc}"
    )


def connect(config: SandboxConfig, timeout_s: float = 30.0) -> DockerClient:
    """A client to a live engine, or SandboxUnavailable saying why not."""
    try:
        import docker
    except ImportError as exc:
        raise SandboxUnavailable(
            Problem.NO_SDK, "The `docker` Python package is missing: `pip install docker`."
        ) from exc
    endpoint = _endpoint(config)
    environment = dict(os.environ)
    environment["DOCKER_HOST"] = endpoint
    try:
        client = docker.from_env(environment=environment, timeout=int(timeout_s))
        client.ping()
    except docker.errors.DockerException as exc:
        raise classify_connection_error(exc, endpoint) from exc
    except OSError as exc:
        raise classify_connection_error(exc, endpoint) from exc
    return client


def _has_image(client: DockerClient, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def split_image_name(name: str) -> tuple[str, str]:
    """'repo/name:tag' -> ('repo/name', 'tag'); the tag defaults to 'latest'."""
    if ":" in name.rsplit("/", 1)[-1]:
        repository, _, tag = name.rpartition(":")
        return repository, tag
    return name, "latest"


def _try_pull(client: DockerClient, name: str) -> str | None:
    """Pull `name`; None on success, else the engine's reason."""
    import docker

    repository, tag = split_image_name(name)
    try:
        client.images.pull(repository, tag=tag)
    except docker.errors.APIError as exc:
        return str(exc.explanation or exc)
    except docker.errors.DockerException as exc:
        return str(exc)
    return None


def resolve_image(client: DockerClient, config: SandboxConfig) -> str:
    """The image to run: present locally, or pulled; else SandboxUnavailable offering a build."""
    candidates = [config.image] if config.image else [DEFAULT_IMAGE, LOCAL_IMAGE]
    for name in candidates:
        if _has_image(client, name):
            return name
    reason = _try_pull(client, candidates[0])
    if reason is None:
        return candidates[0]
    tried = " or ".join(candidates)
    switch = (
        f", then set the sandbox image to {LOCAL_IMAGE}"
        if config.image and config.image != LOCAL_IMAGE
        else ""
    )
    raise SandboxUnavailable(
        Problem.IMAGE_MISSING,
        f"The sandbox image {tried} is not available and could not be pulled "
        f"({_first_line(reason)}). To work offline, {BUILD_HINT}{switch}.",
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "no reason given"


def _process_start_time(pid: int) -> str:
    """The kernel's start time of `pid` (clock ticks since boot): tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return fields[19] if len(fields) > 19 else ""


def owner_identity(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start_time(pid)}"


def sandbox_labels() -> dict[str, str]:
    return {LABEL: "1", OWNER_LABEL: owner_identity()}


def _owner_is_gone(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's app may share this engine: not ours to judge
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    return bool(start) and _process_start_time(pid) != start


@dataclass(frozen=True)
class Leftover:
    container_id: str
    owner: str
    status: str


def list_sandbox_containers(client: DockerClient) -> list[Leftover]:
    containers = client.containers.list(all=True, filters={"label": LABEL})
    return [Leftover(c.id, c.labels.get(OWNER_LABEL, ""), c.status) for c in containers if c.id]


def remove_leftovers(client: DockerClient) -> list[str]:
    """Remove sandbox containers whose app process is gone (crashed or killed); their ids."""
    import docker

    removed = []
    for leftover in list_sandbox_containers(client):
        if not _owner_is_gone(leftover.owner):
            continue
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(leftover.container_id, force=True)
        removed.append(leftover.container_id)
    return removed
