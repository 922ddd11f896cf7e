"""Prometheus metrics of the callback consumer, built once from a registry and passed in.

Names follow Prometheus conventions (`_total` counters, base units). Labels hold only bounded
values: event kinds, bounce types, error classes, status classes, reasons, destinations and a
configured top-N of recipient domains plus `other`. Never an address or a URL.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    oldest_unsubscribe_age: Gauge
    pending_events: Gauge
    paused_partitions: Gauge
    assigned_partitions: Gauge
    producer_errors: Counter
    rebalances: Counter
    top_domains: frozenset[str]

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
                "High watermark minus position",
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
        )

    def prime(self) -> ConsumerMetrics:
        """Create the expected series at zero: rate() cannot see increments that arrive in a
        series' first scraped sample, so after every restart the first bounces would vanish."""
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
        for callback_type in ("softbounce", "hardbounce", "unsubscribe"):
            self.callback_events.labels(callback_type)
        for destination in ("bounce", "unsubscribe"):
            self.retries.labels(destination)
            for status_class in ("2xx", "4xx", "5xx", "timeout", "network"):
                self.callbacks.labels(destination, status_class)
        return self

    def count_by_domain(self, bounce: str, domains: Iterable[str]) -> None:
        """Add one send result per recipient domain (as given, any case) of a consumed batch.

        Counted first, lower-cased per distinct domain: a batch holds few distinct domains."""
        labels: collections.Counter[str] = collections.Counter()
        for domain, n in collections.Counter(domains).items():
            lowered = domain.lower()
            labels[lowered if lowered in self.top_domains else "other"] += n
        for label, n in labels.items():
            self.send_results_by_domain.labels(label, bounce).inc(n)
