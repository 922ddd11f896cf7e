"""GatewayRelay in-process against a scripted upstream and the real broker: the signed VERP
return path and RFC 8058 headers per recipient, a DKIM-signed message left alone, and a
retry after a relayed-but-unpublished transaction (not relayed twice, only published)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from bouncewire.kafka_client import KafkaProducer, KafkaSettings
from bouncewire.producers.acks import AcknowledgedPublisher
from bouncewire.producers.exceptions import PublishError
from bouncewire.producers.gateway import replies
from bouncewire.producers.gateway.metrics import GatewayMetrics
from bouncewire.producers.gateway.publish import AcknowledgedResults
from bouncewire.producers.gateway.relay import GatewayRelay, Personalization, RelayPolicy
from bouncewire.producers.signed_addresses import verify_address
from bouncewire.producers.smtp_capture import RelayConfig
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring, verify
from bouncewire.schemas import Codec, SchemaStore
from tests.producers.gateway.gateway_harness import ResultTopic
from tests.producers.smtp_server import Script, Transcript, scripted_smtp

pytestmark = pytest.mark.integration
KEYRING = Keyring.parse("k1:" + "s" * 40)
SENDER = "news@shop.example.com"
MESSAGE = (b"From: Shop <news@shop.example.com>\r\nTo: alice@mail.example.org\r\n"
           b"Message-ID: <r-1@shop.example.com>\r\nX-Campaign-ID: cmp-9\r\n"
           b"X-CleverTap_META: meta-9\r\nSubject: hi\r\n\r\nHello\r\n")
DKIM = (b"DKIM-Signature: v=1; a=rsa-sha256; d=shop.example.com; s=s1;"
        b" h=from:to:subject:list-unsubscribe:list-unsubscribe-post; bh=x; b=y\r\n")


class FlakyPublisher:
    """Fails the first `failures` publishes (the broker 'down'), then publishes for real."""

    def __init__(self, real: AcknowledgedResults, failures: int) -> None:
        self.real, self.failures = real, failures

    def publish(self, records: Sequence[dict[str, Any]], timeout: float) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise PublishError("broker unreachable (simulated)")
        self.real.publish(records, timeout)


@pytest.fixture(scope="module")
def results(kafka_bootstrap: str) -> ResultTopic:
    return ResultTopic.create(kafka_bootstrap)


@pytest.fixture(scope="module")
def publisher(results: ResultTopic) -> Iterator[AcknowledgedResults]:
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=results.bootstrap))
    topics = {"send_result": results.name}
    real = AcknowledgedResults(AcknowledgedPublisher(producer, Codec(SchemaStore.load()), topics))
    yield real
    real.close()


@pytest.fixture
def upstream() -> Iterator[tuple[int, Transcript]]:
    with scripted_smtp(Script()) as running:
        yield running


def relay_for(port: int, publisher: Any, personal: Personalization | None = None) -> GatewayRelay:
    config = RelayConfig("127.0.0.1", port, timeout_s=2, security="none", helo_name="gw.test")
    return GatewayRelay(RelayPolicy(config, personal, publish_timeout_s=5), publisher,
                        GatewayMetrics())


def transact(relay: GatewayRelay, recipients: list[str], data: bytes) -> tuple[list[str], str]:
    transaction = relay.begin(SENDER, [])
    try:
        rcpt_replies = [relay.rcpt(transaction, rcpt) for rcpt in recipients]
        return rcpt_replies, relay.data(transaction, data)
    finally:
        transaction.close()


def test_verp_and_one_click_headers_per_recipient(
    upstream: tuple[int, Transcript], publisher: AcknowledgedResults, results: ResultTopic
) -> None:
    port, transcript = upstream
    personal = Personalization(KEYRING, "bounces.shop.example.com", "https://u.shop.example.com")
    start = results.end()
    rcpt_replies, data_reply = transact(relay_for(port, publisher, personal),
                                        ["alice@mail.example.org", "bob@mail.example.org"], MESSAGE)
    assert rcpt_replies == ["250 2.1.5 OK"] * 2 and data_reply.startswith("250 2.0.0 Ok")
    assert len(transcript.messages) == 2  # one upstream transaction per recipient
    # The last MAIL FROM of each leg (re-enveloped once the headers named campaign and meta).
    final_paths = transcript.mail_from[-2:]
    for recipient, path, data in zip(["alice@mail.example.org", "bob@mail.example.org"],
                                     final_paths, transcript.messages, strict=True):
        assert path.endswith("@bounces.shop.example.com")
        assert verify_address(KEYRING, path, "bounce") == Claims(recipient, "cmp-9", "meta-9")
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        token = str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1]
        assert verify(KEYRING, token) == Claims(recipient, "cmp-9", "meta-9")
    records = results.since(start)
    assert [(r["email"], r["smtp_code"], r["campaign_id"], r["meta"]) for r in records] == [
        ("alice@mail.example.org", 250, "cmp-9", "meta-9"),
        ("bob@mail.example.org", 250, "cmp-9", "meta-9")]


def test_dkim_signed_headers_are_left_alone(
    upstream: tuple[int, Transcript], publisher: AcknowledgedResults
) -> None:
    port, transcript = upstream
    personal = Personalization(KEYRING, None, "https://u.shop.example.com")
    transact(relay_for(port, publisher, personal), ["alice@mail.example.org"], DKIM + MESSAGE)
    assert transcript.messages == [DKIM + MESSAGE]  # byte for byte: the signature still holds
    assert transcript.mail_from == [SENDER]  # no VERP domain: the client's return path


def test_retry_after_unpublished_relays_once_and_publishes_the_kept_results(
    upstream: tuple[int, Transcript], publisher: AcknowledgedResults, results: ResultTopic
) -> None:
    port, transcript = upstream
    relay = relay_for(port, FlakyPublisher(publisher, failures=1))
    start = results.end()
    first = transact(relay, ["carol@mail.example.org"], MESSAGE)
    assert first == (["250 2.1.5 OK"], replies.NOT_PUBLISHED)
    assert len(transcript.messages) == 1 and results.end() == start
    second = transact(relay, ["carol@mail.example.org"], MESSAGE)  # CleverTap retries
    assert second == (["250 2.1.5 OK"], replies.ALREADY_RELAYED)
    assert len(transcript.messages) == 1  # not relayed again: the upstream saw RCPT, then RSET
    [record] = results.since(start)
    assert (record["email"], record["smtp_code"], record["message_id"]) == (
        "carol@mail.example.org", 250, "<r-1@shop.example.com>")
    # Once more (its reply lost again): still the same transaction, still not relayed.
    third = transact(relay, ["carol@mail.example.org"], MESSAGE)
    assert third == (["250 2.1.5 OK"], replies.ALREADY_RELAYED)
    assert len(transcript.messages) == 1 and results.end() == start + 1


def test_a_deferred_message_is_relayed_again_on_retry(
    publisher: AcknowledgedResults, results: ResultTopic
) -> None:
    script = Script(data="452 4.3.1 Insufficient system storage")
    with scripted_smtp(script) as (port, transcript):
        relay = relay_for(port, publisher)
        first = transact(relay, ["gina@mail.example.org"], MESSAGE)
        script.data = "250 2.0.0 Ok: queued"
        second = transact(relay, ["gina@mail.example.org"], MESSAGE)
        third = transact(relay, ["gina@mail.example.org"], MESSAGE)  # reply lost: a repeat
    assert first[1].startswith("452") and second[1].startswith("250 2.0.0 Ok")
    assert third[1] == second[1]
    assert len(transcript.messages) == 1  # the 452 received nothing; the repeat not relayed
