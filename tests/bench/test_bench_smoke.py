"""`python -m bench.run --smoke` runs every scenario end to end at toy size on the test broker.

No timing assertions: only that each scenario ran to completion and the outputs are written.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench.common import cpus_to_pin

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smoke(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    prefix = f"smoke-{uuid.uuid4().hex[:8]}"  # a long-lived test broker keeps older topics
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--bootstrap",
            kafka_bootstrap,
            "--prefix",
            prefix,
            "--out",
            str(out),
        ],
        cwd=REPO,
        timeout=240,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_every_consumer_run_delivered_every_callback(smoke: Path) -> None:
    consumer = results(smoke)["consumer"]
    # With taskset and 2 CPUs, both deployments: each process on its own CPU, then free.
    pinned = list(cpus_to_pin() or ())
    assert consumer["pinned_cpus"] == pinned
    suffixes = ("", "_free") if pinned else ("",)
    runs = [f"{key}{sfx}" for sfx in suffixes for key in ("one_process", "two_processes")]
    bare = ["bare_no_decode"]
    bare += [f"{key}{sfx}" for sfx in suffixes for key in ("bare_decode", "bare_decode_x2")]
    assert set(runs + bare) <= consumer.keys()
    mix = results(smoke)["mix"]
    expected = sum(n for kind, n in mix.items() if kind != "none")
    for key in runs:
        assert consumer[key]["complete"], key
        assert consumer[key]["callbacks"] == expected, key
    assert consumer["one_process"]["cpus"] == pinned[-1:]
    assert consumer["two_processes"]["cpus"] == pinned
    assert consumer["bare_decode_x2"]["cpus"] == pinned
    assert all(consumer[key]["cpus"] == [] for key in runs if key.endswith("_free"))
    for key in bare:
        assert consumer[key]["records"] == results(smoke)["config"]["records"], key


def test_producers_wrote_every_record(smoke: Path) -> None:
    producer = results(smoke)["producer"]
    records = results(smoke)["config"]["records"]
    assert producer["bare"]["records"] == records
    assert producer["cli"]["records"] == records


def test_mta_log_read_the_whole_log_both_ways(smoke: Path) -> None:
    mta_log = results(smoke)["mta_log"]
    assert mta_log["dry_run"]["records"] == mta_log["published"]["records"] > 0
    assert mta_log["dry_run"]["rate"] > 0 and mta_log["published"]["rate"] > 0


def test_mail_serve_accepted_every_bounce(smoke: Path) -> None:
    serve = results(smoke)["mail_serve"]["serve"]
    assert serve["records"] == 80 and serve["rate"] > 0
    assert "bouncewire mail serve" in (smoke / "results.md").read_text()


def test_gateway_relayed_every_message(smoke: Path) -> None:
    gateway = results(smoke)["gateway"]
    for key in ("direct", "gateway", "direct_parallel", "gateway_parallel"):
        assert gateway[key]["messages"] > 0 and gateway[key]["rate"] > 0, key


def test_latency_and_outage_were_measured(smoke: Path) -> None:
    data = results(smoke)
    (row,) = data["latency"]
    assert row["received"] >= row["sent"] > 0
    assert row["p50"] <= row["p99"] <= row["max"]
    outage = data["outage"]
    assert outage["refused_posts"] > 0 and outage["complete"]
    assert all(kb > 0 for _, kb in outage["samples"])


def test_report_lists_every_target_and_ratio(smoke: Path) -> None:
    data = results(smoke)
    suffixes = ("", "_free") if data["consumer"]["pinned_cpus"] else ("",)
    # 6 per consumer deployment; best events/s, producer x2, mail parse, mta-log, latency,
    # gateway, RSS; the 100 ms sink and the throttling sink x2 (the smoke runs no peer and no
    # 300 ms sink).
    assert len(data["targets"]) == 6 * len(suffixes) + 8 + 3
    assert set(data["ratios"]) >= {
        f"{name}{suffix}"
        for name in ("consumer_vs_bare_decode", "two_vs_one_process",
                     "two_vs_one_process_first_to_last", "consumer_vs_bare_decode_cpu",
                     "two_vs_one_process_cpu", "bare_decode_two_vs_one_process")
        for suffix in suffixes
    } | {"producer_cli_vs_bare"}  # fmt: skip
    markdown = (smoke / "results.md").read_text()
    for heading in (
        "## Targets",
        "## Throughput",
        "## Ratios",
        "## Event-to-callback latency",
        "## Memory through a callback outage",
        "## SMTP gateway",
        "## Callbacks across a round trip",
    ):
        assert heading in markdown


def test_the_round_trip_rows_delivered_every_callback(smoke: Path) -> None:
    delivery = results(smoke)["delivery"]
    assert set(delivery["delays"]) == {"0", "100"}
    runs = [*delivery["delays"].values(), delivery["throttle"]]
    assert all(run["complete"] and run["callbacks"] == delivery["callbacks"] for run in runs)
    assert delivery["throttle"]["peak_in_flight"] <= delivery["throttle"]["k"]
    assert "delay_100ms_vs_0ms" in results(smoke)["ratios"]


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="matplotlib is the bench extra"
)
def test_plot_is_a_png(smoke: Path) -> None:
    assert (smoke / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
