"""The SMTP handler's decisions without a network or broker: who is ours, and which reply a
message gets when publishing fails, the quarantine cannot be written or the parser raises."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from bouncewire._mail import parse_received
from bouncewire.producers.exceptions import PublishError
from bouncewire.producers.mail.events import MailEvent
from bouncewire.producers.mail.metrics import MailMetrics
from bouncewire.producers.mail.report import MailReport
from bouncewire.producers.mail.server import (
    ACCEPTED,
    NOT_ACKNOWLEDGED,
    MailHandler,
    ServeConfig,
)
from tests.producers.mail import messages
from tests.producers.mail.conftest import DOMAIN, RING, verp_address


class FakePublisher:
    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.published: list[MailEvent] = []

    def publish_all(self, events: Sequence[MailEvent], timeout: float) -> None:
        if self.error:
            raise PublishError(self.error)
        self.published.extend(events)


def handler(publisher: FakePublisher, quarantine: Path | None = None,
            parse=parse_received) -> tuple[MailHandler, CollectorRegistry]:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    config = ServeConfig(frozenset({DOMAIN}), RING, quarantine=quarantine)
    return MailHandler(config, parse, publisher, MailMetrics.create(registry)), registry


@pytest.mark.parametrize(
    ("address", "ours"),
    [(f"a@{DOMAIN}", True), (f"<A@{DOMAIN.upper()}.>", True), (f"a@evil.example@{DOMAIN}", False),
     (f"a%evil.example@{DOMAIN}", False), (f"evil.example!a@{DOMAIN}", False),
     (f"@{DOMAIN}", False), (DOMAIN, False), (f"a@{DOMAIN}.evil.example", False),
     (f"a@sub.{DOMAIN}", False), ("a@evil.example", False), ("", False)],
)
def test_only_addresses_at_the_served_domain_are_ours(address: str, ours: bool) -> None:
    assert handler(FakePublisher())[0].is_ours(address) is ours


@given(st.text(max_size=60))
def test_no_address_at_another_domain_is_ever_ours(local: str) -> None:
    mail_handler = handler(FakePublisher())[0]
    assert not mail_handler.is_ours(f"{local}@elsewhere.example")
    assert not mail_handler.is_ours(f"{local}@{DOMAIN}x")


def test_an_unacknowledged_publish_answers_451_and_counts_nothing_as_accepted() -> None:
    mail_handler, registry = handler(FakePublisher("broker down"))
    email = "jane@recipient.example"
    address = verp_address(email)
    reply = mail_handler.receive(messages.dsn(email, to=address), (address,))
    assert reply == NOT_ACKNOWLEDGED
    assert registry.get_sample_value("bouncewire_mail_messages_total", {"kind": "bounce"}) is None


def test_an_unwritable_quarantine_answers_451(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    mail_handler, _ = handler(FakePublisher(), quarantine=blocked / "q")
    assert mail_handler.receive(messages.unrecognised(to="x"), (f"p@{DOMAIN}",)) == NOT_ACKNOWLEDGED


def test_a_parser_that_raises_costs_the_message_its_events_not_the_server(tmp_path: Path) -> None:
    def broken(raw: bytes, now_ms: int) -> MailReport:
        raise RuntimeError("bug")

    mail_handler, registry = handler(FakePublisher(), quarantine=tmp_path, parse=broken)
    assert mail_handler.receive(b"Subject: x\r\n\r\nx\r\n", (f"p@{DOMAIN}",)) == ACCEPTED
    assert len(list(tmp_path.iterdir())) == 1
    assert registry.get_sample_value("bouncewire_mail_parse_failures_total") == 1


_HEADS = [b"Content-Type: multipart/report; report-type=delivery-status; boundary=B",
          b"Content-Type: multipart/report; report-type=feedback-report; boundary=B",
          b"Auto-Submitted: auto-replied\r\nTo: " + verp_address("a@b.example").encode()]


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=3000) | st.builds(
    lambda head, body: head + b"\r\n\r\n" + body, st.sampled_from(_HEADS),
    st.binary(max_size=2000)))
def test_any_bytes_are_answered_250_and_whatever_they_publish_is_valid(raw: bytes) -> None:
    publisher = FakePublisher()
    mail_handler, _ = handler(publisher)
    assert mail_handler.receive(raw, (f"p@{DOMAIN}", verp_address("v@b.example"))) == ACCEPTED
    for event in publisher.published:
        assert event.kind in ("send_result", "unsubscribe")
        assert event.mail_kind != "delay"
