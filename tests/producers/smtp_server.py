"""Scripted SMTP servers on loopback for the send-capture tests.

`scripted_smtp(script)` runs a real aiosmtpd server whose replies to MAIL, RCPT (per
recipient local part) and DATA come from a `Script`: a reply line, DROP (abort the TCP
connection mid-session) or STALL (never answer). `raw_greeting(greeting)` is a bare socket
server for what aiosmtpd cannot script: a non-220 greeting, or none at all.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from reliability.support import free_port as free_port

DROP = "<drop the connection>"
STALL = "<never answer>"
ACCEPTED = "250 2.1.5 OK"
QUEUED = "250 2.0.0 Ok: queued as 4BwX2"
# Longer than any client timeout in the tests; the controller cancels it when it stops.
STALL_SECONDS = 30.0



@dataclass
class Script:
    """How the server answers. `rcpt` is keyed by the recipient's local part."""

    rcpt: dict[str, str] = field(default_factory=dict)
    mail: str = "250 2.1.0 OK"
    data: str = QUEUED
    credentials: tuple[str, str] | None = None  # offer AUTH, accept only these
    tls_context: ssl.SSLContext | None = None  # offer STARTTLS
    implicit_tls: ssl.SSLContext | None = None  # TLS from the first byte (port 465 style)


@dataclass
class Transcript:
    """What the server saw: senders and recipients tried, messages received, AUTH attempts."""

    rcpt: list[str] = field(default_factory=list)
    mail_from: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)


class ScriptedHandler:
    def __init__(self, script: Script, transcript: Transcript) -> None:
        self.script = script
        self.transcript = transcript

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        self.transcript.mail_from.append(address)
        reply = await perform(server, self.script.mail)
        if reply.startswith("250"):
            envelope.mail_from = address
        return reply

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self.transcript.rcpt.append(address)
        action = self.script.rcpt.get(address.partition("@")[0], ACCEPTED)
        reply = await perform(server, action)
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await perform(server, self.script.data)
        if reply.startswith("250"):
            self.transcript.messages.append(bytes(envelope.original_content or b""))
        return reply


async def perform(server: SMTP, action: str) -> str:
    if action == DROP:
        assert server.transport is not None
        server.transport.abort()  # no reply can follow: the write below is discarded
    elif action == STALL:
        await asyncio.sleep(STALL_SECONDS)
    return action


def authenticator_for(script: Script, transcript: Transcript) -> Any:
    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        transcript.logins.append(auth_data.login)
        given = (auth_data.login.decode(), auth_data.password.decode())
        # handled=False: aiosmtpd then answers 535 5.7.8 itself (True means "I replied").
        return AuthResult(success=given == script.credentials, handled=False)

    return authenticate


@contextmanager
def scripted_smtp(script: Script) -> Iterator[tuple[int, Transcript]]:
    """A running aiosmtpd server on 127.0.0.1: yields its port and its transcript."""
    transcript = Transcript()
    options: dict[str, Any] = {"ident": "scripted", "auth_require_tls": False}
    if script.credentials is not None:
        options["authenticator"] = authenticator_for(script, transcript)
    if script.tls_context is not None:
        options["tls_context"] = script.tls_context
    controller = Controller(ScriptedHandler(script, transcript), hostname="127.0.0.1",
                            port=free_port(), ready_timeout=5.0,
                            ssl_context=script.implicit_tls, **options)
    controller.start()
    try:
        yield controller.port, transcript
    finally:
        controller.stop()


@contextmanager
def raw_greeting(greeting: bytes | None) -> Iterator[int]:
    """A socket server that sends `greeting` (None: nothing) to each client, then holds
    the connection open until the test ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        held: list[socket.socket] = []
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if greeting is not None:
                conn.sendall(greeting)
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@dataclass(frozen=True)
class SelfSignedCert:
    certfile: Path
    keyfile: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts this certificate only (verification stays on)."""
        return ssl.create_default_context(cafile=str(self.certfile))


def self_signed_cert(directory: Path) -> SelfSignedCert | None:
    """A throwaway certificate for 127.0.0.1 made by the openssl CLI; None without it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert = SelfSignedCert(directory / "cert.pem", directory / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(cert.keyfile), "-out", str(cert.certfile)],
        check=True, capture_output=True, timeout=30,
    )
    return cert
