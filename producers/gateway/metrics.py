"""The gateway's Prometheus metrics. No label ever holds an address, a user name or a host."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# error_class: the seed's four (invalid_email_id, dispatching_failed, connection_error,
# timeout) or "none" for a delivered recipient.
UPSTREAM_RESULTS = ("accepted", "deferred", "rejected", "failed")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sessions = Counter(
            "bouncewire_gateway_sessions", "SMTP sessions opened", ["listener"], registry=r
        )
        self.active_sessions = Gauge(
            "bouncewire_gateway_active_sessions", "SMTP sessions open now", registry=r
        )
        self.refusals = Counter(
            "bouncewire_gateway_limit_refusals",
            "commands or sessions refused by a limit",
            ["limit"],
            registry=r,
        )
        self.auth_failures = Counter(
            "bouncewire_gateway_auth_failures",
            "failed AUTH attempts (throttled: refused without checking)",
            ["mechanism", "outcome"],
            registry=r,
        )
        self.messages = Counter(
            "bouncewire_gateway_messages",
            "messages relayed, by the upstream's DATA result",
            ["result"],
            registry=r,
        )
        self.recipients = Counter(
            "bouncewire_gateway_recipients",
            "recipients, by upstream result and the seed's error class",
            ["result", "error_class"],
            registry=r,
        )
        self.relay_seconds = Histogram(
            "bouncewire_gateway_relay_seconds",
            "time spent waiting on the upstream per relayed command",
            ["command"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.bytes = Counter(
            "bouncewire_gateway_message_bytes", "message bytes relayed upstream", registry=r
        )
        self.unpublished = Counter(
            "bouncewire_gateway_unpublished_transactions",
            "transactions answered 451 because their results could not be published",
            registry=r,
        )
        self.repeats = Counter(
            "bouncewire_gateway_repeated_transactions",
            "transactions already delivered and recorded minutes ago: answered, not relayed",
            registry=r,
        )
        self.replayed = Counter(
            "bouncewire_gateway_replayed_transactions",
            "retried transactions whose kept results were published without relaying again",
            registry=r,
        )


def upstream_result(smtp_code: int | None) -> str:
    if smtp_code is None:
        return "failed"
    if smtp_code < 300:
        return "accepted"
    return "deferred" if smtp_code < 500 else "rejected"
