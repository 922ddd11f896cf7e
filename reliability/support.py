"""Small stdlib-only helpers shared by the test, bench and reliability harnesses."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout` seconds passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in kB, None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """A process and its descendants: `bouncewire consume` POSTs from a child process."""
    pids = [pid]
    for parent in pids:  # grows while it is walked
        try:
            pids.extend(
                int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            )
        except OSError:  # gone meanwhile
            continue
    return pids


def tree_rss_kb(pid: int) -> int | None:
    """VmRSS of a process and its descendants, None once the process is gone."""
    sizes = [rss_kb(p) for p in process_tree(pid)]
    return None if sizes[0] is None else sum(kb or 0 for kb in sizes)
