"""The bench compares medians of interleaved trials (`median_run` picks them), per deployment."""

from __future__ import annotations

import math

import pytest

from bench.report import _consumer_ratios, deployments, median_run, ratio


@pytest.mark.parametrize(
    ("rates", "median"),
    [([5.0], 5.0), ([3.0, 1.0, 2.0], 2.0), ([4.0, 1.0, 3.0, 2.0], 2.0), ([2.0, 2.0, 9.0], 2.0)],
)
def test_keeps_the_median_trial_and_lists_every_trial(rates: list[float], median: float) -> None:
    trials = [{"rate": r, "cpu_seconds": r / 10, "other": i} for i, r in enumerate(rates)]
    run = median_run(trials)
    assert run["rate"] == median
    assert run["cpu_seconds"] == median / 10  # the median trial's own fields, not a mix
    assert [t["rate"] for t in run["trials"]] == rates


def test_each_trial_keeps_what_else_used_the_cpus() -> None:
    trial = {"rate": 1.0, "broker_cpu_seconds": 0.8, "sink_cpu_seconds": 0.4, "posts": 9}
    kept = median_run([trial])["trials"][0]
    assert kept == {"rate": 1.0, "broker_cpu_seconds": 0.8, "sink_cpu_seconds": 0.4}


def test_the_median_is_taken_by_steady_rate_where_a_trial_has_one() -> None:
    trials = [
        {"rate": 1.0, "steady_rate": 30.0},
        {"rate": 3.0, "steady_rate": 10.0},
        {"rate": 2.0, "steady_rate": 20.0},
    ]
    assert median_run(trials)["rate"] == 2.0
    toy = [{"rate": r, "steady_rate": float("nan")} for r in (3.0, 1.0, 2.0)]
    assert median_run(toy)["rate"] == 2.0  # no steady window at toy sizes: whole runs


def run(rate: float, steady: float, cpu_s: float) -> dict[str, float]:
    return {"rate": rate, "steady_rate": steady, "window_cpu_seconds": cpu_s, "records": 100}


def test_each_deployment_that_ran_gets_its_own_consumer_ratios() -> None:
    consumer = {
        "pinned_cpus": [0, 1],
        "bare_decode": run(100.0, 100.0, 0.001),
        "one_process": run(80.0, 90.0, 0.002),
        "two_processes": run(150.0, 171.0, 0.0025),
        "bare_decode_free": run(100.0, 100.0, 0.001),
        "one_process_free": run(90.0, 95.0, 0.002),
        "two_processes_free": run(140.0, 152.0, 0.002),
    }
    results = {"consumer": consumer, "config": {"records": 100}}
    assert deployments(results) == [("", "one CPU per process"), ("_free", "no pinning")]
    pinned, free = _consumer_ratios(results, ""), _consumer_ratios(results, "_free")
    assert pinned["consumer_vs_bare_decode"] == pytest.approx(0.9)
    assert pinned["two_vs_one_process"] == pytest.approx(1.9)
    assert pinned["two_vs_one_process_first_to_last"] == pytest.approx(1.875)
    assert pinned["consumer_vs_bare_decode_cpu"] == pytest.approx(0.5)
    assert pinned["two_vs_one_process_cpu"] == pytest.approx(1.6)  # 2 x 20 µs / 25 µs
    assert free["two_vs_one_process_free"] == pytest.approx(1.6)


def test_without_pinned_cpus_the_one_deployment_is_unpinned() -> None:
    consumer = {"pinned_cpus": [], "one_process": run(80.0, 90.0, 0.002)}
    assert deployments({"consumer": consumer}) == [("", "no pinning")]


def test_a_toy_run_that_used_no_measurable_cpu_gives_nan_not_a_crash() -> None:
    consumer = {
        "pinned_cpus": [],
        "bare_decode": run(100.0, 100.0, 0.001),
        "one_process": run(80.0, 90.0, 0.0),
        "two_processes": run(150.0, 171.0, 0.0),
    }
    ratios = _consumer_ratios({"consumer": consumer, "config": {"records": 100}}, "")
    assert math.isnan(ratios["consumer_vs_bare_decode_cpu"])
    assert math.isnan(ratios["two_vs_one_process_cpu"])
    assert ratios["two_vs_one_process"] == pytest.approx(1.9)
    assert math.isnan(ratio(1.0, 0.0))
