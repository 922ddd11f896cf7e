"""The text scanner every non-standard format shares: recipients and their replies in prose.

A format module says where its error text begins and ends; the scanner finds the addresses
in between and, for each, the reply quoted after it. An address's span runs from its
occurrence to the next other address, so "<a@x>: 550 ..." and Exim's indented blocks read
alike; when an address occurs more than once (Exchange lists the recipients, then repeats
each with the reply) the first span that quotes a reply code wins.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from bouncewire.producers.mail.evidence import Found
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.text import ADDRESS, find_reply, permanence_in_words

# Where the returned original begins in a text body: the error text ends before it.
ORIGINAL_STARTS: Final = (
    "------ This is a copy of the message",
    "----- This is a copy of the message",
    "--- Below this line is a copy of the message",
    "--- Below this line is a copy",
    "--- Attachment is a copy of the message",
    "------ Below this line is a copy",
    "------ This is a copy of your message",
    "----- Original message -----",
    "-----Original Message-----",
    "--- Original message follows",
    "------- Returned Message --------",
    "Original message headers:",
    "tes de message d'origine",
    "Intestazioni originali del messaggio",
    "Ursprüngliche Nachrichtenkopfzeilen",
    "Ursprungshuvuden:",
    "Original Message Headers",
    "----- Unsent message follows -----",
    "----- Message header follows -----",
    "Message header follows:",  # Smail 3 and T-Online's banners
    "Message text follows:",
    "----- The header of the original message is following",
    "------ Original message header",
    "Content-Type: message/rfc822",
    "header of the original message",
    "headers of the original message",
    "original message header",
    "original message follows",
    "--- original message",
    "included is a copy of",
    "copy of the original message",
    "------ the body of the message",
    "\nreceived:",
    "\nreturn-path:",
)
# Addresses that name the bounce's machinery, never a failed recipient.
_MACHINERY: Final = re.compile(
    r"^(?:mailer-daemon|postmaster|mail-daemon|maildaemon|mdaemon|noreply|no-reply"
    r"|bounce[s]?|root|abuse|hostmaster|double-bounce)@",
    re.IGNORECASE,
)
# An address right after these words is not a failed recipient: an alias it was expanded from
# (counted when the text names nobody else), or the original's sender quoted in the report
# ("From: ...", "MAIL FROM:<...>", "not accepting mail from ADDR"), never counted.
_ALIAS_BEFORE: Final = re.compile(
    r"(?:(?:expanded|generated|forwarded|redirected) from|original(?:ly)? (?:recipient|address|to))"
    r"\s*:?\s*[<(\"']?(?:rfc822;\s*)?$",
    re.IGNORECASE,
)
_SENDER_BEFORE: Final = re.compile(
    r"(?:^[ \t]*(?:from|sender|sender address|reply-to|return-path|original sender|envelope-from"
    r"|message-id"
    r"|in-reply-to|references|x-original-message-id)\s*:"
    r"|mail from\s*:?|sent by|\bfrom(?= <))\s*:?\s*[<(\"']?(?:rfc822;\s*)?$",
    re.IGNORECASE | re.MULTILINE,
)
_URL_CONTEXT: Final = re.compile(r"(?:https?://|www\.)\S*$", re.IGNORECASE)
# The span after an address is read at most this far: one recipient's reply is short.
_MAX_SPAN: Final = 2000


@dataclass(frozen=True, slots=True)
class Region:
    """The part of a body that holds the error text, and what is known outside it."""

    text: str
    exclude: frozenset[str] = frozenset()  # lower-case addresses that are not recipients


def cut(body: str, begins: Sequence[str], ends: Sequence[str] = ()) -> str:
    """The body from the first of `begins` found (they are in order of preference; all of the
    body if none is given, "" if none is found) to the first `ends` marker or the start of the
    returned original after it."""
    start = 0
    if begins:
        lower = body.lower()
        positions = (lower.find(marker.lower()) for marker in begins)
        start = next((p for p in positions if p >= 0), -1)
        if start < 0:
            return ""
    return body[start : end_of_error(body, start, ends)]


def end_of_error(body: str, start: int = 0, ends: Sequence[str] = ()) -> int:
    """Where the error text that begins at `start` ends."""
    lower = body.lower()
    found = [p for p in (lower.find(m.lower(), start + 1) for m in (*ends, *ORIGINAL_STARTS))]
    found = [p for p in found if p > start]
    return min(found) if found else len(body)


def candidates(
    text: str, exclude: Iterable[str], *, aliases_too: bool = False
) -> list[tuple[str, list[int]]]:
    """Recipient addresses in `text` with the positions of each occurrence, in order.

    An alias ("generated from ADDR") counts only with `aliases_too`: when the text names no
    other address (Exim's "an undisclosed address (generated from ADDR)").
    """
    excluded = {address.lower() for address in exclude}
    seen: dict[str, tuple[str, list[int]]] = {}
    for found in ADDRESS.finditer(text):
        address = found.group(1).strip(".")
        key = address.lower()
        if key in excluded or _MACHINERY.match(address) or _in_url(text, found.start()):
            continue
        window = max(0, found.start() - 48)
        if _SENDER_BEFORE.search(text, window, found.start()):
            continue
        if not aliases_too and _ALIAS_BEFORE.search(text, window, found.start()):
            continue
        seen.setdefault(key, (address, []))[1].append(found.start())
    return list(seen.values())


def _in_url(text: str, position: int) -> bool:
    """Inside a link ("https://help.example/?u=x@y"): "/" and "?" are valid in a local part,
    so the address pattern alone would take "//help.example/?u=x@y" for one."""
    local = text[position : text.find("@", position)]
    if "/" in local or "?" in local:
        return True
    line_start = text.rfind("\n", 0, position) + 1
    return _URL_CONTEXT.search(text, line_start, position) is not None


def scan(region: Region, kind: MailKind = "bounce") -> list[Found]:
    """One Found per recipient address in the region, in order of first appearance."""
    found_addresses = candidates(region.text, region.exclude) or candidates(
        region.text, region.exclude, aliases_too=True
    )
    if not found_addresses:
        return []
    starts = sorted(p for _, positions in found_addresses for p in positions)
    permanence = permanence_in_words(region.text)
    # A reply no address owns: one quoted before the first address (MailMarshal), or any
    # when there is a single recipient (Mimecast puts it paragraphs below the address).
    single = len(found_addresses) == 1
    shared = _shared_reply(region.text if single else region.text[: starts[0]])
    # ... and the words before a single recipient's address, which may be its only reason
    # (Verizon: "Error: No valid recipients" above the message details).
    preamble = region.text[: starts[0]].strip() if single else ""
    return [
        Found(
            email=address,
            diagnosis=_prefer_reply(_diagnosis(region.text, address, positions, starts), shared),
            context=preamble or None,
            kind=kind,
            permanence=permanence,
        )
        for address, positions in found_addresses
    ]


def diagnoses_for(region: Region, wanted: list[str]) -> dict[str, str]:
    """The diagnosis the text gives each of the `wanted` addresses (lower-case keys), for
    status fields that quote none; addresses the text does not name are left out."""
    found_addresses = candidates(region.text, region.exclude)
    starts = sorted(p for _, positions in found_addresses for p in positions)
    keys = {address.lower() for address in wanted}
    diagnoses: dict[str, str] = {}
    for address, positions in found_addresses:
        if address.lower() in keys:
            text = _diagnosis(region.text, address, positions, starts)
            if text:
                diagnoses[address.lower()] = text
    return diagnoses


def _diagnosis(text: str, address: str, positions: list[int], starts: list[int]) -> str | None:
    """The text after the address up to the next other address: the first span with a reply
    code, else the first span with words in it."""
    fallback: str | None = None
    for position in positions:
        span = _span(text, address, position, starts)
        if find_reply(span).code is not None:
            return span
        if fallback is None and len(span.strip(" \t\r\n:;,.()<>\"'")) > 2:
            fallback = _first_paragraphs(span)
    return fallback


def _prefer_reply(own: str | None, shared: str | None) -> str | None:
    """The recipient's own text when it quotes a code; else the reply the region quotes for
    everyone (MailMarshal and Mimecast put it before the list of addresses)."""
    if own is None or shared is None:
        return own or shared
    reply = find_reply(own)
    return own if reply.code is not None or reply.enhanced is not None else shared


def _first_paragraphs(span: str) -> str:
    """Without a reply code, the words right after the address are its reason: the first
    paragraph, or more while they are too short to say anything or only lead in to the
    reason ("because:", 1&1's "For the following reason:")."""
    kept: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", span):
        kept.append(paragraph)
        long_enough = sum(ch.isalpha() for ch in " ".join(kept)) >= 20
        if long_enough and not paragraph.rstrip().endswith(":"):
            break
    return "\n".join(kept)


def _span(text: str, address: str, position: int, starts: list[int]) -> str:
    """The address's line before it ("Unknown user: ADDR", "550 5.1.1 <ADDR>...") and the text
    after it up to the next other address."""
    line_start = text.rfind("\n", 0, position) + 1
    before = text[line_start:position].strip(" \t<(\"'")
    after = position + len(address)
    next_other = _next_other(text, address, after, starts)
    end = min(len(text) if next_other is None else next_other, after + _MAX_SPAN)
    raw = text[after:end]
    if next_other is not None and end == next_other:
        # The next address's line starts here: its opening ("<", "Unknown user: ") is its own.
        raw = raw[: raw.rfind("\n") + 1] if "\n" in raw else raw
    span = raw.lstrip(">").strip()
    return f"{before} {span}" if before and not _is_bullet(before) else span


def _next_other(text: str, address: str, after: int, starts: list[int]) -> int | None:
    """Where the next occurrence of another address begins (bisect: bounces can list
    thousands of recipients)."""
    own = address.lower()
    for index in range(bisect.bisect_right(starts, after), len(starts)):
        position = starts[index]
        if text[position : position + len(address)].lower() != own:
            return position
    return None


def _is_bullet(text: str) -> bool:
    """Line openings that carry no words: "--", ">>>", "*", list numbers."""
    return not any(ch.isalpha() for ch in text)


def _shared_reply(text: str) -> str | None:
    """One reply for every recipient, when the text quotes a reply but no address owns it."""
    reply = find_reply(text)
    if reply.code is None and reply.enhanced is None:
        return None
    return text
