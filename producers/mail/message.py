"""The MIME walk: one message's bytes → the parts the format modules read. Never raises.

The stdlib `email` package with the compat32 policy parses anything (it records defects
instead of raising) and leaves headers as text we decode ourselves, so one broken RFC 2047
word or charset costs that word, not the message. Bodies are decoded from base64 and
quoted-printable; text in an unknown or wrong charset is decoded with replacement.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.header
import email.policy
import html
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Final

# Deeper nesting than this is no bounce anyone sends; stop rather than recurse without end.
_MAX_DEPTH: Final = 8
_TAGS: Final = re.compile(r"<(?:style|script)\b.*?</(?:style|script)>|<[^>]*>", re.I | re.S)
_BREAKS: Final = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.I)
_DELIVERY_STATUS: Final = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ORIGINAL_MESSAGE: Final = frozenset({"message/rfc822", "message/global", "message/partial"})
_ORIGINAL_HEADERS: Final = frozenset({"text/rfc822-headers", "message/global-headers"})
_FEEDBACK: Final = "message/feedback-report"
_DISPOSITION: Final = "message/disposition-notification"
_REPORT_TYPE: Final = re.compile(r"report-type\s*=\s*\"?([\w.-]+)", re.IGNORECASE)
_CHARSET: Final = re.compile(r"charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)


@dataclass
class Mail:
    """What the format modules see of one message."""

    message: Message
    content_type: str = "text/plain"
    report_type: str = ""
    texts: list[str] = field(default_factory=list)  # human-readable parts, in order
    delivery_status: list[str] = field(default_factory=list)  # each status part as text
    feedback_report: str | None = None
    disposition: str = ""  # an MDN's fields (RFC 8098): a read receipt, or a Sieve reject
    original: Message | None = None  # the returned message/rfc822
    original_headers: str | None = None  # text/rfc822-headers
    original_sender: str | None = None  # the returned original's From: (set by original_of)
    problems: list[str] = field(default_factory=list)
    _raw_headers: dict[str, str] | None = None
    _decoded: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        """A header of the report itself, RFC 2047 decoded; "" when absent."""
        key = name.lower()
        value = self._decoded.get(key)
        if value is None:
            if self._raw_headers is None:
                self._raw_headers = raw_headers(self.message)
            value = self._decoded[key] = decode_header(self._raw_headers.get(key))
        return value

    _body: str | None = None
    _lower_body: str | None = None

    @property
    def body(self) -> str:
        """The human-readable text, all parts joined."""
        if self._body is None:
            self._body = "\n".join(self.texts)
        return self._body

    @property
    def lower_body(self) -> str:
        if self._lower_body is None:
            self._lower_body = self.body.lower()
        return self._lower_body

    def mentions(self, *phrases: str) -> bool:
        """Whether the text holds any of the lower-case `phrases`."""
        body = self.lower_body
        return any(phrase in body for phrase in phrases)

    def header_has(self, name: str, *phrases: str) -> bool:
        """Whether header `name` holds any of the lower-case `phrases`."""
        value = self.header(name).lower()
        return any(phrase in value for phrase in phrases)


def raw_headers(message: Message) -> dict[str, str]:
    """Each header's first value as it came (compat32's get() turns 8-bit text into U+FFFD)."""
    headers: dict[str, str] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.lower(), value if isinstance(value, str) else str(value))
    return headers


def load(raw: bytes) -> Mail:
    """Parse `raw` into a Mail; a message that cannot be parsed becomes an empty one."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # the parser records defects instead; this is the last resort
        message = Message()
        mail = Mail(message)
        mail.problems.append("unparseable")
        return mail
    return from_message(message)


def from_message(message: Message) -> Mail:
    """The Mail of an already parsed message (a report forwarded inside another one)."""
    mail = Mail(message, content_type=_content_type(message))
    mail.report_type = _report_type(message)
    if message.defects:
        mail.problems.append("mime_defects")
    _collect(message, mail, 0, top=True)
    return mail


def _report_type(message: Message) -> str:
    found = _REPORT_TYPE.search(str(message.get("content-type", "")))
    return found.group(1).lower() if found else ""


def _content_type(part: Message) -> str:
    """The part's media type, read from the raw header (get_content_type() is the slowest
    call of a parse); RFC 2045's text/plain when missing or malformed."""
    value = part.get("content-type")
    if value is None:
        return part.get_default_type()
    media = str(value).split(";", 1)[0].strip().lower()
    return media if media.count("/") == 1 else "text/plain"


def _collect(part: Message, mail: Mail, depth: int, top: bool = False) -> None:
    """Sort each part into the Mail: human text, status fields, feedback, the original."""
    if depth > _MAX_DEPTH:
        mail.problems.append("too_deep")
        return
    ctype = _content_type(part)
    if ctype in _DELIVERY_STATUS:
        mail.delivery_status.append(_fields_text(part))
    elif ctype == _FEEDBACK:
        mail.feedback_report = _fields_text(part)
    elif ctype == _DISPOSITION:
        mail.disposition = _fields_text(part)
    elif ctype in _ORIGINAL_MESSAGE and not top:
        _keep_original(part, mail)
    elif ctype in _ORIGINAL_HEADERS and not top:
        _keep_original_headers(part, mail)
    elif part.is_multipart():
        for sub in _subparts(part):
            _collect(sub, mail, depth + 1)
    elif ctype == "text/html":
        if not any(text.strip() for text in mail.texts):  # unless plain text said it first
            mail.texts.append(html_to_text(part_text(part)))
    elif ctype.startswith(("text/", "message/")) or top:
        mail.texts.append(part_text(part))


def _subparts(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _keep_original(part: Message, mail: Mail) -> None:
    if mail.original is not None:
        return
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        mail.original = payload[0]
    else:  # an encoded or unparsed original: parse its text
        try:
            text = part_text(part)
            mail.original = email.message_from_string(text, policy=email.policy.compat32)
        except Exception:  # an original we cannot read costs the original, not the report
            mail.problems.append("unreadable_original")


def _keep_original_headers(part: Message, mail: Mail) -> None:
    """text/rfc822-headers is text; compat32 parses message/global-headers as a message."""
    payload = part.get_payload()
    if isinstance(payload, list):
        if payload and isinstance(payload[0], Message) and mail.original is None:
            mail.original = payload[0]
        return
    mail.original_headers = mail.original_headers or part_text(part)


def _fields_text(part: Message) -> str:
    """A field-block part (delivery-status, feedback-report) as text, however it was parsed.

    compat32 splits message/delivery-status into one sub-message per block and parses the
    RFC 6533 global twin as one message (first block as its header); both become text again.
    """
    payload = part.get_payload()
    if not isinstance(payload, list):
        return part_text(part)
    blocks = [_block_text(block) for block in payload if isinstance(block, Message)]
    text = _lf("\n\n".join(blocks))
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    return _decode_transfer(text, encoding) if encoding in ("base64", "quoted-printable") else text


def _block_text(block: Message) -> str:
    lines = [f"{name}: {value}" for name, value in block.raw_items()]
    # The raw payload: get_payload() decodes 8-bit text as ASCII with U+FFFD for every byte.
    body = getattr(block, "_payload", None)
    if isinstance(body, str) and body.strip():
        lines.append("")
        lines.append(body)
    elif isinstance(body, list):
        lines.extend(_block_text(sub) for sub in body if isinstance(sub, Message))
    return unsurrogate("\n".join(lines))


def _decode_transfer(text: str, encoding: str) -> str:
    try:
        raw = text.encode("ascii", "ignore")
        if encoding == "base64":
            return base64.b64decode(raw + b"==", validate=False).decode("utf-8", "replace")
        return quopri.decodestring(raw).decode("utf-8", "replace")
    except (ValueError, binascii.Error):
        return text


def part_text(part: Message) -> str:
    """A leaf part's body as text: transfer-decoded, then charset-decoded with replacement,
    line ends made "\n" (mail arrives with CRLF; the patterns look for blank lines)."""
    try:
        raw = part.get_payload(decode=True)
    except Exception:
        raw = None
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return _lf(unsurrogate(payload)) if isinstance(payload, str) else ""
    return _lf(decode_bytes(raw, _charset(part)))


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _charset(part: Message) -> str | None:
    found = _CHARSET.search(str(part.get("content-type", "")))
    return found.group(1).lower() if found else None


def decode_bytes(raw: bytes, charset: str | None) -> str:
    """Bytes in a declared (maybe wrong or unknown) charset, else UTF-8, else Windows-1252."""
    if charset:
        try:
            codecs.lookup(charset)
            return raw.decode(charset, "replace")
        except (LookupError, ValueError):
            pass
    if b"\x1b$B" in raw or b"\x1b$@" in raw:  # undeclared ISO-2022-JP (Japanese carriers)
        try:
            return raw.decode("iso-2022-jp")
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def unsurrogate(text: str) -> str:
    """compat32 keeps undecodable 8-bit bytes as surrogates: make them UTF-8 or U+FFFD."""
    if text.isascii():
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return decode_bytes(raw, None)


def decode_header(value: object) -> str:
    """A header value with its RFC 2047 words decoded; never raises, "" when absent."""
    if value is None:
        return ""
    text = unsurrogate(str(value))
    if "=?" not in text:
        return text.strip()
    try:
        return str(email.header.make_header(email.header.decode_header(text))).strip()
    except Exception:  # a broken encoded word: keep the text as it came
        return text.strip()


def html_to_text(markup: str) -> str:
    """Just enough HTML → text for the patterns to see the words and line breaks."""
    return html.unescape(_TAGS.sub(" ", _BREAKS.sub("\n", markup)))
