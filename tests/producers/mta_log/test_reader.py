"""Lines → send-result records: joining per queue id, which attempts are published, event ids
that survive a second reading, counting and --strict, and bounded memory."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.mta_log import LineNotUnderstood, LogReader, notes
from bouncewire.producers.mta_log.attempts import Attempt
from bouncewire.producers.mta_log.joiner import Joiner
from bouncewire.producers.mta_log.notes import Note
from bouncewire.producers.mta_log.syslog import StampClock
from bouncewire.producers.smtp_errors import Evidence

NOW_S = 1_718_020_800.0
PF = "Jun  5 15:{m:02d}:{s:02d} mx1 postfix/{service}[1]: "


def pf(service: str, text: str, minute: int = 9, second: int = 21) -> str:
    return PF.format(m=minute, s=second, service=service) + text


def reader(mta: str = "postfix", **options: object) -> LogReader:
    return LogReader(mta, clock=StampClock(NOW_S, utc=True), now_ms=lambda: 1,  # type: ignore[arg-type]
                     **options)  # type: ignore[arg-type]


def read_all(log_reader: LogReader, lines: list[str]) -> list[dict[str, object]]:
    return [record for line in lines for record in log_reader.read(line)]


MESSAGE = [
    pf("smtpd", "connect from shop[10.0.0.5]"),
    pf("cleanup", "QA1: message-id=<m1@shop.example>"),
    pf("qmgr", "QA1: from=<news@shop.example>, size=1234, nrcpt=3 (queue active)"),
    pf("smtp", "QA1: to=<bob@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=1, "
       "delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)"),
    pf("smtp", "QA1: to=<dan@example.org>, relay=mx.example.org[192.0.2.2]:25, delay=1, "
       "delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.example.org[192.0.2.2] said: 550 "
       "5.1.1 <dan@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO "
       "command))"),
    pf("smtp", "QA1: to=<eve@example.net>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, "
       "status=deferred (connect to mx.example.net[192.0.2.3]:25: Connection timed out)"),
    pf("bounce", "QA1: sender non-delivery notification: QB2"),
    # Postfix's own bounce to our sender: not a send result of ours.
    pf("cleanup", "QB2: message-id=<bounce-1@mx1>"),
    pf("qmgr", "QB2: from=<>, size=3000, nrcpt=1 (queue active)"),
    pf("smtp", "QB2: to=<news@shop.example>, relay=shop[10.0.0.5]:25, delay=0.1, "
       "delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)"),
    pf("qmgr", "QB2: removed"),
]
RETRIES = [
    pf("smtp", "QA1: to=<eve@example.net>, relay=none, delay=930, delays=900/0/30/0, "
       "dsn=4.4.1, status=deferred (connect to mx.example.net[192.0.2.3]:25: Connection timed "
       "out)", minute=24),
    pf("qmgr", "QA1: from=<news@shop.example>, status=expired, returned to sender", minute=30),
    pf("qmgr", "QA1: removed", minute=30),
]


def test_a_message_gives_one_result_per_final_recipient() -> None:
    log_reader = reader()
    records = read_all(log_reader, MESSAGE + RETRIES)
    by_email = {r["email"]: r for r in records}
    assert list(by_email) == ["bob@example.com", "dan@example.org", "eve@example.net"]
    assert {r["message_id"] for r in records} == {"<m1@shop.example>"}
    assert by_email["bob@example.com"]["smtp_code"] == 250
    assert by_email["dan@example.org"]["enhanced_code"] == "5.1.1"
    expired = by_email["eve@example.net"]
    assert (expired["error"], expired["enhanced_code"], expired["smtp_code"]) == (
        "timeout", "4.4.1", None)  # the last deferral's evidence
    assert expired["event_time"] == 1717601421000  # 15:30:21, when it expired
    counts = log_reader.counts
    assert counts.attempts == Counter(sent=1, bounced=1, deferred=2, expired=1)
    assert counts.skipped[notes.NOTIFICATION] == 1
    assert counts.lines == len(MESSAGE + RETRIES)
    assert len(log_reader.joiner) == 0  # every queue id removed


def test_deferred_attempts_are_counted_never_published() -> None:
    records = read_all(reader(), MESSAGE[:3] + [MESSAGE[5], RETRIES[0]])
    assert records == []


def test_reading_the_same_log_twice_gives_the_same_event_ids() -> None:
    first = [r["event_id"] for r in read_all(reader(), MESSAGE + RETRIES)]
    again = [r["event_id"] for r in read_all(reader(), MESSAGE + RETRIES)]
    assert first == again and len(set(first)) == 3


def test_a_later_attempt_has_another_id() -> None:
    sent = MESSAGE[3]
    later = sent.replace("delay=1, delays=0/0/0.5/0.5", "delay=61, delays=60/0/0.5/0.5")
    ids = {r["event_id"] for r in read_all(reader(), [sent, later])}
    assert len(ids) == 2


def test_expired_without_known_recipients_is_counted() -> None:
    log_reader = reader()
    assert read_all(log_reader, [RETRIES[1]]) == []
    assert log_reader.counts.skipped[notes.NO_RECIPIENTS] == 1


def test_an_expired_notification_of_our_own_is_no_error() -> None:
    log_reader = reader(strict=True)
    assert read_all(log_reader, [
        pf("qmgr", "QB2: from=<>, size=3000, nrcpt=1 (queue active)"),
        pf("smtp", "QB2: to=<news@shop.example>, relay=none, delay=1, dsn=4.4.1, "
           "status=deferred (connect to shop[10.0.0.5]:25: Connection refused)"),
        pf("qmgr", "QB2: from=<>, status=expired, returned to sender"),
    ]) == []
    assert log_reader.counts.skipped[notes.NOTIFICATION] == 2


def test_strict_fails_on_a_malformed_delivery_not_on_other_lines() -> None:
    log_reader = reader(strict=True)
    read_all(log_reader, MESSAGE)
    with pytest.raises(LineNotUnderstood, match="malformed_delivery"):
        log_reader.read(pf("smtp", "QA1: to=<a@b.example>, relay=none"))


def test_a_result_the_contract_refuses_is_skipped() -> None:
    log_reader = reader()
    line = pf("smtp", "QA1: to=<>, relay=none, delay=1, dsn=5.1.1, status=bounced (x)")
    assert log_reader.read(line) == []
    assert log_reader.counts.skipped[notes.INVALID_EVENT] == 1


def test_exim_message() -> None:
    lines = [
        "2024-06-05 15:09:21 1rABCD-000123-XY <= news@shop.example H=(shop) [10.0.0.5] "
        "P=esmtp S=1234 id=m1@shop.example",
        "2024-06-05 15:09:22 1rABCD-000123-XY => bob@example.com R=dnslookup T=remote_smtp "
        'H=mx.example.com [192.0.2.1] C="250 2.0.0 OK"',
        "2024-06-05 15:09:23 1rABCD-000123-XY == eve@example.net R=dnslookup T=remote_smtp "
        "defer (111): Connection refused",
        "2024-06-09 15:09:23 1rABCD-000123-XY ** eve@example.net R=dnslookup T=remote_smtp: "
        "retry timeout exceeded",
        "2024-06-09 15:09:23 1rABCD-000123-XY Completed",
    ]
    log_reader = reader("exim")
    records = read_all(log_reader, lines)
    assert [(r["email"], r["smtp_code"], r["error"]) for r in records] == [
        ("bob@example.com", 250, None), ("eve@example.net", None, "connection_refused")]
    assert {r["message_id"] for r in records} == {"<m1@shop.example>"}
    assert log_reader.counts.attempts == Counter(sent=1, deferred=1, expired=1)


def attempt(queue_id: str, recipient: str, status: str = "deferred") -> Attempt:
    return Attempt("postfix", queue_id, recipient, status,  # type: ignore[arg-type]
                   Evidence(smtp_code=451, enhanced_code="4.7.1", smtp_message="later"))


def test_joiner_memory_is_bounded() -> None:
    joiner = Joiner(capacity=3, deferred_per_message=2)
    for number in range(10):
        joiner.note(Note("message_id", f"Q{number}", f"<m{number}@x>"))
        for rcpt in range(5):
            joiner.attempt(attempt(f"Q{number}", f"r{rcpt}@x"))
    assert len(joiner) == 3 and joiner.evicted == 7
    assert all(len(item["deferred"]) == 2 for item in joiner.state())


def test_joiner_state_round_trips() -> None:
    joiner = Joiner()
    joiner.note(Note("sender", "Q1", "news@shop.example", message_id="<m@x>"))
    joiner.attempt(attempt("Q1", "a@x"))
    again = Joiner()
    again.restore(joiner.state())
    expired = again.note(Note("expired", "Q1", stamp="Jun  5 15:09:21"))
    assert [(a.recipient, a.status, a.message_id, a.evidence.smtp_code) for a in expired] == [
        ("a@x", "expired", "<m@x>", 451)]


@given(st.lists(st.sampled_from(MESSAGE + RETRIES) | st.text(max_size=200), max_size=30))
def test_never_raises(lines: list[str]) -> None:
    log_reader = reader()
    for line in lines:
        for record in log_reader.read(line):
            assert record["email"] and (record["smtp_code"] or record["error"])
    assert log_reader.counts.lines == len(lines)


EXIM_LINES = [
    "2024-06-05 15:09:21 1rABCD-000123-XY <= news@shop.example P=esmtp S=1234 id=m1@shop",
    "2024-06-05 15:09:22 1rABCD-000123-XY ** dan@example.org R=dnslookup T=remote_smtp "
    "H=mx.example.org [192.0.2.2]: SMTP error from remote mail server after RCPT "
    "TO:<dan@example.org>: 550 5.1.1 unknown",
    "2024-06-05 15:09:23 1rABCD-000123-XY Completed",
]


@given(st.lists(st.sampled_from(EXIM_LINES) | st.text(max_size=200)
                | st.text(max_size=120).map(lambda t: EXIM_LINES[1][:40] + t), max_size=30))
def test_exim_reader_never_raises(lines: list[str]) -> None:
    log_reader = reader("exim")
    for line in lines:
        for record in log_reader.read(line):
            assert record["email"] and (record["smtp_code"] or record["error"])
