"""The bench compares medians of interleaved trials; `median_run` picks them."""

from __future__ import annotations

import pytest

from bench.report import median_run


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


def test_the_median_is_taken_by_steady_rate_where_a_trial_has_one() -> None:
    trials = [
        {"rate": 1.0, "steady_rate": 30.0},
        {"rate": 3.0, "steady_rate": 10.0},
        {"rate": 2.0, "steady_rate": 20.0},
    ]
    assert median_run(trials)["rate"] == 2.0
    toy = [{"rate": r, "steady_rate": float("nan")} for r in (3.0, 1.0, 2.0)]
    assert median_run(toy)["rate"] == 2.0  # no steady window at toy sizes: whole runs
