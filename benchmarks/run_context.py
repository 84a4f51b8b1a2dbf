"""What every benchmark line records about where and when it ran."""

from __future__ import annotations

import datetime
import os
import platform


def run_context() -> dict[str, object]:
    """Machine, Python, UTC time and the 1-minute load average (the machine may be shared)."""
    return {
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
