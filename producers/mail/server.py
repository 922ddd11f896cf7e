"""`bouncewire mail serve`: the inbound SMTP server (aiosmtpd) of the bounce/unsubscribe domain.

- RCPT: only addresses at the served domain(s); anything else 550 5.7.1. Nothing received here
  is ever sent on, so the server cannot relay; the refusal says so to the sender at once.
- DATA: parse, convert, publish every event and answer 250 only once Kafka acknowledged them
  all; otherwise 451 4.3.0, and the sending MTA retries (the event ids are stable, so a record
  that did land before the 451 comes back as a repeat the consumer drops).
- A message no format recognises is accepted (retrying would not make it parseable), counted,
  and written to the quarantine directory first when one is configured.

Logs carry counts, kinds and reasons; never an address, a token or the message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bouncewire.producers.exceptions import PublishError
from bouncewire.producers.mail.events import (
    Conversion,
    MailEvent,
    MailOptions,
    mail_events,
    message_key,
)
from bouncewire.producers.mail.metrics import MailMetrics
from bouncewire.producers.mail.report import MailReport
from bouncewire.producers.unsubscribe.tokens import Keyring

log = logging.getLogger("bouncewire.mail")

Parser = Callable[[bytes, int], MailReport]
ACCEPTED: Final = "250 2.0.0 Message accepted"
RECIPIENT_OK: Final = "250 2.1.5 Recipient OK"
NOT_OURS: Final = "550 5.7.1 Relaying denied: this server takes mail for its own domain only"
TOO_MANY: Final = "452 4.5.3 Too many recipients"
_RELAY_MARKS: Final = ("@", "%", "!", '"')
NOT_ACKNOWLEDGED: Final = "451 4.3.0 Temporary failure storing the message, try again later"


class Publisher(Protocol):
    def publish_all(self, events: Sequence[MailEvent], timeout: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ServeConfig:
    domains: frozenset[str]
    keyring: Keyring = field(repr=False)
    options: MailOptions = MailOptions()
    ack_timeout_s: float = 30.0
    max_recipients: int = 100
    quarantine: Path | None = None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class MailHandler:
    """aiosmtpd handler: RCPT and DATA hooks. Parsing and publishing run in worker threads."""

    def __init__(
        self,
        config: ServeConfig,
        parse: Parser,
        publisher: Publisher,
        metrics: MailMetrics,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._config = config
        self._parse = parse
        self._publisher = publisher
        self._metrics = metrics
        self._clock = clock

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self.is_ours(address):
            self._metrics.refused_recipients.inc()
            log.info("recipient refused: not at the served domain")
            return NOT_OURS
        if len(envelope.rcpt_tos) >= self._config.max_recipients:
            self._metrics.refused_recipients.inc()
            return TOO_MANY
        envelope.rcpt_tos.append(address)
        return RECIPIENT_OK

    def is_ours(self, address: str) -> bool:
        """An address at a served domain. Local parts with relay syntax (``a%b``, ``a!b``,
        ``"a@b"``) are refused too: nothing here is ever forwarded, but such a RCPT is a relay
        probe, and none of our own addresses looks like that."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not (at and local) or any(mark in local for mark in _RELAY_MARKS):
            return False
        return domain.lower().rstrip(".") in self._config.domains

    async def handle_DATA(  # noqa: N802 -- aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        recipients = tuple(envelope.rcpt_tos)
        reply = await asyncio.get_running_loop().run_in_executor(
            None, self.receive, data, recipients
        )
        self._metrics.answers.labels(reply[0] + "xx").inc()
        return reply

    def receive(self, raw: bytes, recipients: tuple[str, ...]) -> str:
        """Parse, keep, publish one message; the SMTP reply to give for it."""
        started = time.monotonic()
        received_ms = self._clock()
        conversion = self._convert(raw, recipients, received_ms)
        unparseable = conversion.kind == "unknown" and not conversion.events
        if unparseable and not self._quarantine(raw, received_ms):
            return NOT_ACKNOWLEDGED
        if conversion.events:
            try:
                self._publisher.publish_all(conversion.events, self._config.ack_timeout_s)
            except PublishError as exc:
                log.warning("events not acknowledged; answered 451", extra={"reason": str(exc)})
                return NOT_ACKNOWLEDGED
        self._metrics.ack_seconds.observe(time.monotonic() - started)
        self._account(conversion, unparseable)
        return ACCEPTED

    def _convert(self, raw: bytes, recipients: tuple[str, ...], received_ms: int) -> Conversion:
        try:
            report = self._parse(raw, received_ms)
        except Exception:  # the parser promises never to raise; a bug must not lose the mail
            log.exception("the mail parser raised; message treated as unknown")
            report = MailReport("unknown", problems=("parser_raised",))
        return mail_events(
            report,
            recipients,
            self._config.keyring,
            key=message_key(report, raw),
            now_ms=received_ms,
            options=self._config.options,
        )

    def _account(self, conversion: Conversion, unparseable: bool) -> None:
        self._metrics.count(conversion)
        self._metrics.published(conversion)
        if unparseable:
            self._metrics.parse_failures.inc()
        log.info(
            "message accepted",
            extra={
                "kind": conversion.kind,
                "events": len(conversion.events),
                "counted": list(conversion.notes),
            },
        )

    def _quarantine(self, raw: bytes, received_ms: int) -> bool:
        """Keep an unparseable message (durably) when a quarantine directory is set."""
        directory = self._config.quarantine
        if directory is None:
            return True
        try:
            write_quarantined(directory, raw, received_ms)
        except OSError as exc:
            log.error("cannot write to the quarantine; answered 451", extra={"reason": str(exc)})
            return False
        return True


def write_quarantined(directory: Path, raw: bytes, received_ms: int) -> Path:
    """Write `raw` as ``<ms>-<sha256 prefix>.eml``: written to a temporary name and fsynced,
    then renamed, so the directory never shows a half-written message."""
    name = f"{received_ms}-{hashlib.sha256(raw).hexdigest()[:16]}.eml"
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    partial = directory / ("." + name + ".tmp")
    with open(partial, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(final)
    return final


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int
    max_message_bytes: int = 10 * 1024 * 1024
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)
    server_name: str | None = None  # the greeting's host name; None: this machine's FQDN


@contextmanager
def running_server(handler: MailHandler, listener: Listener) -> Iterator[Controller]:
    """The handler behind aiosmtpd on `listener`, in aiosmtpd's own thread and event loop."""
    controller = Controller(
        handler,
        hostname=listener.host,
        port=listener.port,
        server_hostname=listener.server_name,
        data_size_limit=listener.max_message_bytes,  # advertised as SIZE, enforced: 552
        tls_context=listener.tls_context,  # STARTTLS offered when set
        enable_SMTPUTF8=True,  # RFC 6533 bounces of internationalised mail
        decode_data=False,
        timeout=300,  # RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
