"""Classify one SMTP send result as a hard, soft or no bounce.

Pure code, no I/O; it runs once per event on the consumer's hot path, so everything is
prepared at import and the reply text (at most TEXT_SCAN_LIMIT characters) is split into
words once and looked up in an index of phrases by first word.
The policy and its sources (RFC 5321, RFC 3463, RFC 7505) are in docs/classification.md.
The rule that shapes everything: a hard bounce unsubscribes a real person in CleverTap,
so hard is reserved for "this address or its domain does not exist"; when unsure, soft.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from bouncewire.schemas.addresses import address_problem

BounceType = Literal["hard", "soft", "none"]
ErrorClass = Literal["invalid_email_id", "dispatching_failed", "connection_error", "timeout"]

# Longer texts are cut: every signal we look for sits in the first lines of a reply.
TEXT_SCAN_LIMIT: Final = 1024


@dataclass(frozen=True, slots=True)
class Classification:
    bounce: BounceType
    error_class: ErrorClass | None
    reason: str


def _soft(reason: str) -> Classification:
    return Classification("soft", "dispatching_failed", reason)


DELIVERED: Final = Classification("none", None, "delivered")
AUTH_FAILURE: Final = Classification("none", "connection_error", "auth_failure")
UNKNOWN: Final = _soft("unknown")
# One reason for every syntax or length defect keeps the reason set closed (metric labels).
INVALID_ADDRESS: Final = Classification("hard", "invalid_email_id", "invalid_syntax")
_HARD_USER_UNKNOWN: Final = Classification("hard", "invalid_email_id", "user_unknown")
_HARD_HOST_UNKNOWN: Final = Classification("hard", "dispatching_failed", "host_unknown")
_HARD_NULL_MX: Final = Classification("hard", "dispatching_failed", "null_mx")
# Text naming another cause than a missing address vetoes hard, whatever the code says:
# our own sender refused, a mail loop, or a DNS lookup that only failed for now.
_VETO_SIGNALS: Final = frozenset({"sender_rejected", "routing_failure", "dns_failure"})
_HARD_BY_SIGNAL: Final = {
    "user_unknown": _HARD_USER_UNKNOWN,
    "host_unknown": _HARD_HOST_UNKNOWN,
    "null_mx": _HARD_NULL_MX,
}

# Hard by enhanced code alone (RFC 3463 §3.2): the mailbox, its syntax or its system is bad.
_HARD_BY_ENHANCED: Final[dict[tuple[int, int], Classification]] = {
    (1, 1): _HARD_USER_UNKNOWN,
    (1, 2): _HARD_HOST_UNKNOWN,
    (1, 3): INVALID_ADDRESS,
    (1, 6): Classification("hard", "invalid_email_id", "mailbox_moved"),
}

# No reply from the server at all: the producer names what went wrong instead.
_WITHOUT_REPLY: Final[dict[str, Classification]] = {
    "timeout": Classification("soft", "timeout", "timeout"),
    "connection_refused": Classification("soft", "connection_error", "connection_refused"),
    "connection_reset": Classification("soft", "connection_error", "connection_reset"),
    "dns_failure": Classification("soft", "connection_error", "dns_failure"),
    "tls_failure": Classification("soft", "connection_error", "tls_failure"),
    # Our own relay refused our credentials: not the recipient's fault, nothing to report.
    "auth_failure": AUTH_FAILURE,
}
_UNKNOWN_ERROR: Final = Classification("soft", "connection_error", "unknown")

# RFC 4954: 530 = authentication required, 535 = credentials invalid (X.7.8). Both are our
# relay refusing us, the same fact as error "auth_failure".
_AUTH_REPLY_CODES: Final = frozenset({530, 535})

_ENHANCED_FIELD: Final = re.compile(r"\s*([245])\.([0-9]{1,3})\.([0-9]{1,3})\s*", re.ASCII)
# Inside text: "550 5.1.1 ...", "550-5.1.1 ...", qmail's "(#5.1.1)"; not part of an IP address.
_ENHANCED_IN_TEXT: Final = re.compile(
    r"(?<![0-9.])([245])\.([0-9]{1,3})\.([0-9]{1,3})(?![0-9]|\.[0-9])", re.ASCII
)

# Reply-text signals in priority order: when a text names several, the first listed wins.
# Phrases match whole words of the text as _words() normalises it: lower-case ASCII letters
# and digits, everything else a word break ("doesn't" -> "doesn t"). " … " joins parts that
# must all occur, in that order. Words, not regexes: CPython's re tries every alternative at
# every offset (~100 µs per KB of reply text); an index by first word costs a few.
_USER_UNKNOWN_PHRASES: Final = (
    *(
        f"{who} {verb}{what}"
        for who in ("user", "recipient", "addressee", "mailbox", "account")
        for verb in ("", "is ")
        for what in ("unknown", "not found", "not known")
    ),
    *(
        f"{who} {what}"
        for who in ("user", "recipient", "mailbox", "account")
        for what in ("does not exist", "doesn't exist")
    ),
    *(
        f"{adjective} {who}"
        for adjective in ("nonexistent", "non-existent")
        for who in ("user", "recipient", "mailbox", "address")
    ),
    "unknown user",
    "unknown recipient",
    "address unknown",
    "no such user",
    "no such recipient",
    "no such mailbox",
    "no such account",
    "no mailbox here by that name",
    "no user by that name",
    "invalid final delivery userid",  # IMail's answer for a local part it does not know
    "recipientnotfound",
    "recipnotfound",
    "exrecipnotfound",
    "invalid recipient",
    "invalid mailbox",
    "email account that you tried to reach does not exist",
    "user doesn't have a",
    "user doesn't have an",
    "not a valid recipient",
    "not a valid mailbox",
    "is not a valid user",
    "not listed in domino directory",  # Lotus Domino: no such person in its directory
    "not listed in public name",
    # The same in the languages bounces most often come in (words of ASCII letters only:
    # _words() breaks at every other character, so "Empfänger" cannot be a phrase).
    "benutzer unbekannt",
    "unbekannter benutzer",
    "utilisateur inconnu",
    "destinataire inconnu",
    "usuario desconocido",
    "utente sconosciuto",
    "onbekende gebruiker",
)
_SIGNAL_PHRASES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    # The sender (our MAIL FROM), not the recipient, is the problem: never hard.
    (
        "sender_rejected",
        (
            "sender address",
            "sender verify",
            "sender verification",
            "verification failed",
            "sender domain",
            "domain of sender",
        ),
    ),
    # A mail loop: the address is defined (an alias, a forward) but misrouted; the receiver
    # can fix that, so it is no proof that the address does not exist, whatever follows.
    (
        "routing_failure",
        (
            "forwarding loop",
            "suspected mail loop",
            "routing loop",
            "loop detected",
            "loops back to myself",
            "too many hops",
        ),
    ),
    # The resolver's TRY_AGAIN (SERVFAIL, no answer in time), not NXDOMAIN: the domain may
    # well exist. Listed before host_unknown, whose "host not found" these texts contain.
    # sender_rejected, routing_failure and dns_failure veto hard (_VETO_SIGNALS): they come
    # first, so that no other phrase in the same text can outrank them.
    (
        "dns_failure",
        (
            "host not found try again",
            "host name lookup failure",
            "host lookup did not complete",
        ),
    ),
    ("null_mx", ("null mx",)),
    (
        "host_unknown",
        (
            "unrouteable address",
            "unroutable address",
            "host unknown",
            "unknown host",
            "host not found",
            "domain not found",
            "domain name not found",
            "domain does not exist",
            "domain doesn't exist",
            "no such domain",
            "nonexistent domain",
            "non-existent domain",
            "nonexistentdomain",
            "infodomainnonexistent",
            "dns domain … does not exist",
        ),
    ),
    ("user_unknown", _USER_UNKNOWN_PHRASES),
    ("relay_denied", ("relay", "relaying", "rcpthosts")),
    (
        "greylisted",
        ("greylist", "greylisted", "greylisting", "graylist", "graylisted", "graylisting"),
    ),
    (
        "mailbox_full",
        (
            "quota",
            "over quota",
            "overquota",
            "mailbox full",
            "mailbox is full",
            "insufficient storage",
            "insufficient system storage",
            "exceeded storage",
            "mailbox size limit",
        ),
    ),
    ("mailbox_disabled", ("disabled", "inactive", "suspended", "deactivated")),
    (
        "message_too_large",
        ("too large", "too big", "size limit", "size limits", "size exceeds", "message size"),
    ),
    (
        "rate_limited",
        (
            "rate limit",
            "rate limited",
            "rate limiting",
            "ratelimit",
            "ratelimited",
            "too many",
            "unexpected volume",
            "unusual rate",
            "throttled",
            "throttling",
            "too quickly",
            "at a rate",
            "server busy",
        ),
    ),
    ("timeout", ("timeout", "timed out")),
    ("tls_failure", ("starttls", "tls")),
    (
        "policy",
        (
            "authenticate",
            "authenticated",
            "unauthenticated",
            "authentication",
            "dmarc",
            "spf",
            "dkim",
            "policy",
            "policies",
        ),
    ),
    (
        "blocked",
        (
            "blocked using",
            "blacklist",
            "blacklisted",
            "blocklist",
            "blocklisted",
            "block list",
            "banned",
            "spamhaus",
            "rbl",
            "dnsbl",
            "reputation",
        ),
    ),
    ("spam", ("spam", "unsolicited", "junk")),
    ("content_rejected", ("virus", "malware", "attachment", "content")),
    (
        "mailbox_unavailable",
        ("mailbox unavailable", "mailbox is unavailable", "mailbox not available"),
    ),
    (
        "blocked",
        ("block", "blocked", "denied", "refused", "not allowed", "prohibited", "prohibition"),
    ),
)
# A-Z -> a-z, a-z and 0-9 kept, every other byte (and "?" from non-ASCII) -> a space.
_WORD_BYTES: Final = bytes(
    byte + 32 if 65 <= byte <= 90 else byte if 48 <= byte <= 57 or 97 <= byte <= 122 else 32
    for byte in range(256)
)


def _words(text: str) -> list[bytes]:
    return text.encode("ascii", "replace").translate(_WORD_BYTES).split()


@dataclass(frozen=True, slots=True)
class _Signal:
    """One phrase of _SIGNAL_PHRASES, filed under its first word."""

    priority: int
    reason: str
    rest: bytes  # b" words after the first " of the phrase's first part; b" " if none
    later_parts: tuple[bytes, ...]  # b" further parts ", found in order after the first

    def occurs_at(self, padded_text: bytes, after_first_word: int) -> bool:
        if not padded_text.startswith(self.rest, after_first_word):
            return False
        position = after_first_word + len(self.rest) - 1
        for part in self.later_parts:
            position = padded_text.find(part, position)
            if position < 0:
                return False
            position += len(part) - 1  # the trailing space may start the next part
        return True


def _index_signals() -> dict[bytes, tuple[bytes, tuple[_Signal, ...]]]:
    """First word -> (b" word ", its phrases by priority): a text lacking a phrase's first
    word cannot contain it, so most texts only ever look at a handful of phrases."""
    index: dict[bytes, list[_Signal]] = {}
    for priority, (reason, phrases) in enumerate(_SIGNAL_PHRASES):
        for phrase in phrases:
            first, *later = (_words(part) for part in phrase.split(" … "))
            rest = b" %b " % b" ".join(first[1:]) if len(first) > 1 else b" "
            later_parts = tuple(b" %b " % b" ".join(part) for part in later)
            index.setdefault(first[0], []).append(_Signal(priority, reason, rest, later_parts))
    return {
        word: (b" %b " % word, tuple(sorted(found, key=lambda s: s.priority)))
        for word, found in index.items()
    }


_SIGNALS_BY_FIRST_WORD: Final = _index_signals()


# Soft reasons an enhanced code states precisely (RFC 3463 §3.2..3.9, RFC 7505 §4).
_REASON_BY_ENHANCED: Final[dict[tuple[int, int], str]] = {
    (1, 1): "user_unknown",
    (1, 2): "host_unknown",
    (1, 3): "invalid_syntax",
    (1, 6): "mailbox_moved",
    (1, 7): "sender_rejected",
    (1, 8): "sender_rejected",
    (1, 10): "null_mx",
    (2, 1): "mailbox_disabled",
    (2, 2): "mailbox_full",
    (2, 3): "message_too_large",
    (3, 4): "message_too_large",
    (4, 5): "system_error",  # mail system congestion
    (4, 7): "timeout",  # delivery time expired
    (7, 8): "auth_failure",
    # RFC 7372: X.7.20-X.7.27 are the sender-authentication failures (DKIM, SPF, PTR, ...).
    **{(7, detail): "policy" for detail in range(20, 28)},
}
# When neither the detail nor the text says more, the enhanced code's subject does.
_REASON_BY_SUBJECT: Final[dict[int, str]] = {
    2: "mailbox_unavailable",
    3: "system_error",
    4: "routing_failure",
    5: "protocol_error",
    6: "content_rejected",
    7: "blocked",
}
_REASON_BY_REPLY_CODE: Final[dict[int, str]] = {
    452: "mailbox_full",  # RFC 5321 §4.2.2: insufficient system storage
    552: "mailbox_full",  # exceeded storage allocation (size texts are caught earlier)
    500: "protocol_error",
    501: "protocol_error",
    502: "protocol_error",
    503: "protocol_error",
    504: "protocol_error",
}

# Every reason classify() can return, for consumers, metrics labels and tests.
REASONS: Final = frozenset(
    {"delivered", "invalid_syntax", "unknown", "temporary_failure"}
    | {reason for reason, _ in _SIGNAL_PHRASES}
    | set(_REASON_BY_ENHANCED.values())
    | set(_REASON_BY_SUBJECT.values())
    | set(_REASON_BY_REPLY_CODE.values())
    | {c.reason for c in _WITHOUT_REPLY.values()}
)
# Results are immutable, so one instance per reason serves every event.
_SOFT_BY_REASON: Final = {reason: _soft(reason) for reason in REASONS}


def classify(
    email: str,
    smtp_code: int | None,
    enhanced_code: str | None,
    smtp_message: str | None,
    error: str | None,
    *,
    command: str | None = None,
) -> Classification:
    """Classify one send result; never raises, whatever the inputs.

    `command` is the SMTP command the reply answered ("RCPT", "MAIL", "DATA", ...), None
    when the source does not know it: words alone ("user unknown") make a hard bounce only
    in a reply to RCPT (docs/classification.md, "The SMTP command").
    """
    if type(smtp_message) is str:
        smtp_message = smtp_message[:TEXT_SCAN_LIMIT]  # what is read, and what the cache keeps
    try:
        if command is None:  # the consumer's case: the same 4-argument cache key as ever
            verdict = _reply_verdict(smtp_code, enhanced_code, smtp_message, error)
        else:
            at_rcpt = _is_rcpt(command)
            verdict = _reply_verdict(smtp_code, enhanced_code, smtp_message, error, at_rcpt)
    except TypeError:  # an unhashable argument (not from the Avro decoder): skip the cache
        at_rcpt = command is not None and _is_rcpt(command)
        verdict = _reply_verdict.__wrapped__(smtp_code, enhanced_code, smtp_message, error, at_rcpt)
    if verdict is DELIVERED:
        return DELIVERED  # the server took it: nothing our own checks say can override that
    if _address_problem(email):
        return INVALID_ADDRESS
    return verdict


def _is_rcpt(command: object) -> bool:
    return type(command) is str and command.strip().upper() == "RCPT"


# The RFC 3463 code (§3.2) each hard reason of the reply stands for.
_STATUS_BY_HARD_REASON: Final = {
    "user_unknown": "5.1.1",
    "host_unknown": "5.1.2",
    "mailbox_moved": "5.1.6",
    "null_mx": "5.1.10",
}


def implied_enhanced_code(
    smtp_code: int | None,
    enhanced_code: str | None,
    smtp_message: str | None,
    error: str | None,
    *,
    command: str | None = None,
) -> str | None:
    """The enhanced code a reply's hard verdict stands for, for a record that carries no
    command: when the reply states none (or only the undefined X.0.0), since bounce texts
    often say "user unknown" in words alone; and, whatever it states, when the verdict rests
    on `command` (user-unknown words in a reply to RCPT under 5.2.1 or 5.7.1). Derived from
    the verdict, so classify(record filled with it) == classify(reply, command=command)."""
    if type(smtp_message) is str:
        smtp_message = smtp_message[:TEXT_SCAN_LIMIT]
    try:
        verdict = _reply_verdict(smtp_code, enhanced_code, smtp_message, error, _is_rcpt(command))
        if enhanced_code is not None and not enhanced_code.endswith(".0.0"):
            without = _reply_verdict(smtp_code, enhanced_code, smtp_message, error, False)
            if without == verdict:
                return None  # the stated code already gives this verdict: it stays
    except TypeError:  # an unhashable argument: nothing to imply from it
        return None
    return _STATUS_BY_HARD_REASON.get(verdict.reason) if verdict.bounce == "hard" else None


# Replies repeat (a provider sends the same few texts millions of times): cache the verdict
# on the reply alone (measured: 1.8 -> 0.9 µs per send result with the address check).
# Bounded: 4096 entries of at most TEXT_SCAN_LIMIT characters of text each, in memory only.
@lru_cache(maxsize=4096)
def _reply_verdict(
    smtp_code: object,
    enhanced_code: object,
    smtp_message: object,
    error: object,
    at_rcpt: bool = False,
) -> Classification:
    """What the reply (or its absence) says, before the address itself is looked at."""
    code = smtp_code if type(smtp_code) is int and 200 <= smtp_code <= 599 else None
    if code is not None and code < 300:
        return DELIVERED
    if code is None:
        return _without_reply(error)
    text = smtp_message if isinstance(smtp_message, str) else ""
    enhanced_field = enhanced_code if isinstance(enhanced_code, str) else None
    return _from_reply(code, _enhanced_code(enhanced_field, text, code // 100), text, at_rcpt)


def _address_problem(email: object) -> bool:
    """Whether the address breaks RFC 5321 syntax or length rules."""
    if not isinstance(email, str):
        return True
    try:
        return address_problem(email) is not None
    except Exception:  # classify must never raise; a validator crash is no proof of invalid
        return False


def _without_reply(error: object) -> Classification:
    if error is None:
        return UNKNOWN  # producers reject this; still answer rather than raise
    if not isinstance(error, str):
        return _UNKNOWN_ERROR
    return _WITHOUT_REPLY.get(error.strip().lower(), _UNKNOWN_ERROR)


def _enhanced_code(field: object, text: str, reply_class: int) -> tuple[int, int] | None:
    """(subject, detail) of the enhanced code: the field first, else the first in the text.

    A code whose class disagrees with the basic reply code (450 with 5.1.1) is contradicted
    evidence and is ignored: the basic code's class is the one RFC 5321 makes binding.
    """
    if isinstance(field, str):
        parsed = _parse_enhanced_field(field)
        if parsed is not None and parsed[0] == reply_class:
            return parsed[1:]
    if text and (found := _ENHANCED_IN_TEXT.search(text)) and int(found[1]) == reply_class:
        return int(found[2]), int(found[3])
    return None


@lru_cache(maxsize=512)  # a few dozen codes are common; garbage cannot grow the cache
def _parse_enhanced_field(field: str) -> tuple[int, int, int] | None:
    found = _ENHANCED_FIELD.fullmatch(field)
    return None if found is None else (int(found[1]), int(found[2]), int(found[3]))


def _from_reply(
    code: int, enhanced: tuple[int, int] | None, text: str, at_rcpt: bool
) -> Classification:
    words = _words(text) if text else []
    signal = _first_signal(words)
    if code >= 500:
        if code in _AUTH_REPLY_CODES or enhanced == (7, 8):
            return AUTH_FAILURE
        hard = _hard_bounce(code, enhanced, signal, words, at_rcpt)
        if hard is not None:
            return hard
    # RFC 5321 §4.2.1: 4yz is transient, whatever its text says; 3yz is no final answer.
    return _SOFT_BY_REASON[_soft_reason(code, enhanced, signal)]


def _hard_bounce(
    code: int,
    enhanced: tuple[int, int] | None,
    signal: str | None,
    words: list[bytes],
    at_rcpt: bool,
) -> Classification | None:
    """The hard result for a 5xx reply when the address or its domain does not exist."""
    if signal in _VETO_SIGNALS:
        return None  # the text names another cause, even if a recipient code sits next to it
    if enhanced is None and code == 556:
        return _HARD_NULL_MX  # RFC 7504/7505: 556 = domain does not accept mail
    if enhanced is not None:
        hard = _HARD_BY_ENHANCED.get(enhanced)
        if hard is not None:
            return hard
        if enhanced == (1, 10):
            # RFC 7505 registered X.1.10 for null MX; Microsoft 365 sends it for "recipient
            # not found". Both say the target does not exist; the text picks the class.
            return _HARD_USER_UNKNOWN if signal == "user_unknown" else _HARD_NULL_MX
    hard_by_text = _HARD_BY_SIGNAL.get(signal) if signal is not None else None
    if at_rcpt and signal == "mailbox_unavailable" and enhanced in (None, (0, 0)):
        # RFC 5321 §4.2.3's own text for 550 ("Requested action not taken: mailbox
        # unavailable") in a reply to RCPT, with no code saying more: the mailbox named by
        # RCPT is not there (Sisimai: userunknown). Soft at any other stage.
        hard_by_text = _HARD_USER_UNKNOWN
    if (
        hard_by_text is not None
        and _text_may_decide(enhanced, hard_by_text, at_rcpt)
        and not _sounds_temporary(words)
    ):
        return hard_by_text
    return None


# Enhanced codes under which a server still says "user unknown" in words, so the words
# decide: X.2.1 (sendmail/milter setups answer "5.2.1 ... User Unknown"), X.7.1 (Postfix's
# default code for an access-map REJECT, which admins fill with "Nonexistent user") and
# X.7.17 (RFC 7293: the mailbox's owner has changed, so the person we knew is gone anyway).
_USER_UNKNOWN_TEXT_DECIDES: Final = frozenset({(2, 1), (7, 1), (7, 17)})


def _text_may_decide(
    enhanced: tuple[int, int] | None, hard_by_text: Classification, at_rcpt: bool
) -> bool:
    """Reply text may make a hard bounce only when no specific enhanced code contradicts it:
    none, X.0.x or X.Y.0 (RFC 3463: "other or undefined" within its subject); host-unknown
    text also under X.4.x (routing: "5.4.4 Host or domain name not found", Microsoft's
    "5.4.310 DNS domain ... does not exist"); user-unknown text also under the codes of
    _USER_UNKNOWN_TEXT_DECIDES. Never under X.2.2 (full), X.3.4 (size), X.6.x (content).

    User-unknown words decide only in a reply to RCPT (RFC 5321 §3.3: the command that
    names the recipient). After DATA the same words often come from a content filter, and
    when the command is unknown nothing says which it was: then soft, as Sisimai does
    (Reason/UserUnknown.pm needs RCPT, Reason/Filtered.pm takes the rest)."""
    if hard_by_text is _HARD_USER_UNKNOWN and not at_rcpt:
        return False
    if enhanced is None or enhanced[0] == 0 or enhanced[1] == 0:
        return True
    if hard_by_text.error_class == "dispatching_failed":
        return enhanced[0] == 4
    return enhanced in _USER_UNKNOWN_TEXT_DECIDES


# Words by which a server says its refusal is temporary ("try again later", "temporarily").
_TEMPORARY_WORDS: Final = frozenset({b"temporary", b"temporarily"})
_TRY_AGAIN: Final = (b" try again ", b" try later ")


def _sounds_temporary(words: list[bytes]) -> bool:
    """Whether the reply text itself calls the failure temporary: then text is no proof."""
    if not _TEMPORARY_WORDS.isdisjoint(words):
        return True
    if b"try" not in words:
        return False
    padded = b" %b " % b" ".join(words)
    return any(phrase in padded for phrase in _TRY_AGAIN)


def _soft_reason(code: int, enhanced: tuple[int, int] | None, signal: str | None) -> str:
    """Words first: the text names the condition ("450 4.2.1 ... receiving mail too quickly"
    is rate limiting, not a disabled mailbox); then the enhanced code, then the basic code."""
    if signal is not None:
        return signal
    if enhanced is not None and (reason := _REASON_BY_ENHANCED.get(enhanced)) is not None:
        return reason
    if enhanced is not None and (reason := _REASON_BY_SUBJECT.get(enhanced[0])) is not None:
        return reason
    if (reason := _REASON_BY_REPLY_CODE.get(code)) is not None:
        return reason
    return "temporary_failure" if 400 <= code < 500 else "unknown"


def _first_signal(words: list[bytes]) -> str | None:
    """The highest-priority reason the text's words name, if any."""
    first_words = _SIGNALS_BY_FIRST_WORD.keys() & words
    if not first_words:
        return None
    padded = b" %b " % b" ".join(words)
    best: _Signal | None = None
    for word in first_words:
        best = _best_signal_at(padded, *_SIGNALS_BY_FIRST_WORD[word], best)
    return None if best is None else best.reason


def _best_signal_at(
    padded: bytes, needle: bytes, signals: tuple[_Signal, ...], best: _Signal | None
) -> _Signal | None:
    """`best`, or a higher-priority signal starting at one of the `needle` word's places."""
    position = padded.find(needle)
    while position >= 0:
        after_word = position + len(needle) - 1
        for signal in signals:
            if best is not None and signal.priority >= best.priority:
                break
            if signal.occurs_at(padded, after_word):
                best = signal
                break
        position = padded.find(needle, after_word)
    return best
