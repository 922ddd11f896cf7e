"""Send a message through an SMTP relay and publish one send result per recipient.

`CapturingSender.send` drives smtplib command by command (connect, EHLO, STARTTLS, AUTH,
MAIL, RCPT per recipient, DATA) so each recipient's result comes from the reply that decided
it: a recipient refused at RCPT gets its own reply, the accepted ones share the DATA reply,
and a failure that ends the session (timeout, reset, 421, ...) settles everyone still open.
Every result is validated as a send-result event, handed to the sink (an EventPublisher or
any callable), classified like the consumer will, and returned. Nothing here logs an
address (masked), a reply text (it names recipients) or the relay password.
"""

from __future__ import annotations

import copy
import email.policy
import functools
import io
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any, Literal, TypeVar

from bouncewire.kafka_client import Secret
from bouncewire.producers import smtp_errors
from bouncewire.producers.events import parse_send_result
from bouncewire.producers.publisher import EventPublisher
from bouncewire.producers.smtp_errors import Evidence
from bouncewire.schemas.addresses import mask_address
from bouncewire.schemas.classification import Classification, classify

log = logging.getLogger(__name__)

ResultSink = Callable[[dict[str, Any]], None]
Security = Literal["starttls", "implicit_tls", "none"]
_T = TypeVar("_T")
# RFC 5321 §3.8: 421 means the server is closing the channel, whatever command it answers.
_CLOSING = 421
# Prefixed to a 5xx MAIL FROM reply: the refusal is about our sender, never the recipient,
# and the classifier reads "sender address" as exactly that (so never a hard bounce).
_SENDER_REFUSED = "sender address refused at MAIL FROM: "


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Where and how to submit mail. `timeout_s` bounds each connect, read and write."""

    host: str
    port: int = 587
    timeout_s: float = 30.0
    security: Security = "starttls"
    username: str | None = field(default=None, repr=False)
    password: Secret | None = None
    helo_name: str | None = None  # None: smtplib's default, the local FQDN
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """One recipient's published send-result record and how the consumer will classify it."""

    record: dict[str, Any] = field(repr=False)
    classification: Classification

    @property
    def email(self) -> str:
        return str(self.record["email"])

    @property
    def delivered(self) -> bool:
        code = self.record["smtp_code"]
        return code is not None and 200 <= code < 300

    def __repr__(self) -> str:
        return (
            f"SendOutcome(email={mask_address(self.email)!r}, "
            f"smtp_code={self.record['smtp_code']}, error={self.record['error']!r}, "
            f"classification={self.classification!r})"
        )


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope and the bytes of one message."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str
    mail_options: tuple[str, ...] = ()


class _SessionEnded(Exception):
    """The session cannot go on; every recipient not yet settled gets `evidence`."""

    def __init__(self, evidence: Evidence) -> None:
        super().__init__(evidence.error or evidence.smtp_code)
        self.evidence = evidence


class CapturingSender:
    """Sends through one relay; publishes and returns one SendOutcome per recipient."""

    def __init__(
        self,
        relay: RelayConfig,
        publisher: EventPublisher | ResultSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._relay = relay
        self._sink = _sink_of(publisher)
        self._clock = clock

    def send(
        self,
        message: EmailMessage,
        *,
        campaign_id: str | None = None,
        meta: str | None = None,
        from_addr: str | None = None,
        to_addrs: Sequence[str] | None = None,
    ) -> list[SendOutcome]:
        """Send `message` (given a Message-ID if it has none) and publish every result.

        Raises InvalidEventError before connecting if the results could not be published
        (an empty or control-character address, an oversized campaign_id or meta), and
        ValueError if there is no sender or recipient. The sink's errors propagate, and so
        does an exception that is no SMTP outcome (SMTPNotSupportedError for a non-ASCII
        envelope the relay cannot take without SMTPUTF8): then nothing is published.
        """
        envelope = envelope_of(message, from_addr, to_addrs)
        extra = {"message_id": envelope.message_id, "campaign_id": campaign_id, "meta": meta}
        self._check_publishable(envelope.recipients, extra)
        evidence = self._attempt(envelope)
        now_ms = int(self._clock() * 1000)
        return [
            self._publish(recipient, found, extra, now_ms)
            for recipient, found in zip(envelope.recipients, evidence, strict=True)
        ]

    # ------------------------------------------------------------------ publishing

    def _check_publishable(self, recipients: Iterable[str], extra: dict[str, str | None]) -> None:
        """Validate every future record now, so a bad input fails before anything is sent."""
        check_publishable(self._relay.host, recipients, extra)

    def _publish(
        self, recipient: str, evidence: Evidence, extra: dict[str, str | None], now_ms: int
    ) -> SendOutcome:
        outcome = outcome_of(self._relay.host, recipient, evidence, extra, now_ms)
        self._sink(outcome.record)
        log_outcome(outcome)
        return outcome

    # ------------------------------------------------------------------ the SMTP session

    def _attempt(self, envelope: Envelope) -> list[Evidence]:
        settled: list[Evidence | None] = [None] * len(envelope.recipients)
        session = RelaySession(self._relay)
        try:
            session.open_or_raise()
            session.converse(envelope, settled)
        except _SessionEnded as end:
            session.ended = end.evidence
            settled = [found or end.evidence for found in settled]
        finally:
            session.close()
        return [found for found in settled if found is not None]


class RelaySession:
    """One session with the relay, driven a command at a time.

    `CapturingSender` runs a whole transaction through it; the SMTP gateway
    (producers/gateway) relays each of its client's commands as it arrives, so the client
    gets the relay's own reply per recipient. The step methods never raise for an SMTP
    outcome: they return its Evidence, and once the session broke (`ended` is set) every
    later step returns that same evidence without touching the socket. Blocking (smtplib):
    call it from one thread at a time.
    """

    def __init__(self, relay: RelayConfig) -> None:
        self._relay = relay
        self._client: smtplib.SMTP | None = None
        self.ended: Evidence | None = None

    @property
    def relay(self) -> RelayConfig:
        return self._relay

    def open(self) -> Evidence | None:
        """Connect, EHLO, STARTTLS and AUTH as configured; None when ready for MAIL."""
        return self._guard(self.open_or_raise)

    def mail(self, sender: str, options: Sequence[str] = ()) -> Evidence:
        """MAIL FROM; a refusal ends the session (it is the sender's, for every recipient).

        Of `options` (a client's MAIL parameters), only those of an extension the relay
        advertised are passed on: SIZE=, BODY= (8BITMIME), SMTPUTF8.
        """

        def mail_from() -> Evidence:
            client = self._require_client()
            kept = tuple(option for option in options if _advertised(client, option))
            return _mail_from(client, Envelope(sender, (), b"", "", kept))

        return self._guard(mail_from)

    def rcpt(self, recipient: str) -> Evidence:
        return self._guard(lambda: _rcpt_one(self._require_client(), recipient))

    def data(self, data: bytes) -> Evidence:
        client = self._require_client
        return self._guard(
            lambda: _reply_or_end(*_step("DATA", lambda: client().data(data)), "DATA")
        )

    def reset(self) -> Evidence:
        """RSET: drop the open transaction (the session stays usable)."""
        client = self._require_client
        return self._guard(lambda: _reply_or_end(*_step("RSET", lambda: client().docmd("RSET"))))

    def close(self) -> None:
        """QUIT after a whole session; just close after one that broke (it would only stall)."""
        if self._client is not None:
            _hang_up(self._client, polite=self.ended is None)
            self._client = None

    # Used by CapturingSender, which settles recipients from the raised _SessionEnded.
    def open_or_raise(self) -> None:
        self._client = self._connect()
        client = self._client
        _step("EHLO", client.ehlo_or_helo_if_needed)
        if self._relay.security == "starttls":
            _step("STARTTLS", lambda: self._starttls(client))
            # RFC 3207 §4.2: forget what was learnt before TLS and ask again.
            _step("EHLO", client.ehlo_or_helo_if_needed)
        if self._relay.username is not None and self._relay.password is not None:
            user, password = self._relay.username, self._relay.password
            _step("AUTH", lambda: _login(client, user, password))

    def converse(self, envelope: Envelope, settled: list[Evidence | None]) -> None:
        client = self._require_client()
        _mail_from(client, envelope)
        accepted = _rcpt_each(client, envelope.recipients, settled)
        if accepted:
            code, text = _step("DATA", lambda: client.data(envelope.data))
            reply = _reply_or_end(code, text, "DATA")
            for index in accepted:
                settled[index] = reply

    def _guard(self, action: Callable[[], _T]) -> _T | Evidence:
        """Run a step; a session-ending failure is remembered and becomes the answer."""
        if self.ended is not None:
            return self.ended
        try:
            return action()
        except _SessionEnded as end:
            self.ended = end.evidence
            return end.evidence

    def _require_client(self) -> smtplib.SMTP:
        if self._client is None:
            raise RuntimeError("RelaySession.open() first")
        return self._client

    def _connect(self) -> smtplib.SMTP:
        try:
            return _step("connect", self._open)
        except smtplib.SMTPException:
            raise
        except OSError as exc:
            # EHOSTUNREACH, ENETUNREACH and kin: the relay could not be reached at all.
            raise _SessionEnded(
                smtp_errors.failure("connection_refused", f"connect: {type(exc).__name__}")
            ) from exc

    def _open(self) -> smtplib.SMTP:
        """Connect in the constructor: only then does smtplib know the host name TLS checks
        the certificate against. A greeting other than 220 raises SMTPConnectError."""
        relay = self._relay
        if relay.security == "implicit_tls":
            return smtplib.SMTP_SSL(
                relay.host,
                relay.port,
                local_hostname=relay.helo_name,
                timeout=relay.timeout_s,
                context=relay.ssl_context,
            )
        return smtplib.SMTP(
            relay.host, relay.port, local_hostname=relay.helo_name, timeout=relay.timeout_s
        )

    def _starttls(self, client: smtplib.SMTP) -> None:
        try:
            client.starttls(context=self._relay.ssl_context)
        except smtplib.SMTPNotSupportedError as exc:
            raise _SessionEnded(
                smtp_errors.failure("tls_failure", "STARTTLS: not offered by the relay")
            ) from exc
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPResponseException as exc:
            raise _SessionEnded(
                smtp_errors.from_reply(exc.smtp_code, exc.smtp_error, "tls_failure")
            ) from exc


def result_fields(
    remote_mta: str, recipient: str, evidence: Evidence, extra: dict[str, str | None]
) -> dict[str, Any]:
    """The send-result input object for one recipient's evidence (Nones left out), with the
    command the reply answered (parse_send_result turns a verdict resting on it, "550 user
    unknown" to RCPT, into the status it implies: the record has no field for commands)."""
    fields: dict[str, Any] = {
        "email": recipient,
        "smtp_code": evidence.smtp_code,
        "enhanced_code": evidence.enhanced_code,
        "smtp_message": evidence.smtp_message,
        "error": evidence.error,
        "smtp_command": evidence.command,
        "remote_mta": remote_mta,
        **extra,
    }
    return {key: value for key, value in fields.items() if value is not None}


def check_publishable(
    remote_mta: str, recipients: Iterable[str], extra: dict[str, str | None]
) -> None:
    """Raise InvalidEventError now if a record for any recipient could not be published."""
    placeholder = smtp_errors.failure("timeout")
    for recipient in recipients:
        parse_send_result(result_fields(remote_mta, recipient, placeholder, extra), now_ms=0)


def outcome_of(
    remote_mta: str,
    recipient: str,
    evidence: Evidence,
    extra: dict[str, str | None],
    now_ms: int,
) -> SendOutcome:
    """The validated send-result record for one recipient, classified like the consumer will."""
    fields = result_fields(remote_mta, recipient, evidence, extra)
    record = parse_send_result(fields, now_ms=now_ms)
    return SendOutcome(record, _classify(record))


def log_outcome(outcome: SendOutcome) -> None:
    record = outcome.record
    log.info(
        "smtp send result: recipient=%s code=%s enhanced=%s error=%s bounce=%s reason=%s",
        mask_address(outcome.email),
        record["smtp_code"],
        record["enhanced_code"],
        record["error"],
        outcome.classification.bounce,
        outcome.classification.reason,
    )


def envelope_of(
    message: EmailMessage, from_addr: str | None = None, to_addrs: Sequence[str] | None = None
) -> Envelope:
    """Envelope as smtplib.send_message builds it (Sender or From; To, Cc, Bcc), without the
    Bcc header in the data, duplicates dropped. Sets a Message-ID on `message` if absent."""
    sender = from_addr or _first_address(message.get_all("Sender") or message.get_all("From"))
    if not sender:
        raise ValueError("the message has no sender (From or Sender)")
    recipients = _unique(to_addrs if to_addrs is not None else _header_recipients(message))
    if not recipients:
        raise ValueError("the message has no recipient (To, Cc or Bcc)")
    if message["Message-ID"] is None:
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    international = not all(address.isascii() for address in (sender, *recipients))
    options = ("SMTPUTF8", "BODY=8BITMIME") if international else ()
    return Envelope(
        sender,
        recipients,
        _message_bytes(message, international),
        str(message["Message-ID"]),
        options,
    )


def _sink_of(publisher: EventPublisher | ResultSink) -> ResultSink:
    if isinstance(publisher, EventPublisher):
        return lambda record: publisher.publish("send_result", record)
    return publisher


def _classify(record: dict[str, Any]) -> Classification:
    return classify(
        record["email"],
        record["smtp_code"],
        record["enhanced_code"],
        record["smtp_message"],
        record["error"],
    )


def _step(stage: str, action: Callable[[], _T]) -> _T:
    """Run one SMTP command; a failure smtp_errors understands ends the session."""
    try:
        return action()
    except _SessionEnded:
        raise
    except Exception as exc:
        evidence = smtp_errors.from_exception(exc, stage)
        if evidence is None:
            raise
        raise _SessionEnded(evidence) from exc


def _reply_or_end(code: int, text: bytes, command: str | None = None) -> Evidence:
    """A reply (to `command`) to keep; a malformed or closing (421) one ends the session for
    everyone."""
    evidence = smtp_errors.from_reply(code, text, command=command)
    if evidence.smtp_code is None or evidence.smtp_code == _CLOSING:
        raise _SessionEnded(evidence)
    return evidence


def _login(client: smtplib.SMTP, username: str, password: Secret) -> None:
    try:
        client.login(username, password.reveal())
    except (smtplib.SMTPResponseException, smtplib.SMTPServerDisconnected):
        raise  # a 535 and friends carry their reply; _step maps them
    except smtplib.SMTPException as exc:
        # AUTH not offered, or no mechanism in common: we cannot log in either way.
        raise _SessionEnded(
            smtp_errors.failure("auth_failure", "AUTH: no usable mechanism offered")
        ) from exc


def _mail_from(client: smtplib.SMTP, envelope: Envelope) -> Evidence:
    """The accepted reply; a refusal ends the session (every recipient shares it)."""
    code, text = _step("MAIL", lambda: client.mail(envelope.sender, list(envelope.mail_options)))
    reply = _reply_or_end(code, text, "MAIL")
    if reply.accepted:
        return reply
    if code >= 500:
        reply = replace(reply, smtp_message=_SENDER_REFUSED + (reply.smtp_message or ""))
    raise _SessionEnded(reply)


_EXTENSION_OF_OPTION = {"SIZE": "size", "BODY": "8bitmime", "SMTPUTF8": "smtputf8"}


def _advertised(client: smtplib.SMTP, option: str) -> bool:
    extension = _EXTENSION_OF_OPTION.get(option.partition("=")[0].upper())
    return extension is not None and client.has_extn(extension)


def _rcpt_one(client: smtplib.SMTP, recipient: str) -> Evidence:
    code, text = _step("RCPT", functools.partial(client.rcpt, recipient))
    return _reply_or_end(code, text, "RCPT")


def _rcpt_each(
    client: smtplib.SMTP, recipients: Sequence[str], settled: list[Evidence | None]
) -> list[int]:
    """RCPT TO for each recipient; the refused are settled with their reply. Returns the
    indexes of the accepted ones, which DATA decides."""
    accepted: list[int] = []
    for index, recipient in enumerate(recipients):
        reply = _rcpt_one(client, recipient)
        if reply.accepted:
            accepted.append(index)
        else:
            settled[index] = reply
    return accepted


def _hang_up(client: smtplib.SMTP, *, polite: bool) -> None:
    """QUIT after a whole session; just close after one that broke (it would only stall)."""
    try:
        if polite:
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass  # the results are already known; a failing QUIT changes none of them
    finally:
        client.close()


def _first_address(values: Sequence[str] | None) -> str | None:
    pairs = getaddresses([str(value) for value in values or ()])
    return next((address for _, address in pairs if address), None)


def _header_recipients(message: EmailMessage) -> list[str]:
    values = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name) or ()]
    return [address for _, address in getaddresses(values) if address]


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    unique: list[str] = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return tuple(unique)


def _message_bytes(message: EmailMessage, international: bool) -> bytes:
    without_bcc = copy.copy(message)
    del without_bcc["Bcc"]
    del without_bcc["Resent-Bcc"]
    # RFC 5321 wants CRLF; SMTPUTF8 lets non-ASCII headers through unencoded (RFC 6532).
    policy = email.policy.SMTPUTF8 if international else email.policy.SMTP
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=policy).flatten(without_bcc, linesep="\r\n")
    return buffer.getvalue()
