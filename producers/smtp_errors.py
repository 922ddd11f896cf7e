"""SMTP replies and smtplib exceptions → the evidence a send result carries. Pure: no I/O.

A send result holds either a reply the server gave (code, enhanced code, text) or, when no
reply came, the kind of failure (`error`). Some failures have both: a 535 to AUTH is a reply
*and* an auth_failure. Reply text often names the recipient, so nothing here logs it.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from typing import Final

# The contract's bound on smtp_message is 64 KB; a reply worth reading fits in far less.
MAX_REPLY_TEXT: Final = 4096
# RFC 3463 §2: the enhanced code opens the reply text, "class.subject.detail".
_ENHANCED_AT_START: Final = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?![0-9.])", re.ASCII)
# The stages the SMTP capture names (its own step names) as the commands they send.
_COMMAND_OF_STAGE: Final = {
    "connect": "CONN",
    **{name: name for name in ("EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET")},
}
# Walking __context__ more than this deep means a loop or something we do not understand.
_MAX_CHAIN: Final = 8


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one recipient's attempt produced: a reply, a failure kind, or both."""

    smtp_code: int | None = None
    enhanced_code: str | None = None
    smtp_message: str | None = None
    error: str | None = None
    # The SMTP command the reply answered ("RCPT", "DATA", ...) when the source knows it:
    # classify makes "user unknown" in words alone hard only in a reply to RCPT.
    command: str | None = None

    @property
    def accepted(self) -> bool:
        """A 2xx reply (RFC 5321 §4.2.1: positive completion)."""
        return self.smtp_code is not None and 200 <= self.smtp_code < 300


def reply_text(raw: bytes | str) -> str:
    """Reply bytes as text: UTF-8 where it decodes, never raising, bounded in length."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:MAX_REPLY_TEXT]


def enhanced_code(smtp_code: int, text: str) -> str | None:
    """The RFC 3463 code opening the reply text ("5.1.1 <x>: Recipient address rejected").

    Only one whose class agrees with the basic code counts: "450 5.1.1" contradicts itself
    and RFC 5321 makes the basic code binding.
    """
    found = _ENHANCED_AT_START.match(text.lstrip())
    if found is None or int(found[1]) != smtp_code // 100:
        return None
    return found.group(0)


def is_valid_reply_code(code: int) -> bool:
    """smtplib returns -1 for a line without a numeric code; the contract wants 200..599."""
    return 200 <= code <= 599


def from_reply(
    code: int, raw_text: bytes | str, error: str | None = None, command: str | None = None
) -> Evidence:
    """Evidence of a server reply (to `command`, when known). A malformed code is a broken
    session: connection_reset."""
    text = reply_text(raw_text)
    if not is_valid_reply_code(code):
        return Evidence(
            smtp_message=f"malformed reply: {text}"[:MAX_REPLY_TEXT], error="connection_reset"
        )
    return Evidence(code, enhanced_code(code, text), text, error, command)


def failure(error: str, message: str | None = None) -> Evidence:
    """Evidence of a failure without a (usable) reply."""
    return Evidence(smtp_message=message, error=error)


def from_exception(exc: BaseException, stage: str) -> Evidence | None:
    """Evidence of an smtplib or socket failure during `stage` ("RCPT"); None if not one."""
    command = _COMMAND_OF_STAGE.get(stage)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return from_reply(exc.smtp_code, exc.smtp_error, "auth_failure", command)
    if isinstance(exc, smtplib.SMTPResponseException):
        # SMTPConnectError (a 421 greeting), SMTPHeloError, SMTPDataError: the server spoke.
        return from_reply(exc.smtp_code, exc.smtp_error, command=command)
    kind = error_kind(exc)
    return None if kind is None else failure(kind, f"{stage}: {_describe(exc)}")


def error_kind(exc: BaseException) -> str | None:
    """The contract's error kind for a transport failure, or None.

    smtplib hides the socket error: a read timeout or reset surfaces as
    SMTPServerDisconnected raised while handling the OSError, so the cause is looked up
    along __cause__/__context__ first and the disconnect itself comes last.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < _MAX_CHAIN:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for link in chain:
        kind = _socket_error_kind(link)
        if kind is not None:
            return kind
    if any(isinstance(link, smtplib.SMTPServerDisconnected) for link in chain):
        return "connection_reset"
    return None


def _socket_error_kind(exc: BaseException) -> str | None:
    # Order matters: SSLError and gaierror are OSErrors, TimeoutError is socket.timeout.
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "tls_failure"
    if isinstance(exc, socket.gaierror):
        return "dns_failure"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "connection_reset"
    return None


def _describe(exc: BaseException) -> str:
    """Exception type names along the chain ("SMTPServerDisconnected after TimeoutError"):
    never their text, which may hold a host, an address or a reply."""
    names: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(names) < _MAX_CHAIN:
        names.append(type(current).__name__)
        current = current.__cause__ or current.__context__
    return " after ".join(names)
