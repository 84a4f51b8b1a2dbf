"""Build the sandbox image without any registry: debootstrap a minimal Debian, docker import.

The image has no user entry for the sandbox's uid; containers run as a numeric uid:gid (nobody),
which needs none. Docs, locales and package caches are dropped: Docker's vfs storage driver
copies the whole image for every container, so every megabyte costs start-up time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gptoss_chat.tools.sandbox.config import LOCAL_IMAGE, WORK_DIR
from gptoss_chat.tools.sandbox.engine import split_image_name

if TYPE_CHECKING:
    from docker import DockerClient

DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PRUNED_PATHS = (
    "var/cache/apt/archives",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/lib/x86_64-linux-gnu/gconv",
    # Package management cannot run in the read-only sandbox anyway.
    "usr/bin/perl",
    "usr/bin/perl5.36.0",
    "usr/lib/x86_64-linux-gnu/perl-base",
    "usr/share/perl5",
    "var/lib/dpkg",
    "var/cache/debconf",
    "usr/lib/apt",
    # Python parts no notebook code needs.
    "usr/lib/python3.11/idlelib",
    "usr/lib/python3.11/tkinter",
    "usr/lib/python3.11/turtledemo",
    "usr/lib/python3.11/ensurepip",
    "usr/lib/python3.11/lib2to3",
    "usr/lib/python3.11/pydoc_data",
)
IMAGE_CHANGES = (
    "ENV LANG=C.UTF-8",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    f"WORKDIR {WORK_DIR}",
    'CMD ["python3"]',
)


class BuildError(Exception):
    """The image could not be built; the text says why and what to do."""


@dataclass(frozen=True)
class BuildPlan:
    tag: str = LOCAL_IMAGE
    suite: str = DEFAULT_SUITE
    mirror: str = DEFAULT_MIRROR


def check_prerequisites() -> None:
    if shutil.which("debootstrap") is None:
        raise BuildError(
            "debootstrap is not installed (Debian/Ubuntu: `sudo apt-get install debootstrap`)."
        )
    if os.geteuid() != 0:
        raise BuildError("building the image runs debootstrap, which needs root: use sudo.")


def _prune(rootfs: Path) -> None:
    for relative in PRUNED_PATHS:
        target = rootfs / relative
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    (rootfs / WORK_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)


def build_image(
    client: DockerClient, plan: BuildPlan, log: Callable[[str], None] = lambda line: None
) -> str:
    """Build and tag the image; returns its id. `log` receives progress lines."""
    check_prerequisites()
    with tempfile.TemporaryDirectory(prefix="gptoss-sandbox-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        command = [
            "debootstrap",
            "--variant=minbase",
            "--include=python3",
            plan.suite,
            str(rootfs),
            plan.mirror,
        ]
        log("$ " + " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
            raise BuildError(f"debootstrap failed (exit {result.returncode}):\n{tail}")
        _prune(rootfs)
        archive = Path(scratch) / "rootfs.tar"
        log(f"packing {rootfs} into {archive}")
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        log(f"importing as {plan.tag}")
        repository, tag = split_image_name(plan.tag)
        client.api.import_image_from_file(
            str(archive), repository=repository, tag=tag, changes=list(IMAGE_CHANGES)
        )
    image = client.images.get(plan.tag)
    return image.id or ""
