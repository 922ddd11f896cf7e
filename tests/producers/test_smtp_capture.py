"""SMTP send capture: real smtplib sessions against scripted servers on loopback, every
result published to the real broker, read back, decoded with the contract's codec and
classified; plus the pure reply/exception mapping."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.kafka_client import KafkaProducer, KafkaSettings, Secret, TopicNames, create_topics
from bouncewire.producers import EventPublisher, InvalidEventError, parse_send_result
from bouncewire.producers.smtp_capture import CapturingSender, RelayConfig, SendOutcome, envelope_of
from bouncewire.producers.smtp_errors import enhanced_code, error_kind, from_exception, from_reply
from bouncewire.schemas import Codec, SchemaStore
from bouncewire.schemas.classification import classify
from tests.kafka_cluster import end_offset, values_since
from tests.producers.smtp_server import (
    ACCEPTED,
    DROP,
    QUEUED,
    STALL,
    Script,
    free_port,
    raw_greeting,
    scripted_smtp,
    self_signed_cert,
)

NOW_S = 1_760_000_000.0
CLIENT_TIMEOUT_S = 1.0
SENDER = "news@shop.example.com"
PASSWORD = "pa55-w0rd-never-shown"


# ------------------------------------------------------------------ broker plumbing


@dataclass
class SendResultTopic:
    """A one-partition send-results topic and the publisher writing to it."""

    bootstrap: str
    name: str
    publisher: EventPublisher
    codec: Codec

    def end_offset(self) -> int:
        return end_offset(self.bootstrap, self.name)

    def records_since(self, start: int) -> list[dict[str, Any]]:
        """Exactly the records from `start` to the end offset (taken after the flush)."""
        values = values_since(self.bootstrap, self.name, start)
        return [self.codec.decode(value).record for value in values]


@pytest.fixture(scope="module")
def send_results(kafka_bootstrap: str) -> Iterator[SendResultTopic]:
    name = f"smtp-capture-{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    create_topics(settings, [name], partitions=1)
    codec = Codec(SchemaStore.load())
    publisher = EventPublisher(KafkaProducer(settings), codec, TopicNames(send_results=name))
    yield SendResultTopic(kafka_bootstrap, name, publisher, codec)
    publisher.flush(10.0)


@dataclass
class Sent:
    outcomes: list[SendOutcome]
    records: list[dict[str, Any]]


def send_and_read(topic: SendResultTopic, relay: RelayConfig, message: EmailMessage,
                  **options: Any) -> Sent:
    start = topic.end_offset()
    outcomes = CapturingSender(relay, topic.publisher, clock=lambda: NOW_S).send(
        message, **options)
    topic.publisher.flush(10.0)
    records = topic.records_since(start)
    assert records == [outcome.record for outcome in outcomes]  # published == returned
    return Sent(outcomes, records)


def relay_at(port: int, **overrides: Any) -> RelayConfig:
    settings: dict[str, Any] = {"port": port, "timeout_s": CLIENT_TIMEOUT_S,
                                "security": "none", "helo_name": "bouncewire.test"}
    return RelayConfig(host="127.0.0.1", **(settings | overrides))


def message_to(*local_parts: str, message_id: str | None = "<m-1@shop.example.com>",
               bcc: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Shop <{SENDER}>"
    message["To"] = ", ".join(f"{part}@mail.example.org" for part in local_parts)
    if bcc is not None:
        message["Bcc"] = bcc
    if message_id is not None:
        message["Message-ID"] = message_id
    message["Subject"] = "Your weekly deals"
    message.set_content("Hello,\n.\nA line with only a dot above.\n")
    return message


def summary(outcome: SendOutcome) -> tuple[Any, ...]:
    record, verdict = outcome.record, outcome.classification
    return (record["smtp_code"], record["enhanced_code"], record["error"], verdict.bounce,
            verdict.error_class)


# ------------------------------------------------------------------ one recipient, by RCPT reply

USER_UNKNOWN = "550 5.1.1 <alice@mail.example.org>: Recipient address rejected: User unknown"

RCPT_TABLE = [
    # (RCPT script, code, enhanced, error, bounce, error_class)
    (ACCEPTED, 250, "2.0.0", None, "none", None),
    (USER_UNKNOWN, 550, "5.1.1", None, "hard", "invalid_email_id"),
    ("452 4.2.2 Mailbox full", 452, "4.2.2", None, "soft", "dispatching_failed"),
    ("421 4.3.2 Service not available, closing channel", 421, "4.3.2", None, "soft",
     "dispatching_failed"),
    (DROP, None, None, "connection_reset", "soft", "connection_error"),
    (STALL, None, None, "timeout", "soft", "timeout"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("script", "code", "enhanced", "error", "bounce", "error_class"),
                         RCPT_TABLE, ids=["250", "550-5.1.1", "452-4.2.2", "421", "drop",
                                          "stall"])
def test_rcpt_reply_becomes_the_event(send_results: SendResultTopic, script: str,
                                      code: int | None, enhanced: str | None,
                                      error: str | None, bounce: str,
                                      error_class: str | None) -> None:
    with scripted_smtp(Script(rcpt={"alice": script})) as (port, _):
        sent = send_and_read(send_results, relay_at(port), message_to("alice"),
                             campaign_id="cmp-7", meta="m:42")
    [record], [outcome] = sent.records, sent.outcomes
    assert summary(outcome) == (code, enhanced, error, bounce, error_class)
    assert record["email"] == "alice@mail.example.org"
    assert record["event_time"] == int(NOW_S * 1000)
    assert (record["message_id"], record["campaign_id"], record["meta"]) == (
        "<m-1@shop.example.com>", "cmp-7", "m:42")
    assert record["remote_mta"] == "127.0.0.1"
    if code is not None:  # the reply text is carried as the server wrote it
        expected_text = (QUEUED if code == 250 else script)[4:]
        assert record["smtp_message"] == expected_text
    assert outcome.delivered is (code == 250)


# ------------------------------------------------------------------ several recipients


@pytest.mark.integration
def test_each_refused_recipient_gets_its_own_result(send_results: SendResultTopic) -> None:
    script = Script(rcpt={"bob": USER_UNKNOWN.replace("alice", "bob")})
    with scripted_smtp(script) as (port, transcript):
        sent = send_and_read(send_results, relay_at(port), message_to("alice", "bob", "carol"))
    assert [r["email"].partition("@")[0] for r in sent.records] == ["alice", "bob", "carol"]
    assert [summary(o) for o in sent.outcomes] == [
        (250, "2.0.0", None, "none", None),
        (550, "5.1.1", None, "hard", "invalid_email_id"),
        (250, "2.0.0", None, "none", None),
    ]
    assert len(transcript.messages) == 1  # one DATA for the two accepted recipients
    assert len({r["event_id"] for r in sent.records}) == 3


@pytest.mark.integration
def test_421_at_rcpt_ends_the_session_for_everyone_left(send_results: SendResultTopic) -> None:
    with scripted_smtp(Script(rcpt={"bob": "421 4.7.0 Too many errors"})) as (port, transcript):
        sent = send_and_read(send_results, relay_at(port), message_to("alice", "bob", "carol"))
    # alice was accepted but the transaction never completed: nobody got the message.
    assert [summary(o) for o in sent.outcomes] == [(421, "4.7.0", None, "soft",
                                                    "dispatching_failed")] * 3
    assert [a.partition("@")[0] for a in transcript.rcpt] == ["alice", "bob"]
    assert transcript.messages == []


DATA_TABLE = [
    ("554 5.7.1 Message rejected as spam", 554, "5.7.1", None, "soft"),
    ("452 4.3.1 Insufficient system storage", 452, "4.3.1", None, "soft"),
    (DROP, None, None, "connection_reset", "soft"),
    (STALL, None, None, "timeout", "soft"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("script", "code", "enhanced", "error", "bounce"), DATA_TABLE,
                         ids=["554", "452", "drop", "stall"])
def test_data_reply_applies_to_every_accepted_recipient(
        send_results: SendResultTopic, script: str, code: int | None, enhanced: str | None,
        error: str | None, bounce: str) -> None:
    with scripted_smtp(Script(rcpt={"bob": USER_UNKNOWN}, data=script)) as (port, _):
        sent = send_and_read(send_results, relay_at(port), message_to("alice", "bob", "carol"))
    alice, bob, carol = (summary(o)[:4] for o in sent.outcomes)
    assert alice == carol == (code, enhanced, error, bounce)
    assert bob == (550, "5.1.1", None, "hard")


@pytest.mark.integration
def test_user_unknown_words_are_hard_at_rcpt_and_soft_after_data(
        send_results: SendResultTopic) -> None:
    """The capture knows which command a reply answered: words alone ("no such user") are
    hard only to RCPT, and the record carries 5.1.1 so the consumer, which has no command,
    reads the same verdict (docs/classification.md, "The SMTP command")."""
    words = "550 no such user here"
    script = Script(rcpt={"bob": words}, data="554 delivery error: dd This user doesn't have "
                                              "a mail.example.org account")
    with scripted_smtp(script) as (port, _):
        sent = send_and_read(send_results, relay_at(port), message_to("alice", "bob"))
    alice, bob = (summary(o) for o in sent.outcomes)
    assert bob == (550, "5.1.1", None, "hard", "invalid_email_id")
    assert alice == (554, None, None, "soft", "dispatching_failed")
    for record, outcome in zip(sent.records, sent.outcomes, strict=True):
        assert classify(record["email"], record["smtp_code"], record["enhanced_code"],
                        record["smtp_message"], record["error"]) == outcome.classification


# ------------------------------------------------------------------ before any recipient


@pytest.mark.integration
def test_mail_from_refusal_is_never_a_hard_bounce(send_results: SendResultTopic) -> None:
    # The 5.1.1 is about our sender; blaming the recipients would unsubscribe them.
    with scripted_smtp(Script(mail="550 5.1.1 <news@shop.example.com>: no such user")) as (
            port, transcript):
        sent = send_and_read(send_results, relay_at(port), message_to("alice", "bob"))
    assert [(o.record["smtp_code"], o.classification.bounce) for o in sent.outcomes] == [
        (550, "soft"), (550, "soft")]
    assert transcript.rcpt == []


GREETING_TABLE = [
    (b"421 4.3.2 Service not available\r\n", 421, "4.3.2", None, "soft", "dispatching_failed"),
    (b"554 5.7.1 No SMTP service here\r\n", 554, "5.7.1", None, "soft", "dispatching_failed"),
    (None, None, None, "timeout", "soft", "timeout"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("greeting", "code", "enhanced", "error", "bounce", "error_class"),
                         GREETING_TABLE, ids=["421", "554", "silent"])
def test_greeting_other_than_220(send_results: SendResultTopic, greeting: bytes | None,
                                 code: int | None, enhanced: str | None, error: str | None,
                                 bounce: str, error_class: str | None) -> None:
    with raw_greeting(greeting) as port:
        sent = send_and_read(send_results, relay_at(port), message_to("alice", "bob"))
    assert [summary(o) for o in sent.outcomes] == [
        (code, enhanced, error, bounce, error_class)] * 2


@pytest.mark.integration
def test_connection_refused(send_results: SendResultTopic) -> None:
    sent = send_and_read(send_results, relay_at(free_port()), message_to("alice"))
    assert [summary(o) for o in sent.outcomes] == [
        (None, None, "connection_refused", "soft", "connection_error")]


@pytest.mark.integration
def test_refused_auth_is_our_problem_not_a_bounce(send_results: SendResultTopic,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bouncewire.producers")
    script = Script(credentials=("relay-user", "the-right-one"))
    with scripted_smtp(script) as (port, transcript):
        relay = relay_at(port, username="relay-user", password=Secret(PASSWORD))
        sent = send_and_read(send_results, relay, message_to("alice", "bob"))
    assert [summary(o) for o in sent.outcomes] == [
        (535, "5.7.8", "auth_failure", "none", "connection_error")] * 2
    assert transcript.logins and set(transcript.logins) == {b"relay-user"}
    assert transcript.rcpt == []
    assert_nothing_secret_in(our_log(caplog), repr(relay), repr(sent.outcomes))


@pytest.mark.integration
def test_accepted_auth_then_delivery(send_results: SendResultTopic,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bouncewire.producers")
    with scripted_smtp(Script(credentials=("relay-user", PASSWORD))) as (port, _):
        relay = relay_at(port, username="relay-user", password=Secret(PASSWORD))
        sent = send_and_read(send_results, relay, message_to("alice"))
    assert [summary(o) for o in sent.outcomes] == [(250, "2.0.0", None, "none", None)]
    assert_nothing_secret_in(our_log(caplog), repr(relay), repr(sent.outcomes))


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    """Our lines only (the test server logs every command it sees); there must be some."""
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("bouncewire.producers")]
    assert lines
    return "\n".join(lines)


def assert_nothing_secret_in(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text
        assert "alice@" not in text and "bob@" not in text
        assert "Recipient address rejected" not in text


# ------------------------------------------------------------------ TLS


@pytest.mark.integration
def test_starttls_required_but_not_offered(send_results: SendResultTopic) -> None:
    with scripted_smtp(Script()) as (port, transcript):
        sent = send_and_read(send_results, relay_at(port, security="starttls"),
                             message_to("alice"))
    assert [summary(o) for o in sent.outcomes] == [
        (None, None, "tls_failure", "soft", "connection_error")]
    assert transcript.rcpt == []  # nothing went out in clear


@pytest.mark.integration
@pytest.mark.parametrize("security", ["starttls", "implicit_tls"])
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_tls_certificate(send_results: SendResultTopic, tmp_path: Path, security: str,
                         trusted: bool) -> None:
    cert = self_signed_cert(tmp_path)
    if cert is None:
        pytest.skip("needs the openssl command to make a certificate")
    client_context = cert.client_context() if trusted else ssl.create_default_context()
    server_context = cert.server_context()
    script = (Script(tls_context=server_context) if security == "starttls"
              else Script(implicit_tls=server_context))
    with scripted_smtp(script) as (port, transcript):
        relay = relay_at(port, security=security, ssl_context=client_context)
        sent = send_and_read(send_results, relay, message_to("alice"))
    expected = (250, "2.0.0", None) if trusted else (None, None, "tls_failure")
    assert [summary(o)[:3] for o in sent.outcomes] == [expected]
    assert len(transcript.messages) == (1 if trusted else 0)


# ------------------------------------------------------------------ the message itself


@pytest.mark.integration
def test_message_id_is_generated_and_bcc_stays_hidden(send_results: SendResultTopic) -> None:
    message = message_to("alice", message_id=None, bcc="dave@mail.example.org")
    with scripted_smtp(Script()) as (port, transcript):
        sent = send_and_read(send_results, relay_at(port), message)
    message_id = message["Message-ID"]
    assert message_id and message_id.endswith("@shop.example.com>")
    assert [r["email"] for r in sent.records] == ["alice@mail.example.org",
                                                 "dave@mail.example.org"]
    assert {r["message_id"] for r in sent.records} == {message_id}
    [data] = transcript.messages
    assert message_id.encode() in data
    assert b"dave@" not in data  # Bcc is envelope only
    assert b"\r\n..\r\n" not in data and b"\n.\n" in data.replace(b"\r\n", b"\n")


def test_bad_recipient_fails_before_connecting() -> None:
    published: list[dict[str, Any]] = []
    sender = CapturingSender(relay_at(free_port()), published.append)
    with pytest.raises(InvalidEventError):
        sender.send(message_to("alice"), meta="x" * 70_000)
    with pytest.raises(ValueError, match="no recipient"):
        sender.send(message_to("alice"), to_addrs=[])
    assert published == []


def test_envelope_drops_duplicates_and_keeps_order() -> None:
    message = message_to("alice", "bob")
    message["Cc"] = "ALICE@mail.example.org, carol@mail.example.org"
    envelope = envelope_of(message)
    assert envelope.sender == SENDER
    assert [a.partition("@")[0] for a in envelope.recipients] == ["alice", "bob", "carol"]
    assert envelope.data.endswith(b"\r\n") and b"\r\n\r\n" in envelope.data


def test_relay_config_repr_hides_credentials() -> None:
    relay = relay_at(25, username="user@relay.example", password=Secret(PASSWORD))
    assert PASSWORD not in repr(relay) and "user@relay" not in repr(relay)
    with pytest.raises(ValueError, match="together"):
        relay_at(25, username="u")


# ------------------------------------------------------------------ pure mapping


def disconnected_after(cause: BaseException) -> smtplib.SMTPServerDisconnected:
    """What smtplib raises when reading a reply fails: the OSError is only the context."""
    try:
        try:
            raise cause
        except OSError:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")  # noqa: B904
    except smtplib.SMTPServerDisconnected as exc:
        return exc


ERROR_KIND_TABLE: list[tuple[BaseException, str | None]] = [
    (TimeoutError("timed out"), "timeout"),
    (TimeoutError(110, "Connection timed out"), "timeout"),
    (ConnectionRefusedError(111, "refused"), "connection_refused"),
    (ConnectionResetError(104, "reset"), "connection_reset"),
    (BrokenPipeError(32, "pipe"), "connection_reset"),
    (socket.gaierror(-2, "Name or service not known"), "dns_failure"),
    (ssl.SSLCertVerificationError("certificate verify failed"), "tls_failure"),
    (ssl.SSLError("wrong version number"), "tls_failure"),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), "connection_reset"),
    (disconnected_after(TimeoutError("timed out")), "timeout"),
    (disconnected_after(ConnectionResetError(104, "reset")), "connection_reset"),
    (disconnected_after(ssl.SSLError("bad record mac")), "tls_failure"),
    (ValueError("not ours"), None),
    (OSError(113, "No route to host"), None),
]


@pytest.mark.parametrize(("exc", "kind"), ERROR_KIND_TABLE,
                         ids=[f"{type(e).__name__}-{k}" for e, k in ERROR_KIND_TABLE])
def test_error_kind(exc: BaseException, kind: str | None) -> None:
    assert error_kind(exc) == kind


def test_replies_carried_by_exceptions() -> None:
    auth = from_exception(smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), "AUTH")
    greeting = from_exception(smtplib.SMTPConnectError(421, b"4.3.2 Try later"), "connect")
    data = from_exception(smtplib.SMTPDataError(554, b"5.7.1 Spam"), "DATA")
    assert auth is not None and (auth.smtp_code, auth.enhanced_code, auth.error) == (
        535, "5.7.8", "auth_failure")
    assert greeting is not None and (greeting.smtp_code, greeting.error) == (421, None)
    assert data is not None and data.smtp_message == "5.7.1 Spam"
    assert (auth.command, greeting.command, data.command) == ("AUTH", "CONN", "DATA")
    assert from_exception(KeyError("x"), "RCPT") is None


ENHANCED_TABLE = [
    (550, "5.1.1 <x@y.example>: Recipient address rejected", "5.1.1"),
    (452, "4.2.2 Mailbox full", "4.2.2"),
    (250, "2.0.0 Ok: queued", "2.0.0"),
    (450, "5.1.1 contradicts its basic code", None),
    (550, "Mailbox unavailable 5.1.1 later in the text", None),
    (550, "5.1.1.1 is not a code", None),
    (550, "", None),
    (421, "  4.4.2 leading spaces", "4.4.2"),
]


@pytest.mark.parametrize(("code", "text", "expected"), ENHANCED_TABLE)
def test_enhanced_code(code: int, text: str, expected: str | None) -> None:
    assert enhanced_code(code, text) == expected


@given(st.integers(min_value=-1, max_value=999), st.binary(max_size=300))
def test_any_reply_makes_a_publishable_result(code: int, raw: bytes) -> None:
    evidence = from_reply(code, raw)
    fields = {"email": "a@b.example", "smtp_code": evidence.smtp_code,
              "enhanced_code": evidence.enhanced_code, "smtp_message": evidence.smtp_message,
              "error": evidence.error}
    record = parse_send_result({k: v for k, v in fields.items() if v is not None}, now_ms=0)
    assert (record["smtp_code"] is None) is (not 200 <= code <= 599)


@given(st.sampled_from([e for e, k in ERROR_KIND_TABLE if k is not None]),
       st.sampled_from(["connect", "EHLO", "RCPT", "DATA"]))
def test_failures_say_where_without_saying_what(exc: BaseException, stage: str) -> None:
    evidence = from_exception(exc, stage)
    assert evidence is not None and evidence.smtp_message is not None
    assert evidence.smtp_message.startswith(f"{stage}: ")
    assert str(exc) not in evidence.smtp_message or not str(exc)

