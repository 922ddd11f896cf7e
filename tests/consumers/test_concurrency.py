"""The adaptive concurrency limit (pure): tables for each rule, hypothesis for the invariants,
and small simulations of the sinks the bench uses (slow but concurrent; at most K at once)."""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bouncewire.consumers.concurrency import AdaptiveConcurrency, Answer, Ticket, answer_for


@pytest.mark.parametrize(
    ("status", "timed_out", "answer"),
    [
        (200, False, Answer.GOOD),
        (204, False, Answer.GOOD),
        (429, False, Answer.THROTTLED),
        (503, False, Answer.OVERLOADED),
        (None, True, Answer.OVERLOADED),
        (500, False, Answer.NEUTRAL),
        (502, False, Answer.NEUTRAL),
        (400, False, Answer.NEUTRAL),
        (302, False, Answer.NEUTRAL),
        (None, False, Answer.NEUTRAL),
    ],
)
def test_what_an_answer_says_about_load(
    status: int | None, timed_out: bool, answer: Answer
) -> None:
    assert answer_for(status, timed_out=timed_out) is answer


def fill(limiter: AdaptiveConcurrency, now: float) -> list[Ticket]:
    tickets = []
    while limiter.may_send(now):
        tickets.append(limiter.sent(now))
    return tickets


def answer_all(
    limiter: AdaptiveConcurrency, tickets: list[Ticket], now: float, answer: Answer = Answer.GOOD
) -> None:
    for ticket in tickets:
        limiter.answered(ticket, now, answer)


def test_slow_start_doubles_the_limit_every_round_trip() -> None:
    limiter = AdaptiveConcurrency(64, initial=1)
    limits = []
    for round_trip in range(6):
        now = round_trip * 0.1
        answer_all(limiter, fill(limiter, now), now + 0.1)
        limits.append(limiter.limit)
    assert limits == [2, 4, 8, 16, 32, 64]


def test_the_cap_holds_however_good_the_answers() -> None:
    limiter = AdaptiveConcurrency(5)
    for round_trip in range(20):
        tickets = fill(limiter, round_trip * 0.1)
        assert len(tickets) <= 5
        answer_all(limiter, tickets, round_trip * 0.1 + 0.1)
    assert limiter.limit == 5


# (answer, limit before -> after) with 10 in flight, out of slow start; a single cut each.
CUTS = [
    (Answer.THROTTLED, 9),  # the ceiling: refused at 10 in flight -> 9 fit
    (Answer.OVERLOADED, 7),
    (Answer.NEUTRAL, 10),
]


@pytest.mark.parametrize(("answer", "after"), CUTS)
def test_overload_cuts_multiplicatively_neutral_answers_change_nothing(
    answer: Answer, after: int
) -> None:
    limiter = AdaptiveConcurrency(32, initial=10)
    tickets = fill(limiter, 0.0)
    assert len(tickets) == 10
    limiter.answered(tickets[-1], 0.1, answer)
    assert limiter.limit == after


def test_a_burst_of_503s_is_one_congestion_event() -> None:
    limiter = AdaptiveConcurrency(32, initial=20)
    answer_all(limiter, fill(limiter, 0.0), 0.1, Answer.OVERLOADED)
    assert limiter.limit == 14  # cut once (20 x 0.7), not twenty times
    # ... and a request refused after the cut is a new event
    limiter.answered(limiter.sent(0.2), 0.3, Answer.OVERLOADED)
    assert limiter.limit == 9


def test_429_sets_a_ceiling_below_the_refused_concurrency_and_probes_it_later() -> None:
    limiter = AdaptiveConcurrency(32, initial=12, probe_interval_s=5.0)
    tickets = fill(limiter, 0.0)
    # The destination takes 8: the 9th to 12th requests are refused.
    answer_all(limiter, tickets[8:], 0.1, Answer.THROTTLED)
    assert limiter.ceiling == 8
    now = 0.2
    for _ in range(30):  # many good round trips (3 s): growth stops at the ceiling
        answer_all(limiter, fill(limiter, now), now + 0.1)
        now += 0.1
    answer_all(limiter, tickets[:8], now, Answer.GOOD)
    assert limiter.limit == 8
    for _ in range(60):  # past the probe interval: one more is tried
        answer_all(limiter, fill(limiter, now), now + 0.1)
        now += 0.1
    assert limiter.ceiling is not None and limiter.ceiling >= 9


def test_refused_again_at_the_ceiling_it_comes_down_despite_an_earlier_acceptance() -> None:
    """A 2xx once sent at 9 (answers crossed at the destination) held the ceiling at 9, and
    the destination (8 at once) refused the 9th again after every Retry-After pause."""
    limiter = AdaptiveConcurrency(32, initial=9, probe_interval_s=5.0)
    tickets = fill(limiter, 0.0)
    answer_all(limiter, tickets[8:], 0.1)  # the 9th was lucky once
    refused = fill(limiter, 0.1)[0]
    limiter.answered(refused, 0.11, Answer.THROTTLED, retry_after_s=1.0)
    assert limiter.ceiling == 9  # the first refusal: the acceptance still counts
    answer_all(limiter, tickets[:8], 0.3)
    again = fill(limiter, 1.2)  # after the pause, so sent after the ceiling was set
    limiter.answered(again[-1], 1.21, Answer.THROTTLED, retry_after_s=1.0)
    assert limiter.ceiling == 8
    assert limiter.limit == 8


def test_a_burst_of_429s_sent_together_lowers_the_ceiling_once() -> None:
    limiter = AdaptiveConcurrency(32, initial=12)
    tickets = fill(limiter, 0.0)
    answer_all(limiter, tickets[8:], 0.1, Answer.THROTTLED)  # 4 refusals, one event
    assert limiter.ceiling == 8


def test_rising_latency_cuts_gently_and_ends_slow_start() -> None:
    limiter = AdaptiveConcurrency(64, initial=1)
    now = 0.0
    for _ in range(4):  # 100 ms answers: 1 -> 16
        answer_all(limiter, fill(limiter, now), now + 0.1)
        now += 0.1
    assert limiter.limit == 16 and limiter.slow_start
    for _ in range(2):  # round trips of 400 ms: latency rose
        answer_all(limiter, fill(limiter, now), now + 0.4)
        now += 0.4
    # The first slow round trip still grew it (16 -> 32: its window closed on fast answers);
    # the second one's window is slow: cut once to 28 (x 0.9), then +1 per round trip.
    assert 28 <= limiter.limit < 32
    assert not limiter.slow_start


def test_a_lone_slow_answer_is_noise() -> None:
    limiter = AdaptiveConcurrency(64, initial=8)
    now = 0.0
    for i in range(6):  # one answer in eight takes 250 ms instead of 50
        tickets = fill(limiter, now)
        for j, ticket in enumerate(tickets):
            limiter.answered(ticket, now + (0.25 if j == 0 and i > 1 else 0.05), Answer.GOOD)
        now += 0.25
    assert limiter.slow_start and limiter.limit == 64


def test_latency_within_the_tolerance_keeps_growing() -> None:
    limiter = AdaptiveConcurrency(64, initial=1)
    now = 0.0
    for i in range(5):
        answer_all(limiter, fill(limiter, now), now + 0.1 + 0.01 * (i % 2))
        now += 0.2
    assert limiter.limit == 32 and limiter.slow_start


def test_after_a_cut_growth_is_one_per_round_trip() -> None:
    limiter = AdaptiveConcurrency(64, initial=10)
    first, *others = fill(limiter, 0.0)
    limiter.answered(first, 0.1, Answer.OVERLOADED)  # 10 -> 7
    answer_all(limiter, others, 0.1, Answer.NEUTRAL)
    now = 0.2
    limits = []
    for _ in range(3):
        answer_all(limiter, fill(limiter, now), now + 0.1)
        now += 0.2
        limits.append(limiter.limit)
    assert limits == [8, 9, 10]


def test_a_trickle_does_not_grow_the_limit() -> None:
    limiter = AdaptiveConcurrency(64, initial=8)
    for i in range(100):  # one request at a time, never near the limit of 8
        limiter.answered(limiter.sent(i * 1.0), i * 1.0 + 0.1, Answer.GOOD)
    assert limiter.limit == 8


def test_retry_after_pauses_every_request_of_the_destination() -> None:
    limiter = AdaptiveConcurrency(8, initial=4)
    first, *others = fill(limiter, 0.0)
    limiter.answered(first, 0.1, Answer.OVERLOADED, retry_after_s=2.0)  # a 503 + Retry-After
    answer_all(limiter, others, 0.1)
    assert not limiter.may_send(0.2) and limiter.paused_for(0.2) == pytest.approx(1.9)
    limiter.pause(0.5, 0.1)  # a shorter pause does not shorten it
    assert not limiter.may_send(1.0)
    assert limiter.may_send(2.1)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="cap"):
        AdaptiveConcurrency(0)
    with pytest.raises(ValueError, match="ratio"):
        AdaptiveConcurrency(4, overload_ratio=1.0)


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["send", "answer"]),
        st.sampled_from(list(Answer)),
        st.floats(0.0, 2.0),  # time step
        st.one_of(st.none(), st.floats(0.0, 5.0)),  # Retry-After
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(cap=st.integers(1, 64), initial=st.integers(1, 80), events=EVENTS)
def test_invariants_under_any_sequence(
    cap: int, initial: int, events: list[tuple[str, Answer, float, float | None]]
) -> None:
    """1 <= limit <= cap; in flight never exceeds the limit when it was sent; nothing goes
    out during a pause; the in-flight count is exactly what was sent and not answered."""
    limiter = AdaptiveConcurrency(cap, initial=initial)
    now, open_tickets = 0.0, []
    for action, answer, step, retry_after in events:
        now += step
        if action == "send":
            if limiter.may_send(now):
                assert limiter.paused_for(now) == 0.0
                ticket = limiter.sent(now)
                assert ticket.in_flight <= limiter.limit
                open_tickets.append(ticket)
        elif open_tickets:
            limiter.answered(open_tickets.pop(0), now, answer, retry_after)
            if retry_after is not None:  # paused at least that long (an earlier pause may last)
                assert limiter.paused_for(now) >= retry_after - 1e-9
        assert 1 <= limiter.limit <= cap
        assert limiter.in_flight == len(open_tickets)
        if limiter.ceiling is not None:
            assert limiter.limit <= limiter.ceiling


# --- simulated sinks -------------------------------------------------------------------------


def simulate(limiter: AdaptiveConcurrency, requests: int, rtt: float, accept_at_once: int
             ) -> tuple[int, float]:
    """Send `requests` through a sink answering after `rtt` that refuses (429, Retry-After 1 s)
    whatever arrives while `accept_at_once` are being served; refused ones are sent again.
    Returns (429s, mean in flight over the run)."""
    now, done, refused, busy = 0.0, 0, 0, 0
    answers: list[tuple[float, int, Ticket, bool]] = []  # (due, seq, ticket, accepted)
    seq, area, last = 0, 0.0, 0.0
    while done < requests:
        while limiter.may_send(now) and done + len(answers) < requests:
            accepted = busy < accept_at_once
            busy += accepted
            heapq.heappush(answers, (now + (rtt if accepted else 0.001), seq, limiter.sent(now),
                                     accepted))
            seq += 1
        if answers:
            due = answers[0][0]
            if limiter.paused_for(now) > 0:
                due = min(due, now + limiter.paused_for(now))
        else:
            due = now + limiter.paused_for(now)
        area += busy * (due - last)
        now = last = due
        while answers and answers[0][0] <= now:
            _, _, ticket, accepted = heapq.heappop(answers)
            if accepted:
                busy -= 1
                done += 1
                limiter.answered(ticket, now, Answer.GOOD)
            else:
                refused += 1
                limiter.answered(ticket, now, Answer.THROTTLED, retry_after_s=1.0)
    return refused, area / now


def test_a_slow_concurrent_sink_gets_the_whole_cap() -> None:
    limiter = AdaptiveConcurrency(16)
    refused, mean_in_flight = simulate(limiter, 2000, 0.3, accept_at_once=1000)
    assert refused == 0
    assert limiter.limit == 16
    assert mean_in_flight > 15


@pytest.mark.parametrize("k", [2, 5, 8])
def test_a_sink_taking_k_at_once_converges_near_k_with_few_429s(k: int) -> None:
    limiter = AdaptiveConcurrency(32)
    refused, mean_in_flight = simulate(limiter, 3000, 0.1, accept_at_once=k)
    assert refused / 3000 < 0.02
    assert limiter.limit in (k - 1, k, k + 1)
    assert mean_in_flight > 0.7 * k
