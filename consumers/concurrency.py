"""Adaptive request concurrency for one callback destination (pure: no I/O, no clock of its own).

The AIMD idea behind TCP congestion control and Vector's adaptive request concurrency (ARC):
the limit of POSTs in flight starts at ``initial``, grows while answers are 2xx and latency
holds, and is cut when the destination says it is overloaded. Within ``cap`` (the operator's
``--max-in-flight``), always at least 1.

* **Slow start.** From ``initial`` (4) until the first cut, every good answer adds 1 (the
  limit doubles per round trip), so a sink that answers in 300 ms reaches 16 in flight in
  ~0.6 s, not 5 s.
* **Additive increase.** After a cut, every good answer adds 1/limit: +1 per round trip.
  Only while the limit binds (in flight reached the limit since the request left): a trickle
  of traffic says nothing about what the destination can take.
* **Multiplicative decrease.** ``OVERLOADED`` (503, a timeout) cuts the limit to
  ``overload_ratio`` of itself; a round trip's worth of good answers whose mean
  latency rose past the baseline (EWMA of good round trips, plus ``rtt_deviation_scale`` mean
  deviations, at least ``latency_tolerance`` of the baseline and ``min_latency_rise_s``) cuts
  it to ``decrease_ratio``. One cut per round trip: answers to requests sent before the last cut
  belong to the same congestion event (TCP's recovery rule), so a burst of 503s cuts once.
* **Ceiling.** A 429 (``THROTTLED``) refused the concurrency it was sent at (CleverTap: "Too
  many concurrent requests"), so the limit drops to what the destination holds and stays
  there: ``ceiling`` = the least number of POSTs still in flight when a 429 came back (429s
  come back at once, accepted POSTs after their round trip), but not below the most a 2xx was
  recently sent at, unless a request sent after the ceiling was set is refused at it again
  (then it drops by one). Every ``probe_interval_s`` without a 429 the ceiling rises by one: other
  clients of the same account may have gone. That keeps the 429 share at about one per probe
  interval instead of one per round trip.
* **Pause.** A ``Retry-After`` stops every new request to the destination until it has passed
  (not just the retry of the refused batch): no retry storm while throttled.

Time is passed in (monotonic seconds); the owner serialises calls (one lock per destination).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

DEFAULT_MAX_IN_FLIGHT = 32
# Like TCP's initial window of several segments: a handful of POSTs is no burden to any API,
# and it saves two round trips of slow start (0.6 s against a 300 ms destination).
DEFAULT_INITIAL = 4


class Answer(enum.Enum):
    """What an answer says about the destination's load."""

    GOOD = "good"  # 2xx (a partial success too: the destination took the request)
    THROTTLED = "throttled"  # 429: too many concurrent requests
    OVERLOADED = "overloaded"  # 503, or no answer within the request timeout
    NEUTRAL = "neutral"  # anything else (4xx, other 5xx, a reset): no load signal


def answer_for(status: int | None, *, timed_out: bool = False) -> Answer:
    """The load signal of an HTTP status (None: no answer; ``timed_out`` when it took too long)."""
    if timed_out:
        return Answer.OVERLOADED
    if status is None:
        return Answer.NEUTRAL
    if 200 <= status < 300:
        return Answer.GOOD
    if status == 429:
        return Answer.THROTTLED
    if status == 503:
        return Answer.OVERLOADED
    return Answer.NEUTRAL


@dataclass(frozen=True, slots=True)
class Ticket:
    """One request in flight: when it left and how many were in flight with it (itself too)."""

    sent_at: float
    in_flight: int


class AdaptiveConcurrency:
    """The concurrency limit of one destination (see the module docstring)."""

    def __init__(
        self,
        cap: int = DEFAULT_MAX_IN_FLIGHT,
        *,
        initial: int = DEFAULT_INITIAL,
        overload_ratio: float = 0.7,
        decrease_ratio: float = 0.9,
        ewma_alpha: float = 0.1,
        rtt_deviation_scale: float = 2.5,
        latency_tolerance: float = 0.5,
        min_latency_rise_s: float = 0.05,
        probe_interval_s: float = 5.0,
    ) -> None:
        if cap < 1:
            raise ValueError(f"the concurrency cap must be at least 1, got {cap}")
        if not 0 < overload_ratio < 1 or not 0 < decrease_ratio < 1:
            raise ValueError("decrease ratios must lie strictly between 0 and 1")
        if not 0 < ewma_alpha <= 1:
            raise ValueError("ewma_alpha must lie in (0, 1]")
        self.cap = cap
        self.overload_ratio, self.decrease_ratio = overload_ratio, decrease_ratio
        self.ewma_alpha, self.rtt_deviation_scale = ewma_alpha, rtt_deviation_scale
        self.latency_tolerance, self.min_latency_rise_s = latency_tolerance, min_latency_rise_s
        self.probe_interval_s = probe_interval_s
        self._limit = float(min(max(initial, 1), cap))
        self._in_flight = 0
        self.slow_start = True
        self.ceiling: int | None = None
        self._ceiling_since = -math.inf  # the last 429 or probe: the probe timer's start
        self._ceiling_set_at = -math.inf  # when the ceiling last took its value
        self._cut_at = -math.inf  # answers to requests sent before this are the same event
        self._reached_at = -math.inf  # when the in-flight count last reached the limit
        self._good_high, self._good_high_at = 0, -math.inf  # most in flight a 2xx was sent at
        self._paused_until = -math.inf
        self.baseline_rtt: float | None = None
        self._deviation = 0.0
        self._window_start: float | None = None
        self._window_sum, self._window_n = 0.0, 0

    # --- what the owner asks ------------------------------------------------------------------

    @property
    def limit(self) -> int:
        return int(self._limit + 1e-9)  # k additions of 1/k make a whole 1, not 0.999...

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def paused_for(self, now: float) -> float:
        """Seconds left of a Retry-After pause (0.0 when not paused)."""
        return max(self._paused_until - now, 0.0)

    def may_send(self, now: float) -> bool:
        return self._in_flight < self.limit and now >= self._paused_until

    def sent(self, now: float) -> Ticket:
        """A request leaves now (the owner checked ``may_send``)."""
        self._in_flight += 1
        if self._in_flight >= self.limit:
            self._reached_at = now
        return Ticket(now, self._in_flight)

    def pause(self, now: float, seconds: float) -> None:
        """Nothing new leaves before ``now + seconds`` (a later pause extends, never shortens)."""
        self._paused_until = max(self._paused_until, now + max(seconds, 0.0))

    def answered(
        self, ticket: Ticket, now: float, answer: Answer, retry_after_s: float | None = None
    ) -> None:
        """The request of ``ticket`` ended at ``now`` with ``answer``."""
        self._in_flight = max(self._in_flight - 1, 0)
        if retry_after_s is not None:
            self.pause(now, retry_after_s)
        if answer is Answer.THROTTLED:
            # The destination said how many it takes: hold the limit under the ceiling (set
            # by _upper_bound below) rather than cut blindly.
            self._lower_ceiling(ticket, now)
            self.slow_start = False
        elif answer is Answer.OVERLOADED:
            self._cut(ticket, now, self.overload_ratio)
        elif answer is Answer.GOOD:
            self._good(ticket, now)
        self._limit = min(self._limit, float(self._upper_bound()))

    # --- the rules ----------------------------------------------------------------------------

    def _good(self, ticket: Ticket, now: float) -> None:
        rtt = max(now - ticket.sent_at, 0.0)
        recent = now - self._good_high_at <= 2 * self.probe_interval_s
        if ticket.in_flight >= self._good_high or not recent:
            self._good_high, self._good_high_at = ticket.in_flight, now
        if self.baseline_rtt is None:
            self.baseline_rtt = rtt
        window_mean = self._close_window(rtt, now)
        if window_mean is not None and self._latency_rose(window_mean):
            self._cut(ticket, now, self.decrease_ratio)
        elif self._reached_at >= ticket.sent_at:  # the limit was binding: room to grow
            self._limit += 1.0 if self.slow_start else 1.0 / max(self.limit, 1)
        if window_mean is not None:
            self._learn_rtt(window_mean)
        self._probe_ceiling(now)

    def _close_window(self, rtt: float, now: float) -> float | None:
        """Add one round trip to the current window; once the window spans a baseline round
        trip, its mean (and a new window). Vector's ARC judges latency per window too: a
        lone slow answer (a GC pause, a busy CPU) is noise, a slower round trip is a signal."""
        if self._window_start is None:
            self._window_start = now
        self._window_sum += rtt
        self._window_n += 1
        baseline = self.baseline_rtt
        if baseline is None or now - self._window_start < baseline:
            return None
        mean = self._window_sum / self._window_n
        self._window_start, self._window_sum, self._window_n = now, 0.0, 0
        return mean

    def _latency_rose(self, rtt: float) -> bool:
        baseline = self.baseline_rtt
        if baseline is None:
            return False
        allowed = max(
            self.rtt_deviation_scale * self._deviation,
            self.latency_tolerance * baseline,
            self.min_latency_rise_s,
        )
        return rtt > baseline + allowed

    def _learn_rtt(self, rtt: float) -> None:
        # Every window moves the baseline, slow ones too: a destination that stays slower
        # becomes the new normal (after some ten round trips) instead of holding the limit
        # down forever.
        assert self.baseline_rtt is not None
        alpha = self.ewma_alpha
        self._deviation += alpha * (abs(rtt - self.baseline_rtt) - self._deviation)
        self.baseline_rtt += alpha * (rtt - self.baseline_rtt)

    def _cut(self, ticket: Ticket, now: float, ratio: float) -> None:
        self.slow_start = False
        if ticket.sent_at < self._cut_at:
            return  # sent before the last cut: already reacted to this congestion event
        self._cut_at = now
        self._limit = max(math.floor(self._limit * ratio), 1)

    def _lower_ceiling(self, ticket: Ticket, now: float) -> None:
        # A 429 comes back at once while the accepted requests take their round trip, so the
        # POSTs still in flight when it arrives are about what the destination holds (the
        # in-flight count at send is not: requests sent together arrive in any order). Never
        # below what was accepted lately, unless refused again at the ceiling by a request
        # sent after the ceiling was set (requests sent before belong to the same event): that
        # acceptance was a lucky moment, and holding on to it drew a 429 every Retry-After.
        refused_at = max(self._in_flight, self._good_high, 1)
        if self.ceiling is None or refused_at < self.ceiling:
            self._set_ceiling(refused_at, now)
        elif ticket.sent_at > self._ceiling_set_at:
            self._set_ceiling(max(self.ceiling - 1, 1), now)
            self._good_high = min(self._good_high, self.ceiling)
        self._ceiling_since = now

    def _set_ceiling(self, ceiling: int | None, now: float) -> None:
        self.ceiling = ceiling
        self._ceiling_set_at = now

    def _probe_ceiling(self, now: float) -> None:
        if self.ceiling is None or now - self._ceiling_since < self.probe_interval_s:
            return
        self._ceiling_since = now
        self._set_ceiling(None if self.ceiling + 1 >= self.cap else self.ceiling + 1, now)

    def _upper_bound(self) -> int:
        return self.cap if self.ceiling is None else min(self.cap, self.ceiling)

    def __repr__(self) -> str:
        return (
            f"AdaptiveConcurrency(limit={self.limit}, cap={self.cap}, "
            f"in_flight={self._in_flight}, ceiling={self.ceiling})"
        )
