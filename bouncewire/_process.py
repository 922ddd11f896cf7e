"""A child process that is stopped on leaving, for the demo, the bench and the tests."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


@contextmanager
def running_process(
    argv: Sequence[str], *, stop_timeout_s: float = 20.0, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Starts `argv` (`popen`: Popen's keywords); on leaving, SIGTERM so it drains as in
    production, SIGKILL if it has not stopped within `stop_timeout_s`."""
    # argv comes from our own callers (the demo, bench and tests), never from input.
    process: subprocess.Popen[bytes] = subprocess.Popen(list(argv), **popen)  # noqa: S603
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
