"""`--delivery auto`: the CPUs a process may use (affinity mask, cgroup quota) and the choice."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bouncewire._cpus import cgroup_cpu_quota, delivery_for, usable_cpus


def cgroup_v2(tmp_path: Path, cpu_max: str) -> Path:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return tmp_path


def cgroup_v1(tmp_path: Path, quota: str, period: str) -> Path:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [("max 100000", None), ("100000 100000", 1.0), ("150000 100000", 1.5), ("0 100000", None),
     ("garbage", None)],
)  # fmt: skip
def test_cgroup_v2_quota_in_cpus(tmp_path: Path, cpu_max: str, cpus: float | None) -> None:
    assert cgroup_cpu_quota(cgroup_v2(tmp_path, cpu_max)) == cpus


@pytest.mark.parametrize(
    ("quota", "period", "cpus"), [("-1", "100000", None), ("50000", "100000", 0.5)]
)
def test_cgroup_v1_quota_in_cpus(tmp_path: Path, quota: str, period: str, cpus: float) -> None:
    assert cgroup_cpu_quota(cgroup_v1(tmp_path, quota, period)) == cpus


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path) is None
    assert usable_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_a_quota_below_the_affinity_mask_caps_the_usable_cpus(tmp_path: Path) -> None:
    assert usable_cpus(cgroup_v2(tmp_path, "100000 100000")) == 1.0


@pytest.mark.parametrize(
    ("choice", "cpus", "mode"),
    [("auto", 1.0, "thread"), ("auto", 1.49, "thread"), ("auto", 1.5, "process"),
     ("auto", 16.0, "process"), ("process", 1.0, "process"), ("thread", 16.0, "thread")],
)  # fmt: skip
def test_delivery_for(choice: str, cpus: float, mode: str) -> None:
    assert delivery_for(choice, cpus) == mode


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs util-linux taskset")
def test_a_process_held_to_one_cpu_by_taskset_sees_one_cpu_and_picks_threads() -> None:
    code = (
        "from bouncewire._cpus import delivery_for, usable_cpus; "
        "print(usable_cpus(), delivery_for('auto', usable_cpus()))"
    )
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert float(out[0]) <= 1.0
    assert out[1] == "thread"
