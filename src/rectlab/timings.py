"""Phase timings of one command, for ``benchmarks/overhead.py``: set ``RECTLAB_TIMINGS=FILE`` and the command
writes ``{phase: seconds}`` there when it ends (nothing is recorded or written otherwise)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["phase", "process_seconds", "write"]

_PHASES: dict[str, float] = {}


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the time spent in the ``with`` block to phase ``name``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _PHASES[name] = _PHASES.get(name, 0.0) + time.perf_counter() - t0


def process_seconds() -> float:
    """Seconds since this process started (Linux; NaN elsewhere): the interpreter's and the imports' share."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return float("nan")


def write(startup: float) -> None:
    """Write the phases (and ``startup``, the process's age when the command began) to ``$RECTLAB_TIMINGS``."""
    path = os.environ.get("RECTLAB_TIMINGS")
    if path:
        with open(path, "w") as f:
            json.dump({"startup": startup, **_PHASES, "total": process_seconds()}, f, indent=1)
