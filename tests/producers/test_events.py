"""The input contract: what a JSON line must hold to become an event, and what is refused."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.events import parse_event_time, parse_send_result, parse_unsubscribe
from bouncewire.producers.exceptions import InvalidEventError
from bouncewire.producers.jsonlines import BadLine, parse_lines
from bouncewire.schemas.classification import classify

NOW_MS = 1_700_000_000_000
EVENT_ID = "8a4b4c1e-3f5e-4a53-9a57-3b1f1d1e0c11"


def fixed_id() -> str:
    return EVENT_ID


def send_result(**fields: Any) -> dict[str, Any]:
    return parse_send_result({"email": "a@example.com", "smtp_code": 550, **fields},
                             now_ms=NOW_MS, new_id=fixed_id)


def test_send_result_keeps_all_evidence() -> None:
    record = send_result(ts=1435322805, enhanced_code="5.1.1", smtp_message="550 5.1.1 unknown",
                         message_id="<m@x>", campaign_id="c1", meta="m1", remote_mta="mx.x")
    assert record == {
        "event_id": EVENT_ID, "event_time": 1435322805000, "email": "a@example.com",
        "smtp_code": 550, "enhanced_code": "5.1.1", "smtp_message": "550 5.1.1 unknown",
        "error": None, "remote_mta": "mx.x", "message_id": "<m@x>", "campaign_id": "c1",
        "meta": "m1",
    }


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        (None, NOW_MS),
        (1435322805, 1435322805000),
        (1435322805.25, 1435322805250),
        ("2015-06-26T12:46:45Z", 1435322805000),
        ("2015-06-26T12:46:45", 1435322805000),
        ("2015-06-26T14:46:45+02:00", 1435322805000),
    ],
)
def test_event_time_forms(value: Any, expected_ms: int) -> None:
    assert parse_event_time(value, NOW_MS) == expected_ms


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"email": ""}, "email", "required"),
        ({"email": "   "}, "email", "required"),
        ({"email": 5}, "email", "required"),
        ({"email": "a" * 1025}, "email", "longer than 1024"),
        ({"email": "a\nb@example.com"}, "email", "control"),
        ({"smtp_code": None}, "smtp_code", "required"),
        ({"smtp_code": 199}, "smtp_code", "200 to 599"),
        ({"smtp_code": 600}, "smtp_code", "200 to 599"),
        ({"smtp_code": True}, "smtp_code", "200 to 599"),
        ({"smtp_code": "550"}, "smtp_code", "200 to 599"),
        ({"enhanced_code": "5.1"}, "enhanced_code", "5.1.1"),
        ({"error": "exploded"}, "error", "one of"),
        ({"ts": "yesterday"}, "ts", "ISO-8601"),
        ({"ts": True}, "ts", "boolean"),
        ({"ts": 1435322805000}, "ts", "outside"),
        ({"event_id": "nope"}, "event_id", "UUID"),
        ({"smtpcode": 550}, "'smtpcode'", "not a known field"),
        ({"meta": 5}, "meta", "string"),
        ({"smtp_code": 550.0}, "smtp_code", "200 to 599"),
        ({"enhanced_code": 511}, "enhanced_code", "string"),
        ({"enhanced_code": "5.1.1" + " " * 12}, "enhanced_code", "longer than 16"),
        ({"enhanced_code": "5.\U0001d7cf.\U0001d7cf\U0001d7cf\U0001d7cf"}, "enhanced_code",
         "longer"),
        ({"ts": 10**400}, "ts", "outside"),
        ({"ts": [1]}, "ts", "epoch seconds"),
        ({"smtp_message": "x" * (64 * 1024 + 1)}, "smtp_message", "longer than 65536"),
        ({"smtp_message": "\U0001f600" * 16385}, "smtp_message", "longer than 65536"),
        ({"remote_mta": "m" * 256}, "remote_mta", "longer than 255"),
        ({"email": "a\x7fb@example.com"}, "email", "control"),
    ],
)
def test_send_result_refusals_name_the_field(fields: dict[str, Any], field: str,
                                             problem: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        send_result(**fields)
    assert info.value.field == field
    assert problem in info.value.problem


@pytest.mark.parametrize(("command", "enhanced", "stored", "bounce"), [
    ("RCPT", None, "5.1.1", "hard"),  # words alone, in a reply to RCPT: the address is gone
    ("rcpt", "5.0.0", "5.1.1", "hard"),
    ("DATA", None, None, "soft"),  # after DATA the same words may come from a filter
    (None, None, None, "soft"),  # nothing says which command it was
    ("RCPT", "5.2.2", "5.2.2", "soft"),  # a specific code is kept: full is not unknown
])
def test_the_smtp_command_decides_words_alone_and_the_record_carries_its_status(
    command: str | None, enhanced: str | None, stored: str | None, bounce: str
) -> None:
    fields = {"smtp_message": "no such user here", "enhanced_code": enhanced}
    if command is not None:
        fields["smtp_command"] = command
    record = send_result(**fields)
    assert "smtp_command" not in record  # input only: the contract has no such field
    assert record["enhanced_code"] == stored
    verdict = classify(record["email"], record["smtp_code"], record["enhanced_code"],
                       record["smtp_message"], record["error"])
    assert verdict.bounce == bounce


def test_an_unknown_smtp_command_is_refused_by_name() -> None:
    with pytest.raises(InvalidEventError, match="smtp_command"):
        send_result(smtp_command="VRFY")


def test_invalid_address_is_evidence_for_send_results() -> None:
    assert send_result(email="not an address@@x")["email"] == "not an address@@x"


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"email": " a\x85b@example.com "}, "email", "a\x85b@example.com"),  # not a C0 control
        ({"enhanced_code": "5.\u0661.\u0661"}, "enhanced_code", "5.\u0661.\u0661"),  # 7 bytes
        ({"smtp_message": "\U0001f600" * 16384}, "smtp_message", "\U0001f600" * 16384),
        ({"ts": 1435322805}, "event_time", 1435322805000),
        ({"event_id": EVENT_ID.upper()}, "event_id", EVENT_ID),
        ({"meta": None}, "meta", None),
    ],
)
def test_edge_values_that_are_accepted(fields: dict[str, Any], field: str, expected: Any) -> None:
    assert send_result(**fields)[field] == expected


@pytest.mark.parametrize("blank", [b"", b"   ", b"\t\r\n", "  \n"])
def test_blank_lines_are_skipped_and_numbering_goes_on(blank: bytes | str) -> None:
    lines = [blank, b"{oops", b'{"email": "a@example.com", "error": "timeout"}']
    items = list(parse_lines(lines, "send_result", clock_ms=lambda: NOW_MS))
    assert isinstance(items[0], BadLine) and items[0].line_no == 2
    assert len(items) == 2 and items[1]["event_time"] == NOW_MS


def test_unsubscribe_needs_a_valid_address_and_known_source() -> None:
    ok = parse_unsubscribe({"email": "u@example.com", "source": "one_click"}, now_ms=NOW_MS,
                           new_id=fixed_id)
    assert ok["source"] == "one_click" and ok["event_time"] == NOW_MS
    assert parse_unsubscribe({"email": "u@example.com"}, now_ms=NOW_MS)["source"] == "api"
    for bad, field in [({"email": "u@@example.com"}, "email"),
                       ({"email": "u@example.com", "source": "sms"}, "source")]:
        with pytest.raises(InvalidEventError) as info:
            parse_unsubscribe(bad, now_ms=NOW_MS)
        assert info.value.field == field


def test_error_messages_never_echo_the_address() -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_unsubscribe({"email": "secret.person@@example.com"}, now_ms=NOW_MS)
    assert "secret.person" not in str(info.value)


def test_parse_lines_reports_bad_lines_by_number_and_keeps_the_rest() -> None:
    lines = [
        b'{"email": "a@example.com", "smtp_code": 250}',
        b"",
        b"{not json",
        b'{"email": "b@example.com"}',
        b"[1, 2]",
        b'{"email": "c@example.com", "error": "timeout"}',
    ]
    items = list(parse_lines(lines, "send_result", clock_ms=lambda: NOW_MS))
    bad = [i for i in items if isinstance(i, BadLine)]
    good = [i for i in items if not isinstance(i, BadLine)]
    assert [b.line_no for b in bad] == [3, 4, 5]
    assert "not valid JSON" in bad[0].reason and "smtp_code" in bad[1].reason
    assert [g["email"] for g in good] == ["a@example.com", "c@example.com"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
known_fields = st.sampled_from(["email", "ts", "smtp_code", "enhanced_code", "smtp_message",
                                 "error", "meta", "event_id", "source"])
field_names = known_fields | st.text(string.ascii_lowercase)


@given(st.dictionaries(field_names, json_values, max_size=6), st.sampled_from(["send_result",
                                                                                "unsubscribe"]))
def test_any_json_object_is_either_an_event_or_an_invalid_event_error(
    obj: dict[str, Any], kind: str
) -> None:
    parse = parse_send_result if kind == "send_result" else parse_unsubscribe
    try:
        record = parse(obj, now_ms=NOW_MS)
    except InvalidEventError as exc:
        assert exc.field
    else:
        assert record["email"].strip() == record["email"] and record["event_time"] > 0


@given(st.binary(max_size=200))
def test_any_bytes_line_is_an_event_or_a_bad_line(line: bytes) -> None:
    for item in parse_lines([line], "send_result", clock_ms=lambda: NOW_MS):
        assert isinstance(item, BadLine | dict)
