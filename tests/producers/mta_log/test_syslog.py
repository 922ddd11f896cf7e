"""Syslog prefixes (RFC 3164 with and without the year, RFC 5424, ISO 8601 files, none at all)
and their timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.mta_log.syslog import StampClock, service_of, split_line

TEXT = "7C2D9E1F02: removed"
# 2024-06-10 12:00:00 UTC: "now" for year-less stamps.
NOW_S = 1_718_020_800.0


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(("line", "stamp", "program", "expected_ms"), [
    ("Jun  5 15:09:21 mx1 postfix/qmgr[102]: " + TEXT, "Jun  5 15:09:21", "postfix/qmgr",
     ms(2024, 6, 5, 15, 9, 21)),
    ("Dec 06 02:43:50 mta bwtest/qmgr[14860]: " + TEXT, "Dec 06 02:43:50", "bwtest/qmgr",
     ms(2023, 12, 6, 2, 43, 50)),  # December read in June: last year's
    ("Jun 11 15:09:21 mx1 postfix/qmgr[102]: " + TEXT, "Jun 11 15:09:21", "postfix/qmgr",
     ms(2024, 6, 11, 15, 9, 21)),  # a day ahead: still this year (clock skew)
    ("Jun  5 2022 15:09:21 mx1 postfix/qmgr[102]: " + TEXT, "Jun  5 2022 15:09:21",
     "postfix/qmgr", ms(2022, 6, 5, 15, 9, 21)),
    ("<22>Jun  5 15:09:21.250 mx1 postfix/qmgr: " + TEXT, "Jun  5 15:09:21.250", "postfix/qmgr",
     ms(2024, 6, 5, 15, 9, 21) + 250),
    ("2024-06-05T15:09:21.123456+02:00 mx1 postfix-out/qmgr[102]: " + TEXT,
     "2024-06-05T15:09:21.123456+02:00", "postfix-out/qmgr", ms(2024, 6, 5, 13, 9, 21) + 123),
    ("2024-06-05T15:09:21+0000 mx1 postfix/qmgr[102]: " + TEXT, "2024-06-05T15:09:21+0000",
     "postfix/qmgr", ms(2024, 6, 5, 15, 9, 21)),
    ("2024-06-05T15:09:21Z mx1 postfix/qmgr[102]: " + TEXT, "2024-06-05T15:09:21Z",
     "postfix/qmgr", ms(2024, 6, 5, 15, 9, 21)),
    ("<22>1 2024-06-05T15:09:21.003Z mx1 postfix/qmgr 102 - - " + TEXT,
     "2024-06-05T15:09:21.003Z", "postfix/qmgr", ms(2024, 6, 5, 15, 9, 21) + 3),
    ('<22>1 2024-06-05T15:09:21Z mx1 postfix/qmgr 102 ID47 [meta sequenceId="1"][x y="\\]"] '
     + TEXT, "2024-06-05T15:09:21Z", "postfix/qmgr", ms(2024, 6, 5, 15, 9, 21)),
    ("<22>1 - mx1 postfix/qmgr - - - " + TEXT, "", "postfix/qmgr", None),
    ("Jun  5 15:09:21 postfix/qmgr[102]: " + TEXT, "Jun  5 15:09:21", "postfix/qmgr",
     ms(2024, 6, 5, 15, 9, 21)),  # no host
    ("1717600161.003000 mx1 postfix/qmgr[102]: " + TEXT, "1717600161.003000", "postfix/qmgr",
     ms(2024, 6, 5, 15, 9, 21) + 3),  # journalctl -o short-unix
    (TEXT, "", None, None),  # journalctl -o cat
])
def test_prefixes(line: str, stamp: str, program: str | None, expected_ms: int | None) -> None:
    entry = split_line(line)
    assert (entry.stamp, entry.program, entry.text) == (stamp, program, TEXT)
    assert StampClock(NOW_S, utc=True).millis(entry.stamp) == expected_ms


def test_naive_times_are_local_by_default() -> None:
    local = StampClock(NOW_S).millis("2024-06-05 15:09:21")
    assert local == int(datetime(2024, 6, 5, 15, 9, 21).timestamp() * 1000)  # noqa: DTZ001


@pytest.mark.parametrize("stamp", ["Feb 30 10:00:00", "Jun  5 25:61:00", "2024-13-01 00:00:00"])
def test_impossible_times_are_none(stamp: str) -> None:
    assert StampClock(NOW_S, utc=True).millis(stamp) is None


def test_service_after_the_slash() -> None:
    assert [service_of(p) for p in ("postfix/smtp", "postfix-out/smtp", "bwtest/smtp", None)] == [
        "smtp", "smtp", "smtp", None]


@given(st.text(max_size=200))
def test_never_raises(line: str) -> None:
    entry = split_line(line)
    StampClock(NOW_S).millis(entry.stamp)
    assert line.endswith(entry.text)
