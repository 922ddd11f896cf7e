"""The CPUs this process may use, and the callback delivery that suits them (`--delivery auto`).

The consumer loop is one CPU-bound thread. Its POSTs either share its GIL (threads) or run in a
child process. Measured on the bench (2 vCPU, 1M send results, one process):

* free to run on both CPUs, the child is faster: ~90k records/s against ~77k with threads,
  because the loop no longer hands the GIL back and forth with the senders (each hand-off can
  move the loop thread to the other CPU and its caches go cold);
* held to one CPU (``taskset``, a cpuset, a CPU quota of one core), the child would share that
  CPU with the loop, and threads lose nothing to moving between CPUs: ~85k records/s with
  threads at 11.7 µs of CPU per record, against 12.2 µs for the loop and its child.

So ``auto`` picks the child when at least ``CHILD_MIN_CPUS`` are usable, threads otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal

Delivery = Literal["process", "thread"]
CHILD_MIN_CPUS: Final = 1.5  # the loop and its child use ~1.1-1.15 CPUs at full speed
CGROUP_ROOT: Final = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> float:
    """CPUs in this process's affinity mask, capped by its cgroup's CPU quota (v2 or v1)."""
    cpus = float(len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_quota(cgroup_root)
    return min(cpus, quota) if quota is not None else cpus


def cgroup_cpu_quota(root: Path) -> float | None:
    """The CFS quota in CPUs (``cpu.max`` in v2, ``cfs_quota_us`` / ``cfs_period_us`` in v1);
    None when there is none or it cannot be read."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # v2: "max 100000" = none
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()  # v1: -1 = none
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        cpus = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):  # "max"
        return None
    return cpus if cpus > 0 else None


def delivery_for(choice: str, cpus: float) -> Delivery:
    """The delivery `--delivery CHOICE` means with ``cpus`` usable."""
    if choice == "process" or (choice == "auto" and cpus >= CHILD_MIN_CPUS):
        return "process"
    return "thread"
