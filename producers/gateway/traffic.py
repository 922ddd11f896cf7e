"""Simulated CleverTap traffic over SMTP (`bouncewire simulate --via-gateway`), and the
stand-in receiving relay the demo puts behind the gateway.

`GatewayTraffic` sends each simulated send result as a small message through the gateway,
like CleverTap does: STARTTLS, AUTH, one recipient per message, X-CleverTap_META and the
campaign in headers, several connections at once. `DemoRelayHandler` is an aiosmtpd handler
answering each RCPT the way a real receiving server would (`simulate.simulated_reply`).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from bouncewire.producers.headers import CAMPAIGN_HEADER, META_HEADER
from bouncewire.producers.simulate import SimulatedEvent, simulated_reply

SENDER = "news@demo.bouncewire.test"


@dataclass(frozen=True, slots=True)
class GatewayLogin:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    ca_file: str | None = None  # None: the gateway's certificate is not verified (demo only)


class GatewayTraffic:
    """`submit(event)` queues one message; `close()` waits for all. Thread-safe counters."""

    def __init__(self, login: GatewayLogin, connections: int = 4) -> None:
        self._login = login
        self._pool = ThreadPoolExecutor(connections, thread_name_prefix="simulate-smtp")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[smtplib.SMTP] = []
        self.replies: dict[int, int] = {}  # client-visible outcome code → messages

    def submit(self, event: SimulatedEvent) -> None:
        self._pool.submit(self._send, event)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for client in self._clients:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _send(self, event: SimulatedEvent) -> None:
        try:
            client = self._client()
        except (smtplib.SMTPException, OSError):
            client = None  # counted as a broken connection; the next message tries again
        code = _outcome(client, _message(event.fields)) if client is not None else 0
        with self._lock:
            self.replies[code] = self.replies.get(code, 0) + 1
        if code in (0, 421):
            self._local.client = None  # broken: the next message reconnects

    def _client(self) -> smtplib.SMTP:
        client: smtplib.SMTP | None = getattr(self._local, "client", None)
        if client is None:
            client = _connect(self._login)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client


def _connect(login: GatewayLogin) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=login.ca_file)
    if login.ca_file is None:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    client = smtplib.SMTP(login.host, login.port, timeout=30)
    client.starttls(context=context)
    client.login(login.username, login.password)
    return client


def _message(fields: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Demo shop <{SENDER}>"
    message["To"] = fields["email"]
    message["Subject"] = "Simulated campaign"
    message["Message-ID"] = make_msgid(domain="demo.bouncewire.test")  # unique, like CleverTap's
    message[CAMPAIGN_HEADER] = fields.get("campaign_id") or "demo-campaign"
    message[META_HEADER] = fields.get("meta") or "demo-meta"
    message.set_content("Simulated traffic from bouncewire simulate --via-gateway.\n")
    return message


def _outcome(client: smtplib.SMTP, message: EmailMessage) -> int:
    """The code the client saw for its one recipient (0: the connection broke)."""
    try:
        client.send_message(message)
        return 250
    except smtplib.SMTPRecipientsRefused as exc:
        return int(next(iter(exc.recipients.values()))[0])
    except smtplib.SMTPResponseException as exc:
        _reset(client)
        return int(exc.smtp_code)
    except (smtplib.SMTPException, OSError):
        return 0


def _reset(client: smtplib.SMTP) -> None:
    try:
        client.rset()
    except (smtplib.SMTPException, OSError):
        pass  # the next message finds out and reconnects


class DemoRelayHandler:
    """aiosmtpd handler: each RCPT answered as simulated, every message accepted."""

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = simulated_reply(address)
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "250 2.0.0 Ok: queued"
