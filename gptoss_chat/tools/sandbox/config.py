"""Settings of the python sandbox and the hardened container options derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_IMAGE = "python:3.12-slim"
"""Used when present locally or pullable."""
LOCAL_IMAGE = "gptoss-chat/sandbox:bookworm"
"""What `gptoss-chat sandbox build` produces; used when the default image is unavailable."""
WORK_DIR = "/mnt/data"
"""The only writable place in the container: the drive the model was trained to use."""
NOBODY = "65534:65534"
LABEL = "gptoss-chat.sandbox"
"""Every sandbox container carries it, so leftovers can be found and removed."""


@dataclass(frozen=True)
class SandboxConfig:
    """How python tool code runs. The defaults are safe to leave on."""

    image: str | None = None
    """Docker image; None picks DEFAULT_IMAGE if usable, else LOCAL_IMAGE."""
    stateful: bool = True
    """One long-lived container per conversation keeps variables, imports and files."""
    timeout_s: float = 120.0
    """Wall-clock limit of one call; the run is killed (and its session restarted) past it."""
    memory_mb: int = 512
    """Memory limit of the container (no swap)."""
    cpus: float = 1.0
    pids: int = 64
    """Processes and threads; contains fork bombs."""
    work_dir_mb: int = 256
    """Size of the writable tmpfs at WORK_DIR."""
    output_limit: int = 20_000
    """Bytes of output kept for the model; the rest is cut out with a note."""
    network: bool = False
    """Give the container network access (default bridge). Off: network_mode none."""
    user: str = NOBODY
    """uid:gid the code runs as; never root."""
    docker_host: str | None = None
    """Docker endpoint (like DOCKER_HOST); None uses the environment."""
    extra_env: dict[str, str] = field(default_factory=dict)


def container_options(config: SandboxConfig, image: str, labels: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments for `client.containers.create`: everything locked down.

    The root filesystem is read-only and only WORK_DIR (a tmpfs owned by the sandbox user) is
    writable; /dev/shm stays, as Docker provides it, because multiprocessing needs it.
    """
    from docker.types import LogConfig, Ulimit

    uid, _, gid = config.user.partition(":")
    memory = f"{config.memory_mb}m"
    environment = {
        "HOME": WORK_DIR,
        "TMPDIR": WORK_DIR,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        **config.extra_env,
    }
    return {
        "image": image,
        "user": config.user,
        "working_dir": WORK_DIR,
        "environment": environment,
        "labels": labels,
        "network_mode": "bridge" if config.network else "none",
        "read_only": True,
        "tmpfs": {WORK_DIR: f"rw,size={config.work_dir_mb}m,uid={uid},gid={gid or uid}"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": int(config.cpus * 1e9),
        "pids_limit": config.pids,
        "ulimits": [Ulimit(name="nofile", soft=1024, hard=1024)],
        "init": True,
        "stdin_open": True,
        "tty": False,
        "log_config": LogConfig(type=LogConfig.types.NONE),
    }
