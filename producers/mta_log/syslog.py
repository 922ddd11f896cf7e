"""The syslog prefix of a log line: its timestamp, host and program. Pure: no I/O.

Shapes read (the MTA's own text follows):

- RFC 3164, no year, the day space- or zero-padded: ``Jun  5 15:09:21 host postfix/smtp[12]: ``
  (also Postfix's own `maillog_file`, and journalctl's default ``-o short``); some daemons add
  the year after the day: ``Jun  5 2024 15:09:21 ...``.
- RFC 3339 / ISO 8601 with the year (rsyslog's file format, ``journalctl -o short-iso``):
  ``2024-06-05T15:09:21.123456+02:00 host postfix/smtp[12]: ``, ``+0200`` and ``Z`` too.
- RFC 5424: ``<22>1 2024-06-05T15:09:21.003Z host postfix/smtp 12 - - ...``.
- Epoch seconds (``journalctl -o short-unix``): ``1717600161.003 host postfix/smtp[12]: ``.
- No prefix at all (``journalctl -o cat`` prints only the message): the whole line is the text.

A timestamp's text is kept as written (event ids derive from it) and turned into epoch
milliseconds only for lines that become events: most lines never need it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Final

_STAMP_3164: Final = (
    r"[A-Z][a-z]{2} [ 0-9]?[0-9](?: [0-9]{4})? [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
)
_STAMP_ISO: Final = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
# journalctl -o short-unix: epoch seconds with microseconds.
_STAMP_EPOCH: Final = r"[0-9]{9,11}\.[0-9]+"
# `<PRI>` may open a 3164 line read straight off the wire; some daemons leave out the host;
# the program name never holds a space, a colon or a bracket; the pid is optional.
_BSD: Final = re.compile(
    rf"(?:<[0-9]{{1,3}}>)?(?P<stamp>{_STAMP_3164}|{_STAMP_ISO}|{_STAMP_EPOCH}) "
    r"(?:(?P<host>\S+(?<!:)) )?"
    r"(?P<program>[^\s\[\]:]+)(?:\[[0-9]+\])?: ",
    re.ASCII,
)
# RFC 5424 §6: HEADER = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID,
# then STRUCTURED-DATA ("-" or [..] elements) and the message after one space.
_RFC5424: Final = re.compile(
    rf"<[0-9]{{1,3}}>1 (?P<stamp>{_STAMP_ISO}|-) (?P<host>\S+) (?P<program>\S+) \S+ \S+ "
    r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: \ufeff?|$)",
    re.ASCII,
)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# A year-less time more than this far in the future belongs to last year (a log read in
# January holds December's lines).
_FUTURE_SLACK_S: Final = 2 * 86_400


@dataclass(frozen=True, slots=True)
class Entry:
    """One log line split: `stamp` is "" and `program` None when the line had no prefix."""

    stamp: str
    program: str | None
    text: str


def split_line(line: str) -> Entry:
    """The line's prefix and text; a line without a recognised prefix is all text."""
    match = (_RFC5424 if line.startswith("<") and ">1 " in line[1:7] else _BSD).match(line)
    if match is None:
        return Entry("", None, line)
    stamp = match["stamp"]
    return Entry("" if stamp == "-" else stamp, match["program"], line[match.end() :])


def service_of(program: str | None) -> str | None:
    """`postfix/smtp`, `postfix-out/smtp`, `bwtest/smtp` → `smtp` (multi-instance names vary)."""
    if program is None:
        return None
    return program.rpartition("/")[2]


class StampClock:
    """Turns timestamp texts into epoch milliseconds; naive times are the reader's local time.

    Caches the last text: consecutive lines mostly share their second.
    """

    def __init__(self, now_s: float | None = None, *, utc: bool = False) -> None:
        self._now_s = now_s
        self._utc = utc
        self._last: tuple[str, int | None] = ("", None)

    def millis(self, stamp: str) -> int | None:
        """Epoch ms of `stamp`, None for "" or text that is no valid time."""
        if stamp == self._last[0]:
            return self._last[1]
        value = self._parse(stamp) if stamp else None
        self._last = (stamp, value)
        return value

    def _parse(self, stamp: str) -> int | None:
        try:
            if stamp[0].isdigit():
                if "-" not in stamp:
                    return round(float(stamp) * 1000)  # epoch seconds
                return self._from_iso(stamp)
            return self._from_3164(stamp)
        except (ValueError, OverflowError, KeyError, IndexError):
            return None

    def _from_iso(self, stamp: str) -> int:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return self._naive_ms(parsed)
        return round(parsed.timestamp() * 1000)

    def _from_3164(self, stamp: str) -> int:
        parts = stamp.split()
        month, day = _MONTHS[parts[0]], int(parts[1])
        clock = parts[-1]
        if len(parts) == 4:
            return self._naive_ms(_at(int(parts[2]), month, day, clock))
        now_s = time.time() if self._now_s is None else self._now_s
        year = time.gmtime(now_s).tm_year
        value = self._naive_ms(_at(year, month, day, clock))
        if value > (now_s + _FUTURE_SLACK_S) * 1000:
            value = self._naive_ms(_at(year - 1, month, day, clock))
        return value

    def _naive_ms(self, moment: datetime) -> int:
        if self._utc:
            return _utc_ms(moment)
        return round(moment.timestamp() * 1000)  # naive: datetime applies the local zone


def _at(year: int, month: int, day: int, clock: str) -> datetime:
    hms, _, fraction = clock.partition(".")
    hour, minute, second = (int(part) for part in hms.split(":"))
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return datetime(year, month, day, hour, minute, second, micro)  # noqa: DTZ001 -- local time


def _utc_ms(moment: datetime) -> int:
    seconds = (moment - datetime(1970, 1, 1)).total_seconds()  # noqa: DTZ001 -- naive = UTC here
    return round(seconds * 1000)
