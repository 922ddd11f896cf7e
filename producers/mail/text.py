"""Text helpers every format module shares: addresses, SMTP replies, codes, dates, failures.

Pure functions over decoded text; nothing here raises on odd input. Bounce text is written by
hundreds of programs, so each helper looks for the evidence where real MTAs put it and prefers
the most specific reading (a reply with its enhanced code over a bare number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses, mktime_tz, parsedate_tz
from functools import lru_cache
from typing import Final

from bouncewire.producers.smtp_errors import MAX_REPLY_TEXT, enhanced_code

# Whole addresses only; the local part may be UTF-8 (RFC 6531), the domain needs a dot. A
# quote before the address is no part of it ('user@example.com'), nor Exchange 2003's X.400
# "SMTP=" prefix (dda:SMTP=user@example.com).
ADDRESS: Final = re.compile(
    r"(?:(?<=[Ss][Mm][Tt][Pp]=)|(?<![\w.!#$%&*+/=?^`{|}~-])(?![Ss][Mm][Tt][Pp]=))"
    r"([\w!#$%&*+/=?^`{|}~-][\w.!#$%&'*+/=?^`{|}~-]{0,63}@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24})"
    r"(?![\w-]|\.[\w-])"
)
# RFC 3463 code inside text: not part of an IP address, a version ("v5.1.1") or a longer code.
_ENHANCED: Final = re.compile(r"(?<![A-Za-z0-9.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
# A reply code followed by its enhanced code: the surest sign of a quoted SMTP reply.
_CODE_AND_ENHANCED: Final = re.compile(
    r"(?<![\w.#-])#?([245][0-5]\d)(?:-| +|-?\s*#)'?([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)"
)
# A reply code where an MTA quotes one: after "said:", "<<<", "reason:", Exchange's "#", ...
_CODE_AFTER_MARKER: Final = re.compile(
    r"(?:said|returned|reply|response|responded|reason|error|error_code|code|status|<<<|>>>"
    r"|smtp;|smtp error|(?:failed|rejected) with|#|[\]>] ?[:,])\s*[:=']?\s*\(?([245][0-5]\d)"
    r"(?![\d.:/%]|\s*(?:ms|bytes|seconds|minutes))",
    re.IGNORECASE,
)
# A reply code opening a line: "550 5.1.1 ...", "550-Mailbox unknown", "554 delivery error".
_CODE_AT_LINE_START: Final = re.compile(r"(?m)^[ \t>]*([245][0-5]\d)(?:[ :-](?=\s*\S)|$)")
_ENHANCED_AT_LINE_START: Final = re.compile(r"(?m)^[ \t>*-]*([245]\.\d{1,3}\.\d{1,3})\s")
# Continuation prefixes of a multi-line reply ("550-5.1.1 ") repeated inside the text.
_CONTINUATION: Final = re.compile(r"(?<=\s)[245][0-5]\d[- ](?:[245]\.\d{1,3}\.\d{1,3} )?")
_SPACES: Final = re.compile(r"\s+")
# A reply ends with its paragraph, or where qmail and Exim go on about their own retries.
_REPLY_END: Final = re.compile(
    r"\n[ \t]*\n|\n(?=Giving up on|I'm not going to try again|No action is required"
    r"|----- |--- |\[ ?Original|Original message|[ \t]*(?:Additional Information|Sent <<<"
    r"|Received >>>)|[ \t]*(?:Remote system|Remote-MTA|Reporting-MTA|Original address"
    r"|Recipient address|Diagnostic[ -]code|Final-Recipient|Action|Status|Last-Attempt-Date"
    r"|Received|Message-ID|Return-Path|From|Subject|Date|Remote Host):)",
    re.IGNORECASE,
)

# Transport failures named instead of a reply (the schema's SmtpError symbols), first match wins.
_TRANSPORT_FAILURES: Final = (
    ("connection_refused", re.compile(r"connection refused|refused to talk|refused connect", re.I)),
    (
        "timeout",
        re.compile(
            r"timed out|(?:connection|connect|read|write|session|smtp|conversation|command|data"
            r"|greeting|banner) ?time-?out|no response from|not responding|no answer from",
            re.I,
        ),
    ),
    (
        "dns_failure",
        re.compile(
            r"host or domain name not found|name service error|name server|no mx |mx record"
            r"|dns (?:error|failure|lookup|problem)|unable to resolve|nxdomain|unrout[e]?able"
            r"|host not found|domain (?:name )?not found|no such domain|unknown host|host unknown"
            r"|cannot find your hostname|no (?:a|mx) record",
            re.I,
        ),
    ),
    (
        "tls_failure",
        re.compile(r"\b(?:starttls|tls|ssl)\b|certificate|handshake", re.I),
    ),
    (
        "connection_reset",
        re.compile(
            r"connection reset|lost connection|connection (?:was )?(?:closed|dropped|lost)"
            r"|broken pipe|connection terminated|network is unreachable|no route to host"
            r"|connection (?:error|failure|failed)|could not connect|unable to connect"
            r"|can't connect|cannot connect",
            re.I,
        ),
    ),
)
# Words saying the failure is final or not, when no code says it (qmail, Exim, Sendmail...).
_PERMANENT_WORDS: Final = re.compile(
    r"permanent(?:ly)?|fatal|i've given up|giving up|failed permanently|does not exist"
    r"|not delivered|(?:could|has) not been delivered|undeliverable|unknown user|user unknown"
    r"|no such user|no user by that name|no longer valid|not going to try again",
    re.I,
)
_TEMPORARY_WORDS: Final = re.compile(
    r"temporar(?:y|ily)|delay(?:ed)?|deferred|will (?:be )?retr(?:y|ied)|still trying|"
    r"has not yet been delivered|not yet been delivered|retrying|will keep trying"
    r"|warning:",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply (or its remains) as the text quotes it."""

    code: int | None
    enhanced: str | None
    message: str | None


NO_REPLY: Final = Reply(None, None, None)


def clean(text: str) -> str:
    """One line: whitespace runs collapsed, bounded like every reply text."""
    return _SPACES.sub(" ", text).strip()[:MAX_REPLY_TEXT]


def addresses(text: str) -> list[str]:
    """Every address in `text`, in order of appearance, without repeats (case-insensitive)."""
    seen: dict[str, str] = {}
    for found in ADDRESS.finditer(text):
        address = found.group(1).strip(".")
        seen.setdefault(address.lower(), address)
    return list(seen.values())


def first_address(text: str | None) -> str | None:
    """The first address in a header or field value ("rfc822; <a@b>", "Name <a@b>")."""
    if not text:
        return None
    found = ADDRESS.search(text)
    return found.group(1).strip(".") if found else None


def header_addresses(text: str | None) -> list[str]:
    """The addresses of an address header (To:, Return-Path:). A signed VERP or mailto address
    has a local part longer than the 64 octets ADDRESS allows (docs/mail.md) and is ours to
    recognise: when ADDRESS misses an "@", RFC 5322 parsing (email.utils) reads the header."""
    if not text:
        return []
    found = addresses(text)
    if text.count("@") <= len(found):
        return found  # the usual case, without stdlib's slower (pure Python) parser
    try:
        parsed = [a for _, a in getaddresses([text]) if "@" in a and " " not in a]
    except Exception:  # stdlib's header parsing on hostile input: keep what the pattern found
        parsed = []
    return parsed or found


def find_enhanced(text: str, reply_class: int | None = None) -> str | None:
    """The most specific RFC 3463 code in `text`: X.0.0 and 4.4.7 only if nothing better.

    With `reply_class`, only codes of that class count ("550 ... 4.2.2" contradicts itself).
    """
    generic: str | None = None
    for found in _ENHANCED.finditer(text):
        if reply_class is not None and int(found[1]) != reply_class:
            continue
        code = found.group(0)
        if (found[2] == "0" and found[3] == "0") or code == "4.4.7":
            generic = generic or code
            continue
        return code
    return generic


# A parse reads the same diagnosis several times (status field, human text, the evidence).
# parse_message clears the cache per message: only those repeats are saved, not replies of
# earlier messages (which would flatter a benchmark that parses the same corpus round).
@lru_cache(maxsize=256)
def find_reply(text: str) -> Reply:
    """The first failure reply quoted in `text` (a 2xx only when there is none: a transcript
    quotes "<<< 250 2.1.0 Sender ok" before the "<<< 550 5.1.1" that failed): its code,
    enhanced code and text from there on."""
    found = _first_failure(text)
    if found is None:
        enhanced = find_enhanced(text)
        opening = _ENHANCED_AT_LINE_START.search(text) if enhanced else None
        if opening is not None:  # "-- 5.4.1 Recipient address rejected": the reply starts there
            text = _until_paragraph_end(text[opening.start(1) :])
        return Reply(None, enhanced, clean(text).lstrip(":;,- ") or None)
    code = int(found.group(1))
    rest = _until_paragraph_end(text[found.end(1) :].lstrip(" -#:',;"))
    if text[found.end(1) : found.end(1) + 1] in ("]", ")") and not _has_words(
        rest.split("\n", 1)[0]
    ):
        # The code closes its line ("mailbox unavailable. [SMTP Error Code 550]"): the
        # words before it on that line are the reply.
        rest = text[text.rfind("\n", 0, found.start(1)) + 1 : found.end(1)]
    message = clean(_CONTINUATION.sub(" ", " " + rest)) if rest else ""
    enhanced = enhanced_code(code, message) or find_enhanced(text, code // 100)
    if not message:
        message = clean(text)
    return Reply(code, enhanced, message.rstrip("'\" ").lstrip(":;, ") or None)


def _first_failure(text: str) -> re.Match[str] | None:
    """The first reply by the surest pattern that finds one, preferring 4xx/5xx to 2xx."""
    success: re.Match[str] | None = None
    for pattern in (_CODE_AND_ENHANCED, _CODE_AFTER_MARKER, _CODE_AT_LINE_START):
        for found in pattern.finditer(text):
            if found.group(1)[0] != "2":
                return found
            success = success or found
    return success


def _has_words(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 3


def _until_paragraph_end(text: str) -> str:
    end = _REPLY_END.search(text)
    return text[: end.start()] if end else text


def transport_failure(text: str) -> str | None:
    """The schema's SmtpError symbol for a failure the text names instead of a reply."""
    for symbol, pattern in _TRANSPORT_FAILURES:
        if pattern.search(text):
            return symbol
    return None


def permanence_in_words(text: str) -> int | None:
    """5 when the text says the failure is final, 4 when it says delivery goes on, else None."""
    if _TEMPORARY_WORDS.search(text) and not _PERMANENT_WORDS.search(text):
        return 4
    if _PERMANENT_WORDS.search(text):
        return 5
    return None


def date_ms(value: str | None) -> int | None:
    """An RFC 5322 date as epoch milliseconds; None if absent or unreadable."""
    if not value:
        return None
    try:
        parts = parsedate_tz(value.strip())
        if parts is None:
            return None
        return int(mktime_tz(parts)) * 1000
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
