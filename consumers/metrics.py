"""Prometheus metrics of the callback consumer, built once from a registry and passed in.

Names follow Prometheus conventions (`_total` counters, base units). Labels hold only bounded
values: event kinds, bounce types, error classes, status classes, reasons, destinations and a
configured top-N of recipient domains plus `other`. Never an address or a URL.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bouncewire.schemas.exceptions import DECODE_REASONS

if TYPE_CHECKING:  # the delivery child imports metrics and needs no Kafka client
    from bouncewire.kafka_client import Partition, PartitionLag

# POST latency: CleverTap answers in tens to hundreds of ms; timeouts sit at 10 s and above.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_EVENT_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 750, 1000)
BATCH_BYTE_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
# Event age at delivery spans seconds (live) to days (backfill, outage catch-up).
AGE_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 2 * 24 * 3600, 7 * 24 * 3600)

DEFAULT_TOP_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "web.de",
    "proton.me",
)
DESTINATIONS = ("bounce", "unsubscribe")
BOUNCES = ("hard", "soft", "none")
# Dead-letter reasons with fixed names (http_NNN and the like appear when they happen).
FIXED_DEAD_LETTER_REASONS = (
    *(f"decode_{reason}" for reason in DECODE_REASONS),
    "wrong_topic",
    "invalid_address",
    "too_large",
    "partial_unprocessed",
    "internal_error",
)


@dataclass(frozen=True, slots=True)
class ConsumerMetrics:
    events_consumed: Counter
    send_results: Counter
    send_results_by_domain: Counter
    callback_events: Counter
    callbacks: Counter
    retries: Counter
    dead_letters: Counter
    batch_events: Histogram
    batch_bytes: Histogram
    post_latency: Histogram
    event_age: Histogram
    lag: Gauge
    read_ahead: Gauge
    oldest_unsubscribe_age: Gauge
    pending_events: Gauge
    paused_partitions: Gauge
    assigned_partitions: Gauge
    producer_errors: Counter
    rebalances: Counter
    top_domains: frozenset[str]
    concurrency: ConcurrencyMetrics  # issue 20: see the section at the end of this file

    @classmethod
    def create(
        cls,
        registry: CollectorRegistry,
        prefix: str = "bouncewire",
        top_domains: Iterable[str] = DEFAULT_TOP_DOMAINS,
    ) -> ConsumerMetrics:
        def name(n: str) -> str:
            return f"{prefix}_{n}"

        return cls(
            events_consumed=Counter(
                name("events_consumed"),
                "Records read from the source topics",
                ["event_type"],
                registry=registry,
            ),
            send_results=Counter(
                name("send_results"),
                "Send results by classification",
                ["bounce", "error_class"],
                registry=registry,
            ),
            send_results_by_domain=Counter(
                name("send_results_by_domain"),
                "Send results by recipient domain (configured top-N, else 'other')",
                ["domain", "bounce"],
                registry=registry,
            ),
            callback_events=Counter(
                name("callback_events"),
                "Events delivered to CleverTap (2xx)",
                ["callback_type"],
                registry=registry,
            ),
            callbacks=Counter(
                name("callbacks"),
                "Callback POST attempts by outcome",
                ["destination", "status_class"],
                registry=registry,
            ),
            retries=Counter(
                name("callback_retries"),
                "Callback POSTs retried",
                ["destination"],
                registry=registry,
            ),
            dead_letters=Counter(
                name("dead_letters"),
                "Records written to the dead-letter topic",
                ["reason"],
                registry=registry,
            ),
            batch_events=Histogram(
                name("batch_events"),
                "Events per callback POST",
                ["destination"],
                buckets=BATCH_EVENT_BUCKETS,
                registry=registry,
            ),
            batch_bytes=Histogram(
                name("batch_bytes"),
                "Bytes per callback POST body",
                ["destination"],
                buckets=BATCH_BYTE_BUCKETS,
                registry=registry,
            ),
            post_latency=Histogram(
                name("callback_duration_seconds"),
                "Callback POST latency",
                ["destination"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            event_age=Histogram(
                name("callback_event_age_seconds"),
                "Age (event time to 2xx) of the oldest event of each delivered batch",
                ["destination"],
                buckets=AGE_BUCKETS,
                registry=registry,
            ),
            lag=Gauge(
                name("consumer_lag"),
                "High watermark minus the group's committed offset (as kafka-consumer-groups)",
                ["topic", "partition"],
                registry=registry,
            ),
            read_ahead=Gauge(
                name("consumer_read_ahead"),
                "Records read beyond the committed offset: in memory, not yet done",
                ["topic", "partition"],
                registry=registry,
            ),
            oldest_unsubscribe_age=Gauge(
                name("oldest_undelivered_unsubscribe_age_seconds"),
                "Age of the oldest unsubscribe read but not yet delivered or dead-lettered",
                registry=registry,
            ),
            pending_events=Gauge(
                name("pending_events"), "Records read and not yet done", registry=registry
            ),
            paused_partitions=Gauge(
                name("paused_partitions"), "Partitions paused (backpressure)", registry=registry
            ),
            assigned_partitions=Gauge(
                name("assigned_partitions"), "Partitions assigned", registry=registry
            ),
            producer_errors=Counter(
                name("producer_delivery_errors"),
                "Records the cluster did not acknowledge",
                ["topic_role"],
                registry=registry,
            ),
            rebalances=Counter(
                name("rebalance_events"),
                "Partition assignment changes seen by this member",
                ["change"],
                registry=registry,
            ),
            top_domains=frozenset(d.lower() for d in top_domains),
            concurrency=ConcurrencyMetrics.create(registry, prefix),
        )

    def prime(self) -> ConsumerMetrics:
        """Create every series whose labels are known in advance at zero: rate() and increase()
        cannot see increments that arrive in a series' first scraped sample, so after every
        restart the first bounces, failures or dead letters would vanish."""
        for event_type in ("send_result", "unsubscribe"):
            self.events_consumed.labels(event_type)
        for bounce, error_class in (
            ("hard", "invalid_email_id"),
            ("hard", "dispatching_failed"),
            ("soft", "dispatching_failed"),
            ("soft", "timeout"),
            ("soft", "connection_error"),
            ("none", "none"),
            ("none", "connection_error"),
        ):
            self.send_results.labels(bounce, error_class)
        for domain in (*sorted(self.top_domains), "other"):
            for bounce in BOUNCES:
                self.send_results_by_domain.labels(domain, bounce)
        for callback_type in ("softbounce", "hardbounce", "unsubscribe"):
            self.callback_events.labels(callback_type)
        for destination in DESTINATIONS:
            self._prime_destination(destination)
        for reason in FIXED_DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        self.producer_errors.labels("dead_letter")
        for change in ("assigned", "revoked", "lost"):
            self.rebalances.labels(change)
        self.concurrency.prime()
        return self

    def _prime_destination(self, destination: str) -> None:
        self.retries.labels(destination)
        for status_class in ("2xx", "4xx", "5xx", "timeout", "network"):
            self.callbacks.labels(destination, status_class)
        for histogram in (self.batch_events, self.batch_bytes, self.post_latency, self.event_age):
            histogram.labels(destination)

    def record_lag(self, lags: Mapping[Partition, PartitionLag]) -> None:
        """Set each partition's committed lag and read-ahead."""
        for (topic, partition), lag in lags.items():
            self.lag.labels(topic, str(partition)).set(lag.committed)
            self.read_ahead.labels(topic, str(partition)).set(lag.read_ahead)

    def forget_partitions(self, partitions: Iterable[Partition]) -> None:
        """Drop the lag series of partitions this member no longer owns (the new owner
        exports them; two series of one partition would count its lag twice)."""
        for topic, partition in partitions:
            for gauge in (self.lag, self.read_ahead):
                with contextlib.suppress(KeyError):  # no sample yet for that partition
                    gauge.remove(topic, str(partition))

    def count_by_domain(self, bounce: str, domains: Iterable[str]) -> None:
        """Add one send result per recipient domain (as given, any case) of a consumed batch.

        Counted first, lower-cased per distinct domain: a batch holds few distinct domains."""
        labels: collections.Counter[str] = collections.Counter()
        for domain, n in collections.Counter(domains).items():
            lowered = domain.lower()
            labels[lowered if lowered in self.top_domains else "other"] += n
        for label, n in labels.items():
            self.send_results_by_domain.labels(label, bounce).inc(n)


# --- Delivery concurrency (issue 20) ----------------------------------------------------------
# Kept apart from ConsumerMetrics' own fields: one field there (`concurrency`), the rest here.


@dataclass(frozen=True, slots=True)
class ConcurrencyMetrics:
    """Per destination: POSTs in flight now, and the adaptive limit they are held to."""

    in_flight: Gauge
    limit: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "bouncewire") -> ConcurrencyMetrics:
        return cls(
            in_flight=Gauge(
                f"{prefix}_callback_requests_in_flight",
                "Callback POSTs sent and not yet answered",
                ["destination"],
                registry=registry,
            ),
            limit=Gauge(
                f"{prefix}_callback_concurrency_limit",
                "Adaptive limit of callback POSTs in flight (at most --max-in-flight)",
                ["destination"],
                registry=registry,
            ),
        )

    def prime(self) -> None:
        for destination in DESTINATIONS:
            self.in_flight.labels(destination)
            self.limit.labels(destination)

    def show(self, destination: str, in_flight: int, limit: int) -> None:
        self.in_flight.labels(destination).set(in_flight)
        self.limit.labels(destination).set(limit)
