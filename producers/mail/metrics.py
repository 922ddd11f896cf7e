"""Prometheus metrics of `bouncewire mail serve`. Labels hold only bounded values (mail kinds,
event kinds, note names, reply classes): never an address, a token or a host name."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from bouncewire.producers.mail.events import Conversion

# Receipt to acknowledgement: a healthy broker answers in milliseconds; the SMTP client's DATA
# timeout (RFC 5321 §4.5.3.2.6: 10 minutes) bounds the wait from above.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class MailMetrics:
    messages: Counter
    notes: Counter
    parse_failures: Counter
    events_published: Counter
    answers: Counter
    refused_recipients: Counter
    ack_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MailMetrics:
        return cls(
            messages=Counter(
                "bouncewire_mail_messages_total",
                "Messages received, by the kind the parser found",
                ["kind"],
                registry=registry,
            ),
            notes=Counter(
                "bouncewire_mail_counted_total",
                "What messages held that was counted rather than (or besides) published: "
                "delays, complaints, forged tokens, messages naming no recipient, ...",
                ["note"],
                registry=registry,
            ),
            parse_failures=Counter(
                "bouncewire_mail_parse_failures_total",
                "Messages accepted that no format recognised (kept in --quarantine when set)",
                registry=registry,
            ),
            events_published=Counter(
                "bouncewire_mail_events_published_total",
                "Events the broker acknowledged, by event kind and the mail kind they came from",
                ["event_kind", "mail_kind"],
                registry=registry,
            ),
            answers=Counter(
                "bouncewire_mail_data_replies_total",
                "Replies to DATA by SMTP reply class: 2xx accepted, 4xx the sender retries",
                ["reply"],
                registry=registry,
            ),
            refused_recipients=Counter(
                "bouncewire_mail_refused_recipients_total",
                "RCPT TO refused (not an address at the served domain, or too many)",
                registry=registry,
            ),
            ack_seconds=Histogram(
                "bouncewire_mail_receipt_to_ack_seconds",
                "From the end of DATA to Kafka's acknowledgement of the message's events",
                buckets=ACK_BUCKETS,
                registry=registry,
            ),
        )

    def count(self, conversion: Conversion) -> None:
        self.messages.labels(conversion.kind).inc()
        for note in conversion.notes:
            self.notes.labels(note).inc()

    def published(self, conversion: Conversion) -> None:
        for event in conversion.events:
            self.events_published.labels(event.kind, event.mail_kind).inc()
