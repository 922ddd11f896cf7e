"""The throughput sink counts a POST's events without parsing it: the count must equal the
number of events in any payload bouncewire builds, whatever the addresses and meta hold."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from hypothesis import given
from hypothesis import strategies as st

from bench.fast_receiver import Tally, gaps, mean_level, pause_spans, steady_records_rate
from bouncewire.consumers.payloads import CALLBACK_TYPES, CallbackEvent, EventRef, build_payload

# Addresses and meta that try to look like the keys being counted.
_TRICKY = ['{"e":', '"email":', 'a"b@x.org', "\\", "lat1@x.org", "é@ü.de", "lat"]
texts = st.one_of(st.sampled_from(_TRICKY), st.text(max_size=20))


def _event(i: int, kind: str, email: str, meta: str | None) -> CallbackEvent:
    return CallbackEvent(f"id-{i}", kind, email, 1_700_000_000, meta, EventRef("t", 0, i), 0)  # type: ignore[arg-type]


@given(
    st.lists(st.tuples(st.sampled_from(CALLBACK_TYPES), texts, st.none() | texts), min_size=1),
    st.sampled_from(["legacy", "v2"]),
)
def test_counts_every_event_of_a_payload(
    items: list[tuple[str, str, str | None]], fmt: str
) -> None:
    events = [_event(i, kind, email, meta) for i, (kind, email, meta) in enumerate(items)]
    tally = Tally()
    tally.record(build_payload(events, fmt))  # type: ignore[arg-type]
    assert (tally.events, tally.posts) == (len(events), 1)


def test_latency_addresses_are_timed_from_their_stamp() -> None:
    stamped = _event(0, "hardbounce", "lat1000@x.org", None)
    plain = _event(1, "hardbounce", "someone@x.org", None)
    tally = Tally()
    tally.record(build_payload([stamped, plain], "legacy"))
    assert tally.events == 2
    assert len(tally.latencies_ns) == 1
    assert tally.latencies_ns[0] == tally.last_ns - 1000


def test_a_delayed_sink_answers_concurrently_and_refuses_above_k() -> None:
    """The sink as the bench runs it (its own process): 200 ms answers that overlap, 429 with
    Retry-After to what arrives while k=2 are in progress, and the figures in /stats."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.fast_receiver"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        base = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        with httpx.Client(timeout=5) as control:
            control.post(f"{base}/delay/200")
            control.post(f"{base}/max-concurrent/2")
        body = build_payload([_event(0, "hardbounce", "a@x.org", None)], "legacy")

        clients = [httpx.Client(timeout=5) for _ in range(4)]  # ~0.1 s each: built first
        start = threading.Barrier(4)

        def post(http: httpx.Client) -> httpx.Response:
            start.wait(10)
            return http.post(f"{base}/bounce", content=body)

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(post, clients))
        took = time.monotonic() - started
        for client in clients:
            client.close()
        stats = httpx.get(f"{base}/stats", timeout=5).json()
    finally:
        proc.terminate()
        proc.wait(10)
    assert sorted(a.status_code for a in answers) == [200, 200, 429, 429]
    assert all(a.headers["Retry-After"] == "1" for a in answers if a.status_code == 429)
    assert 0.2 <= took < 1.0
    assert (stats["events"], stats["throttled_posts"], stats["peak_in_progress"]) == (2, 2, 2)


def test_mean_level_weights_each_level_by_its_time() -> None:
    changes = [(0, 1), (10, 3), (20, 0)]  # 1 from 0 to 10, 3 from 10 to 20, then 0
    assert mean_level(changes, 0, 20) == 2.0
    assert mean_level(changes, 5, 15) == 2.0  # 1 for 5, 3 for 5
    assert mean_level(changes, 15, 30) == 1.0  # 3 for 5, 0 for 10


def test_pauses_are_merged_and_clipped_to_the_window() -> None:
    # Pauses of 10 from 0, 5 (overlapping) and 30, within the window [2, 35].
    assert pause_spans([5, 0, 30], 10, 2, 35) == [(2, 15), (30, 35)]
    assert gaps([(2, 15), (30, 35)], 2, 35) == [(15, 30)]
    assert gaps([], 2, 35) == [(2, 35)]


def test_the_unpaused_mean_leaves_out_what_ran_on_during_a_pause() -> None:
    """POSTs still being answered during a pause count neither their time nor their level:
    the mean while the client may send can never exceed the peak."""
    tally = Tally()
    tally.arrivals = [(t, 1) for t in range(100)]
    tally.events = 100
    tally.load_changes = [(0, 8), (50, 2), (60, 8)]  # 8 in flight; a 429 at 50
    tally.throttled_at = [50]  # the pause (Retry-After: 1 s) outlasts the window [10, 90]
    assert tally.steady_in_progress_unpaused() == 8.0


def test_steady_records_rate_scales_callbacks_to_records() -> None:
    stats = {"steady": {"rate": 900.0}, "events": 900}
    assert steady_records_rate(stats, 1000) == 1000.0
    assert math.isnan(steady_records_rate({"steady": None, "events": 0}, 1000))
