"""Response policy: status table, partial success matching, Retry-After, redaction."""

from __future__ import annotations

import string
from email.utils import formatdate

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.consumers.payloads import CallbackEvent
from bouncewire.consumers.responses import (
    ResponseDecision,
    Verdict,
    decide,
    parse_retry_after,
    redact,
)
from tests.consumers.strategies import make_event, realistic_emails

NOW = 1_700_000_000.0
CAP = 60.0
EVENTS = [
    make_event("0", "softbounce", "a@x.io", ts=100),
    make_event("1", "hardbounce", "b@x.io", ts=100),
    make_event("2", "hardbounce", "a@x.io", ts=200),
    make_event("3", "softbounce", "c@x.io", ts=100),
]


def judge(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    events: list[CallbackEvent] = EVENTS,
) -> ResponseDecision:
    return decide(status, headers or {}, body, events, now=NOW, max_retry_after_s=CAP)


def partial_body(*entries: object, processed: int = 2) -> bytes:
    return orjson.dumps(
        {
            "error": f"{len(entries)} event(s) failed to process",
            "TOTAL_EVENTS": processed + len(entries),
            "PROCESSED_EVENTS": processed,
            "UNPROCESSED_EVENTS": list(entries),
        }
    )


HTTP_DATE_IN_30S = formatdate(NOW + 30, usegmt=True)


@pytest.mark.parametrize(
    ("status", "headers", "body", "verdict", "retry_after"),
    [
        (200, {}, b"", Verdict.DELIVERED, None),
        (200, {}, b'{"status":"success"}', Verdict.DELIVERED, None),
        (200, {}, b"not json {", Verdict.DELIVERED, None),
        (200, {}, b'["array"]', Verdict.DELIVERED, None),
        (204, {}, b"", Verdict.DELIVERED, None),
        (200, {}, b'{"UNPROCESSED_EVENTS":[]}', Verdict.DELIVERED, None),
        (400, {}, b'{"error":"More than allowed events were sent"}', Verdict.REJECT, None),
        (400, {}, b"garbage", Verdict.REJECT, None),
        (401, {}, b"", Verdict.REJECT, None),
        (403, {}, b"", Verdict.REJECT, None),
        (404, {}, b"", Verdict.REJECT, None),
        (413, {}, b"", Verdict.REJECT, None),
        (408, {}, b"", Verdict.RETRY, None),
        (425, {}, b"", Verdict.RETRY, None),
        (429, {}, b"", Verdict.RETRY, None),
        (429, {"Retry-After": "7"}, b"", Verdict.RETRY, 7.0),
        (429, {"retry-after": "7"}, b"", Verdict.RETRY, 7.0),
        (429, {"Retry-After": HTTP_DATE_IN_30S}, b"", Verdict.RETRY, 30.0),
        (429, {"Retry-After": "3600"}, b"", Verdict.RETRY, CAP),
        (429, {"Retry-After": "soon"}, b"", Verdict.RETRY, None),
        (500, {}, b"", Verdict.RETRY, None),
        (500, {"Retry-After": "7"}, b"", Verdict.RETRY, None),  # only honoured on 429/503
        (502, {}, b"<html>bad gateway</html>", Verdict.RETRY, None),
        (503, {"Retry-After": "2"}, b"", Verdict.RETRY, 2.0),
        (503, {"RETRY-AFTER": "-5"}, b"", Verdict.RETRY, 0.0),
        (504, {}, b"", Verdict.RETRY, None),
        (301, {"Location": "https://elsewhere.example/"}, b"", Verdict.REJECT, None),
        (302, {}, b"", Verdict.REJECT, None),
        (308, {}, b"", Verdict.REJECT, None),
        (100, {}, b"", Verdict.RETRY, None),
        (600, {}, b"", Verdict.RETRY, None),
    ],
)
def test_decision_table(
    status: int,
    headers: dict[str, str],
    body: bytes,
    verdict: Verdict,
    retry_after: float | None,
) -> None:
    decision = judge(status, body, headers)
    assert decision.verdict is verdict
    assert decision.retry_after_s == retry_after
    assert decision.unprocessed == ()
    assert decision.reason


def test_partial_success_marks_the_matching_events() -> None:
    body = partial_body({"e": "b@x.io", "ts": 100, "errorDescription": "invalid meta"})
    decision = judge(200, body)
    assert decision.verdict is Verdict.PARTIAL
    assert decision.unprocessed == (1,)


@pytest.mark.parametrize(
    ("entries", "unprocessed"),
    [
        # ts narrows between two events of one address
        ([{"e": "a@x.io", "ts": 200}], (2,)),
        ([{"e": "a@x.io", "ts": 100}], (0,)),
        # v2 names: type narrows, "email" key
        ([{"email": "a@x.io", "type": "hard_bounce"}], (2,)),
        ([{"email": "a@x.io", "type": "soft_bounce", "meta": "m"}], (0,)),
        # legacy names
        ([{"e": "a@x.io", "event": "hardbounce"}], (2,)),
        # no narrowing: first candidate; two entries take the two events
        ([{"e": "a@x.io"}], (0,)),
        ([{"e": "a@x.io"}, {"e": "a@x.io"}], (0, 2)),
        # case and whitespace of the address do not matter
        ([{"e": " A@X.IO ", "ts": 200}], (2,)),
        # entry agrees with no free event of that address: every event of the address
        ([{"e": "a@x.io", "ts": 999}], (0, 2)),
        ([{"e": "b@x.io"}, {"e": "b@x.io"}], (1,)),
        # unknown type name does not narrow
        ([{"e": "c@x.io", "type": "spam"}], (3,)),
        # an entry we cannot place at all: the whole batch
        ([{"e": "b@x.io"}, {"e": "stranger@x.io"}], (0, 1, 2, 3)),
        ([{"errorDescription": "Could not map event to any bounce type"}], (0, 1, 2, 3)),
        (["b@x.io"], (0, 1, 2, 3)),
        ([{"e": 42}], (0, 1, 2, 3)),
    ],
)
def test_partial_success_matching(entries: list[object], unprocessed: tuple[int, ...]) -> None:
    decision = judge(200, partial_body(*entries))
    assert decision.verdict is Verdict.PARTIAL
    assert decision.unprocessed == unprocessed


@pytest.mark.parametrize(
    "body",
    [
        b'{"TOTAL_EVENTS":4,"PROCESSED_EVENTS":2}',
        b'{"TOTAL_EVENTS":4,"PROCESSED_EVENTS":2,"UNPROCESSED_EVENTS":[]}',
        b'{"UNPROCESSED_EVENTS":2}',
    ],
)
def test_failures_reported_without_a_usable_list_mark_the_whole_batch(body: bytes) -> None:
    decision = judge(200, body)
    assert decision.verdict is Verdict.PARTIAL and decision.unprocessed == (0, 1, 2, 3)


def test_counts_without_shortfall_are_a_delivery() -> None:
    assert judge(200, b'{"TOTAL_EVENTS":4,"PROCESSED_EVENTS":4}').verdict is Verdict.DELIVERED


def test_client_error_with_progress_is_partial_without_progress_reject() -> None:
    entry = {"e": "c@x.io", "errorDescription": "invalid meta"}
    partial = judge(400, partial_body(entry, processed=3))
    assert partial.verdict is Verdict.PARTIAL and partial.unprocessed == (3,)
    assert judge(400, partial_body(entry, processed=0)).verdict is Verdict.REJECT


def test_server_error_with_a_partial_body_is_still_retried() -> None:
    decision = judge(500, partial_body({"e": "a@x.io"}))
    assert decision.verdict is Verdict.RETRY and decision.unprocessed == ()


@given(
    st.lists(st.sampled_from(["a@x.io", "b@x.io", "c@x.io", "d@x.io"]), min_size=1, max_size=8),
    st.data(),
)
def test_partial_never_loses_a_reported_failure(emails: list[str], data: st.DataObject) -> None:
    """Whatever the entries, every event the server could have meant is marked."""
    events = [make_event(str(i), email=e, ts=i % 3) for i, e in enumerate(emails)]
    failed = data.draw(st.lists(st.sampled_from(range(len(events))), min_size=1, unique=True))
    entries = [{"e": events[i].email, "ts": events[i].ts} for i in failed]
    decision = judge(200, partial_body(*entries), events=events)
    assert decision.verdict is Verdict.PARTIAL
    assert len(set(decision.unprocessed)) == len(decision.unprocessed)
    for i in failed:
        # Same address and ts are indistinguishable: some event with them must be marked.
        twins = {j for j, e in enumerate(events) if (e.email, e.ts) == (emails[i], i % 3)}
        assert twins & set(decision.unprocessed)
    assert len(decision.unprocessed) >= len(failed)


# --- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("2", 2.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("abc", None),
        ("2 seconds", None),
        ("nan", None),
        ("inf", None),
        (formatdate(NOW + 90, usegmt=True), 90.0),
        (formatdate(NOW - 90, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Tue, 14 Nov 2023 22:13:20 -0000", 0.0),  # NOW, zone-less UTC
        ("Tue, 14 Nov 2023 22:14:20 -0000", 60.0),
        ("Tue, 14 Nov 2023 23:14:20 +0100", 60.0),
        ("Tue, 32 Nov 2023 22:15:20 GMT", None),
        ("Mon, 99 Foo 2023", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or seconds >= 0


# --- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        (
            '{"UNPROCESSED_EVENTS":[{"e":"john.doe+x@example.com","errorDescription":"invalid"}]}',
            ['"errorDescription":"invalid"', '"e":"[email]"'],
            ["john.doe", "example.com"],
        ),
        (
            "POST https://user:pw@eu1.api.clevertap.com/1/smtp/cb/AbC123?token=s3cr3t#frag failed",
            ["https://eu1.api.clevertap.com/[redacted] failed"],
            ["user:pw", "AbC123", "s3cr3t", "frag", "smtp"],
        ),
        ("moved to api.example.com/hooks/k9/x?y=1", ["api.example.com/[redacted]"], ["k9"]),
        ("key deadbeefcafebabe0011 end", ["key [token] end"], ["deadbeef"]),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig", ["jwt [token].[token].sig"], []),
        ("escaped a\\u0040b.io here", ["[email] here"], ["b.io"]),
        ("internationalization_configuration stays", ["internationalization_configuration"], []),
        ("ok @ 10:00 and 2 event(s) failed", ["ok @ 10:00 and 2 event(s) failed"], []),
    ],
)
def test_redact_table(text: str, kept: list[str], gone: list[str]) -> None:
    redacted = redact(text)
    for fragment in kept:
        assert fragment in redacted
    for fragment in gone:
        assert fragment not in redacted


NO_DIGITS = st.text(
    st.characters(blacklist_categories=("Cs", "Nd", "No", "Nl"), blacklist_characters="@"),
    max_size=30,
)
SEPARATORS = st.sampled_from([" ", '"', "\n", ",", ":", "<", "(", "[", "\t", '":"'])


@given(NO_DIGITS, SEPARATORS, realistic_emails(), SEPARATORS, NO_DIGITS)
def test_redact_never_leaves_an_email(
    before: str, left: str, email: str, right: str, after: str
) -> None:
    assert email not in redact(before + left + email + right + after)


@given(realistic_emails())
def test_redact_never_leaves_an_email_in_a_json_body(email: str) -> None:
    body = orjson.dumps({"UNPROCESSED_EVENTS": [{"e": email, "errorDescription": "x"}]})
    assert email not in redact(body.decode())


TOKEN = st.text(string.ascii_letters + string.digits + "-_.~%", min_size=4, max_size=24).filter(
    lambda t: any(c.isdigit() for c in t)
)


@given(
    NO_DIGITS,
    st.sampled_from(["https://", "http://", ""]),
    st.from_regex(r"[a-z]{1,10}\.[a-z]{1,10}\.(com|io)", fullmatch=True),
    st.lists(TOKEN, min_size=1, max_size=3),
    st.lists(st.tuples(TOKEN, TOKEN), max_size=2),
    SEPARATORS,
    NO_DIGITS,
)
def test_redact_never_leaves_a_url_path_or_query_token(
    before: str,
    scheme: str,
    host: str,
    segments: list[str],
    query: list[tuple[str, str]],
    sep: str,
    after: str,
) -> None:
    url = scheme + host + "/" + "/".join(segments)
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    redacted = redact(before + " " + url + sep + after)
    # Tokens carry a digit and the surrounding text has none: any survivor leaked from the URL.
    for token in [*segments, *(t for pair in query for t in pair)]:
        assert token not in redacted
