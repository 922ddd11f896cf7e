"""The consumer's metrics: series with labels known in advance exist from start-up at zero
(rate() and increase() miss increments in a series' first sample), and the lag gauges."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.kafka_client import PartitionLag

ERROR_CLASSES = {"invalid_email_id", "dispatching_failed", "connection_error", "timeout"}


def scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


@pytest.fixture
def fresh() -> tuple[ConsumerMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return ConsumerMetrics.create(registry, top_domains=["gmail.com"]).prime(), registry


def label_values(samples: list[tuple[dict[str, str], float]], label: str) -> set[str]:
    return {labels[label] for labels, _ in samples if label in labels}


def test_known_series_exist_at_zero_from_start_up(
    fresh: tuple[ConsumerMetrics, CollectorRegistry],
) -> None:
    _metrics, registry = fresh
    found = scrape(registry)
    counted = [name for name in found if name.endswith("_total")]
    assert all(value == 0 for name in counted for _labels, value in found[name])
    sent = found["bouncewire_send_results_total"]
    assert label_values(sent, "error_class") - {"none"} == ERROR_CLASSES
    assert label_values(sent, "bounce") == {"hard", "soft", "none"}
    by_domain = found["bouncewire_send_results_by_domain_total"]
    assert {(labels["domain"], labels["bounce"]) for labels, _ in by_domain} == {
        (d, b) for d in ("gmail.com", "other") for b in ("hard", "soft", "none")}
    for name in ("bouncewire_callbacks_total", "bouncewire_callback_retries_total",
                 "bouncewire_batch_events_count", "bouncewire_batch_bytes_count",
                 "bouncewire_callback_duration_seconds_count",
                 "bouncewire_callback_event_age_seconds_count"):
        assert label_values(found[name], "destination") == {"bounce", "unsubscribe"}, name
    assert label_values(found["bouncewire_producer_delivery_errors_total"],
                        "topic_role") == {"dead_letter"}
    assert label_values(found["bouncewire_rebalance_events_total"], "change") == {
        "assigned", "revoked", "lost"}
    assert {"decode_truncated", "wrong_topic", "invalid_address"} <= label_values(
        found["bouncewire_dead_letters_total"], "reason")


def test_lag_and_read_ahead_per_partition_and_forgotten_with_it(
    fresh: tuple[ConsumerMetrics, CollectorRegistry],
) -> None:
    metrics, registry = fresh
    metrics.record_lag({("sr", 0): PartitionLag(120, 20), ("sr", 1): PartitionLag(0, 0)})
    found = scrape(registry)
    assert {(s["partition"], v) for s, v in found["bouncewire_consumer_lag"]} == {
        ("0", 120), ("1", 0)}
    assert {(s["partition"], v) for s, v in found["bouncewire_consumer_read_ahead"]} == {
        ("0", 20), ("1", 0)}
    metrics.forget_partitions([("sr", 0), ("never", 3)])
    found = scrape(registry)
    assert [s["partition"] for s, _ in found["bouncewire_consumer_lag"]] == ["1"]
    assert [s["partition"] for s, _ in found["bouncewire_consumer_read_ahead"]] == ["1"]
