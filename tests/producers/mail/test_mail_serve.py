"""`mail serve` end to end: smtplib as the sending MTA, the real parser, the real broker."""

from __future__ import annotations

import smtplib
import time
import uuid
from pathlib import Path

import pytest

from bouncewire.producers.signed_addresses import signed_address
from bouncewire.producers.unsubscribe.tokens import Claims
from bouncewire.schemas import Codec, SchemaStore
from tests.producers.mail import messages
from tests.producers.mail.conftest import (
    DOMAIN,
    FORGER,
    MAX_MESSAGE_BYTES,
    RING,
    LiveMail,
    make_topics,
    serving,
    verp_address,
)
from tests.producers.mail.tcp_forwarder import forwarding
from tests.producers.unsubscribe.unsubscribe_harness import LiveService, free_port

pytestmark = pytest.mark.integration


def unique_email() -> str:
    return f"r-{uuid.uuid4().hex[:10]}@recipient.example"


verp = verp_address


def deliver(port: int, rcpt: str | list[str], data: bytes, sender: str = ""
            ) -> dict[str, tuple[int, bytes]]:
    """Send as an MTA sends a bounce (null reverse path); the refused recipients."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        return smtp.sendmail(sender, rcpt, data)


def test_a_bounce_to_a_verp_address_names_the_tokens_recipient(live_mail: LiveMail) -> None:
    email = unique_email()
    address = verp(email)
    start = live_mail.offsets()
    # The DSN names a forwarding address: the token decides who bounced.
    assert deliver(live_mail.port, address,
                   messages.dsn("fwd-" + email, to=address)) == {}
    published = live_mail.published_since(start)
    assert published["unsubscribe"] == []
    [record] = published["send_result"]
    assert (record["email"], record["campaign_id"], record["meta"]) == (email, "camp-7", "meta-7")
    assert (record["smtp_code"], record["enhanced_code"]) == (550, "5.1.1")
    assert live_mail.metric("bouncewire_mail_events_published_total",
                            event_kind="send_result", mail_kind="bounce") >= 1


def test_mail_to_a_signed_mailto_address_publishes_an_unsubscribe(live_mail: LiveMail) -> None:
    email = unique_email()
    address = signed_address(RING, Claims(email, "camp-u"), DOMAIN, "unsubscribe")
    start = live_mail.offsets()
    assert deliver(live_mail.port, address,
                   messages.unsubscribe_request("someone@reader.example", to=address),
                   sender="someone@reader.example") == {}
    published = live_mail.published_since(start)
    [record] = published["unsubscribe"]
    assert (record["email"], record["source"], record["campaign_id"]) == (email, "mailto", "camp-u")
    assert published["send_result"] == []


def test_a_complaint_becomes_an_unsubscribe_with_source_complaint(live_mail: LiveMail) -> None:
    email = unique_email()
    start = live_mail.offsets()
    assert deliver(live_mail.port, f"fbl@{DOMAIN}",
                   messages.arf(email, to=f"fbl@{DOMAIN}", return_path=verp(email))) == {}
    [record] = live_mail.published_since(start)["unsubscribe"]
    assert (record["email"], record["source"], record["campaign_id"]) == (
        email, "complaint", "camp-7")


@pytest.mark.parametrize("forge", ["other-key", "tampered"])
def test_a_forged_token_attributes_nothing(live_mail: LiveMail, forge: str) -> None:
    """The bounce is still the message's own evidence (its own recipient, no campaign from
    the token); the token's victim gets nothing, and the forgery is counted."""
    victim, named = unique_email(), unique_email()
    address = signed_address(FORGER, Claims(victim, "forged-campaign"), DOMAIN, "bounce")
    if forge == "tampered":
        genuine = verp(victim)
        address = genuine[:20] + ("a" if genuine[20] != "a" else "b") + genuine[21:]
    forged_before = live_mail.metric("bouncewire_mail_counted_total", note="forged_token")
    start = live_mail.offsets()
    assert deliver(live_mail.port, address, messages.dsn(named, to=address)) == {}
    published = live_mail.published_since(start)
    assert [(r["email"], r["campaign_id"]) for r in published["send_result"]] == [(named, None)]
    assert live_mail.metric("bouncewire_mail_counted_total", note="forged_token") > forged_before


def test_a_non_local_recipient_is_refused_never_relayed(live_mail: LiveMail) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        deliver(live_mail.port, "victim@elsewhere.example", messages.unrecognised(to="x"))
    [(code, text)] = refused.value.recipients.values()
    assert code == 550 and text.startswith(b"5.7.1")
    # Mixed: ours accepted, the other refused on its own.
    ours = f"postmaster@{DOMAIN}"
    refused_map = deliver(live_mail.port, [ours, f"x@{DOMAIN}.evil.example"],
                          messages.unrecognised(to=ours))
    assert list(refused_map) == [f"x@{DOMAIN}.evil.example"]


def test_a_delay_is_accepted_and_counted_not_published(live_mail: LiveMail) -> None:
    email = unique_email()
    address = verp(email)
    delays = live_mail.metric("bouncewire_mail_counted_total", note="delay")
    start = live_mail.offsets()
    assert deliver(live_mail.port, address,
                   messages.dsn(email, to=address, action="delayed", status="4.4.1",
                                diagnostic="smtp; 421 4.4.1 try again later")) == {}
    assert live_mail.published_since(start) == {"send_result": [], "unsubscribe": []}
    assert live_mail.metric("bouncewire_mail_counted_total", note="delay") == delays + 1


def test_unrecognised_mail_is_accepted_counted_and_quarantined(live_mail: LiveMail) -> None:
    failures = live_mail.metric("bouncewire_mail_parse_failures_total")
    before = set(live_mail.quarantine.iterdir())
    body = messages.unrecognised(to=f"postmaster@{DOMAIN}")
    assert deliver(live_mail.port, f"postmaster@{DOMAIN}", body) == {}
    [kept] = set(live_mail.quarantine.iterdir()) - before
    assert kept.read_bytes().replace(b"\r\n", b"\n").endswith(b"Just saying hello.\n")
    assert live_mail.metric("bouncewire_mail_parse_failures_total") == failures + 1
    assert live_mail.metric("bouncewire_mail_messages_total", kind="unknown") >= 1


def test_an_oversized_message_is_refused_with_552(live_mail: LiveMail) -> None:
    big = messages.unrecognised(to=f"postmaster@{DOMAIN}") + b"x" * (MAX_MESSAGE_BYTES + 10)
    with smtplib.SMTP("127.0.0.1", live_mail.port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("size") and int(smtp.esmtp_features["size"]) == MAX_MESSAGE_BYTES
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail("", f"postmaster@{DOMAIN}", big)
    assert refused.value.smtp_code == 552


def test_receipt_to_ack_is_measured(live_mail: LiveMail) -> None:
    email = unique_email()
    before = live_mail.metric("bouncewire_mail_receipt_to_ack_seconds_count")
    deliver(live_mail.port, verp(email), messages.dsn(email, to=verp(email)))
    assert live_mail.metric("bouncewire_mail_receipt_to_ack_seconds_count") == before + 1
    assert live_mail.metric("bouncewire_mail_data_replies_total", reply="2xx") >= 1


def test_broker_down_answers_451_then_accepts_once_it_is_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = make_topics(kafka_bootstrap)
    host, _, port = kafka_bootstrap.rpartition(":")
    gateway = free_port()  # nothing listens here yet: the broker is "down"
    email = unique_email()
    address = verp(email)
    bounce = messages.dsn(email, to=address, message_id="<retry-1@mta.example>")
    with serving(f"127.0.0.1:{gateway}", topics, tmp_path, ack_timeout_s=1.5) as live:
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            deliver(live.port, address, bounce)
        assert (deferred.value.smtp_code, deferred.value.smtp_error[:5]) == (451, b"4.3.0")
        assert live.metric("bouncewire_mail_data_replies_total", reply="4xx") == 1
        with forwarding(gateway, (host, int(port))):
            # The sending MTA retries; bounded: reconnect backoff is 0.5 s in this producer.
            deadline = time.monotonic() + 60
            while True:
                try:
                    assert deliver(live.port, address, bounce) == {}
                    break
                except smtplib.SMTPDataError as exc:
                    assert exc.smtp_code == 451 and time.monotonic() < deadline
    reader = LiveService("", topics.send_results, kafka_bootstrap, Codec(SchemaStore.load()))
    records = [reader.decode(m) for m in reader.published_since([0] * 3)]
    # Every attempt's record carries the same id: the consumer drops any repeat.
    assert {r["email"] for r in records} == {email}
    assert len({r["event_id"] for r in records}) == 1
