"""`bouncewire demo` (what `make demo` runs): the whole pipeline, a summary, nothing left."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.kafka_cluster import KAFKA_SH, free_port_pair

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("flags", [(), ("--via-gateway",)], ids=["direct", "via-gateway"])
def test_demo_runs_the_pipeline_prints_a_summary_and_leaves_nothing_running(
    flags: tuple[str, ...],
) -> None:
    port = free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEWIRE_")}
    env["KAFKA_PORT"] = str(port)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bouncewire", "demo", "--seconds", "6", "--rate", "150",
             *flags],
            env=env, capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        summary = done.stdout[done.stdout.index("bouncewire demo summary"):]
        sent = re.search(r"events in:\s+(\d+) send results, (\d+) unsubscribes", summary)
        assert sent is not None and int(sent.group(1)) > 500
        out = re.search(r"unsubscribe=(\d+)", summary)
        assert out is not None and int(out.group(1)) == int(sent.group(2))
        assert "bounce rate:" in summary and "dead letters:    none" in summary
        assert "token=demo-token" not in done.stdout + done.stderr
        if flags:  # the mail went CleverTap → gateway → relay, and the relay's answers came back
            replies = re.search(r"client replies \{250: (\d+)", done.stdout)
            assert replies is not None and int(replies.group(1)) > 300
        status = subprocess.run(["bash", str(KAFKA_SH), "status"], env=env,
                                capture_output=True, check=False)
        assert status.returncode != 0, "the demo left its broker running"
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "reset"], env=env, capture_output=True,
                       check=False, timeout=60)
