"""The stand-in CleverTap receiver: a real server on 127.0.0.1, driven with httpx."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bouncewire.receiver import (
    MAX_EVENTS_PER_POST,
    TOO_MANY_EVENTS,
    UNMAPPED_EVENT,
    CallbackReceiver,
    FaultPlan,
    check_batch,
    mask_email,
    run_receiver,
)

JSON = {"Content-Type": "application/json"}
TOKEN = "s3cr3t-account-token"

# The seed's two examples, byte for byte minus the `//` comments JSON does not allow.
SEED_BOUNCES = b"""[
    {"event": "softbounce", "data": [
        {"e": "email1@emailprovider.com", "ts": 1435322805},
        {"e": "email2@emailprovider2.com", "ts": 1435322805}]},
    {"event": "hardbounce", "data": [{"e": "email3@emailprovider.com", "ts": 1435322805}]}
]"""
SEED_UNSUBSCRIBES = b"""[
    {"event": "unsubscribe", "data": [
        {"e": "email1@emailprovider.com", "ts": 1504632929},
        {"e": "email2@emailprovider2.com", "ts": 1500630929}]}
]"""


def legacy(event: str, *emails: str, ts: int = 1435322805) -> dict[str, Any]:
    return {"event": event, "data": [{"e": email, "ts": ts} for email in emails]}


def many_events(n: int, event: str = "hardbounce") -> list[dict[str, Any]]:
    return [legacy(event, *(f"user{i}@example.com" for i in range(n)))]


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One client for the module: building its TLS context costs ~0.1 s each time.
    with httpx.Client(timeout=5.0) as http:
        yield http


# --------------------------------------------------------------------------- accepted batches


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (SEED_BOUNCES, {"softbounce": 2, "hardbounce": 1}),
        (SEED_UNSUBSCRIBES, {"unsubscribe": 2}),
    ],
)
def test_the_seed_examples_are_accepted_and_recorded(
    receiver: CallbackReceiver, client: httpx.Client, body: bytes, expected: dict[str, int]
) -> None:
    response = client.post(f"{receiver.base_url}/bounce?token={TOKEN}", content=body, headers=JSON)

    assert response.status_code == 200
    (post,) = receiver.received
    assert (post.path, post.query, post.valid, post.problems) == (
        "/bounce",
        f"token={TOKEN}",
        True,
        [],
    )
    assert post.body == body
    assert post.payload == json.loads(body)
    assert receiver.stats()["events_by_type"] == dict(sorted(expected.items()))


def test_bounces_and_unsubscribes_keep_their_own_paths(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    client.post(f"{receiver.base_url}/bounce?token={TOKEN}", content=SEED_BOUNCES, headers=JSON)
    client.post(f"{receiver.base_url}/unsub", content=SEED_UNSUBSCRIBES, headers=JSON)

    assert [post.path for post in receiver.received] == ["/bounce", "/unsub"]
    assert [e.event for e in receiver.received[1].events] == ["unsubscribe", "unsubscribe"]


def test_exactly_1000_events_are_accepted(receiver: CallbackReceiver, client: httpx.Client) -> None:
    response = client.post(receiver.url, json=many_events(MAX_EVENTS_PER_POST))

    assert response.status_code == 200
    assert receiver.stats()["events"] == MAX_EVENTS_PER_POST


@pytest.mark.parametrize(
    "batch",
    [
        many_events(1001),
        many_events(600, "softbounce") + many_events(401, "hardbounce"),
    ],
    ids=["one-type", "split-over-two-types"],
)
def test_more_than_1000_events_are_refused_like_clevertap(
    receiver: CallbackReceiver, client: httpx.Client, batch: list[dict[str, Any]]
) -> None:
    response = client.post(receiver.url, json=batch)

    assert response.status_code == 400
    assert response.json()["error"] == TOO_MANY_EVENTS
    assert receiver.stats()["invalid_batches"] == 1
    assert receiver.stats()["events"] == 0


def test_the_v2_shape_is_accepted(receiver: CallbackReceiver, client: httpx.Client) -> None:
    batch = {
        "version": "v2",
        "events": {
            "success": [{"type": "delivered", "email": "a@example.com", "meta": "m1"}],
            "failed": [
                {"type": "hard_bounce", "email": "b@example.com", "meta": "m2"},
                {"type": "soft_bounce", "email": "c@example.com", "description": "full"},
                {"type": "unsubscribed", "email": "d@example.com", "extra": "ignored"},
            ],
        },
    }

    response = client.post(receiver.url, json=batch)

    assert response.status_code == 200, response.text
    assert receiver.received[0].payload_format == "v2"
    assert receiver.stats()["events_by_type"] == {
        "delivered": 1,
        "hardbounce": 1,
        "softbounce": 1,
        "unsubscribe": 1,
    }


# --------------------------------------------------------------------------- rejected batches

V2_OK_ITEM = {"type": "hard_bounce", "email": "b@example.com"}
REJECTIONS: list[tuple[str, Any, str]] = [
    ("not-json", b"[{", "body is not valid UTF-8 JSON"),
    ("not-utf8", b"\xff[]", "body is not valid UTF-8 JSON"),
    ("utf16", '[{"event": "x"}]'.encode("utf-16"), "body is not valid UTF-8 JSON"),
    ("scalar", 42, "not a JSON array"),
    ("empty-array", [], "empty array"),
    ("element-not-object", ["softbounce"], "element 0 is not an object"),
    (
        "element-extra-key",
        [{**legacy("hardbounce", "a@x.io"), "x": 1}],
        "expected exactly event and data",
    ),
    ("element-no-data", [{"event": "hardbounce"}], "data is not a non-empty array"),
    ("unknown-event", [legacy("bounce", "a@x.io")], "is not one of softbounce"),
    ("v2-name-in-legacy", [legacy("hard_bounce", "a@x.io")], "is not one of softbounce"),
    (
        "duplicate-event",
        [legacy("softbounce", "a@x.io"), legacy("softbounce", "b@x.io")],
        "appears more than once",
    ),
    ("empty-data", [{"event": "hardbounce", "data": []}], "data is not a non-empty array"),
    (
        "data-not-array",
        [{"event": "hardbounce", "data": {"e": "a@x.io", "ts": 1}}],
        "data is not a non-empty array",
    ),
    ("item-not-object", [{"event": "hardbounce", "data": ["a@x.io"]}], "data 0 is not an object"),
    (
        "item-extra-key",
        [{"event": "hardbounce", "data": [{"e": "a@x.io", "ts": 1, "m": ""}]}],
        "expected exactly e and ts",
    ),
    ("item-no-ts", [{"event": "hardbounce", "data": [{"e": "a@x.io"}]}], "ts is not an integer"),
    ("empty-email", [legacy("hardbounce", "")], "e is not a non-empty string"),
    (
        "email-not-string",
        [{"event": "hardbounce", "data": [{"e": 7, "ts": 1}]}],
        "e is not a non-empty string",
    ),
    (
        "ts-string",
        [{"event": "hardbounce", "data": [{"e": "a@x.io", "ts": "1435322805"}]}],
        "ts is not an integer",
    ),
    (
        "ts-float",
        [{"event": "hardbounce", "data": [{"e": "a@x.io", "ts": 1435322805.5}]}],
        "ts is not an integer",
    ),
    (
        "ts-bool",
        [{"event": "hardbounce", "data": [{"e": "a@x.io", "ts": True}]}],
        "ts is not an integer",
    ),
    ("ts-milliseconds", [legacy("hardbounce", "a@x.io", ts=1435322805000)], "milliseconds"),
    ("ts-negative", [legacy("hardbounce", "a@x.io", ts=-1)], "ts is negative"),
    ("v2-wrong-version", {"version": "v1", "events": {"failed": [V2_OK_ITEM]}}, '"version": "v2"'),
    ("v2-no-events", {"version": "v2", "events": {}}, "no events"),
    (
        "v2-unknown-type",
        {"version": "v2", "events": {"failed": [{**V2_OK_ITEM, "type": "bounce"}]}},
        "is not one of hard_bounce",
    ),
    (
        "v2-delivered-in-failed",
        {"version": "v2", "events": {"failed": [{**V2_OK_ITEM, "type": "delivered"}]}},
        "is not one of hard_bounce",
    ),
    (
        "v2-no-email",
        {"version": "v2", "events": {"failed": [{"type": "hard_bounce"}]}},
        "email is not a non-empty string",
    ),
    (
        "v2-meta-not-string",
        {"version": "v2", "events": {"failed": [{**V2_OK_ITEM, "meta": {}}]}},
        "meta is not a string",
    ),
]


@pytest.mark.parametrize(
    ("body", "problem"), [case[1:] for case in REJECTIONS], ids=[case[0] for case in REJECTIONS]
)
def test_each_format_rule_is_enforced_and_named(
    receiver: CallbackReceiver, client: httpx.Client, body: Any, problem: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    response = client.post(receiver.url, content=content, headers=JSON)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid payload"
    assert any(problem in text for text in response.json()["problems"]), response.json()
    (post,) = receiver.received
    assert not post.valid and any(problem in text for text in post.problems)
    assert receiver.stats()["invalid_batches"] == 1


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_the_content_type_must_be_json(
    receiver: CallbackReceiver, client: httpx.Client, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = client.post(receiver.url, content=SEED_BOUNCES, headers=headers)

    assert response.status_code == 400
    assert "Content-Type is not application/json" in response.json()["problems"]


def test_a_charset_parameter_on_the_content_type_is_fine(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}

    assert client.post(receiver.url, content=SEED_BOUNCES, headers=headers).status_code == 200


def test_lenient_mode_accepts_invalid_batches_but_still_flags_them(client: httpx.Client) -> None:
    with CallbackReceiver(strict=False) as lenient:
        response = client.post(lenient.url, json=[legacy("hardbounce", "a@x.io", ts=-1)])

        assert response.status_code == 200
        assert lenient.stats()["invalid_batches"] == 1
        assert lenient.received[0].problems == ["element 0 data 0: ts is negative"]


# --------------------------------------------------------------------------- faults


def test_503_with_retry_after_for_two_requests_then_200(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    receiver.set_faults(FaultPlan(status=503, count=2, retry_after="2"))

    answers = [client.post(receiver.url, content=SEED_BOUNCES, headers=JSON) for _ in range(3)]

    assert [r.status_code for r in answers] == [503, 503, 200]
    assert [r.headers.get("Retry-After") for r in answers] == ["2", "2", None]
    stats = receiver.stats()
    assert stats["by_status"] == {"200": 1, "503": 2}
    assert stats["faults_injected"] == 2
    assert stats["events"] == 3, "refused batches are not counted as delivered"


def test_a_fault_with_count_minus_one_never_ends(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    receiver.set_faults(FaultPlan(status=500, count=-1))

    codes = {client.post(receiver.url, json=many_events(1)).status_code for _ in range(5)}

    assert codes == {500}


def test_a_delay_longer_than_the_client_timeout_is_a_timeout_then_recovery(
    receiver: CallbackReceiver,
) -> None:
    receiver.set_faults(FaultPlan(delay_s=2.0, count=1))
    with httpx.Client(timeout=0.2) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.post(receiver.url, content=SEED_BOUNCES, headers=JSON)

        assert impatient.post(receiver.url, content=SEED_BOUNCES, headers=JSON).status_code == 200


def test_a_delay_within_the_client_timeout_still_answers(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    receiver.set_faults(FaultPlan(delay_s=0.05, count=1, status=429, retry_after="1"))

    response = client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)

    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")
    assert receiver.received[0].fault == "delay 0.05s, status 429 Retry-After 1"


def test_a_dropped_connection_is_a_transport_error_then_recovery(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    receiver.set_faults(FaultPlan(close_connection=True, count=1))

    with pytest.raises(httpx.TransportError):
        client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)
    assert client.post(receiver.url, content=SEED_BOUNCES, headers=JSON).status_code == 200
    assert receiver.stats()["by_status"] == {"200": 1, "reset": 1}


def test_partial_success_body_is_shaped_like_clevertaps(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    receiver.set_faults(FaultPlan(partial_unprocessed=2, count=1))

    response = client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)

    assert response.status_code == 200
    assert response.json() == {
        "error": "2 event(s) failed to process",
        "TOTAL_EVENTS": 3,
        "PROCESSED_EVENTS": 1,
        "UNPROCESSED_EVENTS": [
            {
                "e": "email1@emailprovider.com",
                "ts": 1435322805,
                "event": "softbounce",
                "errorDescription": UNMAPPED_EVENT,
            },
            {
                "e": "email2@emailprovider2.com",
                "ts": 1435322805,
                "event": "softbounce",
                "errorDescription": UNMAPPED_EVENT,
            },
        ],
    }
    assert list(response.json()["UNPROCESSED_EVENTS"][0]) == [
        "e",
        "ts",
        "event",
        "errorDescription",
    ]
    stats = receiver.stats()
    assert (stats["events_by_type"], stats["unprocessed_events"]) == ({"hardbounce": 1}, 2)


def test_partial_success_on_v2_echoes_the_failed_items(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    item = {"type": "soft_bounce", "email": "b@example.com", "meta": "m"}
    receiver.set_faults(FaultPlan(partial_unprocessed=5, count=1))

    response = client.post(receiver.url, json={"version": "v2", "events": {"failed": [item]}})

    assert response.json()["UNPROCESSED_EVENTS"] == [{**item, "errorDescription": UNMAPPED_EVENT}]
    assert response.json()["PROCESSED_EVENTS"] == 0


def test_random_faults_use_503_when_the_status_is_2xx(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    receiver.set_faults(FaultPlan(fail_rate=1.0))

    codes = {client.post(receiver.url, json=many_events(1)).status_code for _ in range(3)}

    assert codes == {503}


def test_random_faults_repeat_with_the_same_seed(client: httpx.Client) -> None:
    def sequence() -> list[int]:
        with CallbackReceiver(faults=FaultPlan(fail_rate=0.5, status=502, seed=7)) as seeded:
            return [client.post(seeded.url, json=many_events(1)).status_code for _ in range(12)]

    first = sequence()

    assert first == sequence()
    assert set(first) == {200, 502}


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"status": 99}, "status"),
        ({"count": -2}, "count"),
        ({"fail_rate": 1.5}, "fail_rate"),
        ({"delay_s": -1}, "delay_s"),
        ({"status": "503"}, "wrong type"),
        ({"close_connection": 1}, "wrong type"),
        ({"count": True}, "wrong type"),
        ({"statuss": 503}, "unknown fault plan keys"),
    ],
)
def test_bad_fault_plans_are_refused(plan: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultPlan.from_mapping(plan)


# --------------------------------------------------------------------------- control API


def test_the_control_endpoint_switches_faults_at_runtime(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    control = f"{receiver.base_url}/_control"

    answer = client.post(control, json={"status": 429, "count": 1, "retry_after": 3})
    faulted = client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)
    healthy = client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)

    assert answer.status_code == 200
    assert answer.json()["faults"]["retry_after"] == "3"
    assert (faulted.status_code, faulted.headers["Retry-After"]) == (429, "3")
    assert healthy.status_code == 200
    assert client.get(control).json()["remaining"] == 0


@pytest.mark.parametrize("body", [b"{nope", b"[]", b'{"status": 1000}', b'{"colour": "red"}'])
def test_a_bad_control_request_leaves_the_faults_alone(
    receiver: CallbackReceiver, client: httpx.Client, body: bytes
) -> None:
    receiver.set_faults(FaultPlan(status=500, count=-1))

    answer = client.post(f"{receiver.base_url}/_control", content=body, headers=JSON)

    assert answer.status_code == 400
    assert receiver.faults == FaultPlan(status=500, count=-1)


def test_stats_and_received_are_served_and_control_calls_are_not_counted(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    client.post(f"{receiver.base_url}/_control", json={})
    for body in (SEED_BOUNCES, SEED_UNSUBSCRIBES, SEED_BOUNCES):
        client.post(f"{receiver.base_url}/cb?token={TOKEN}", content=body, headers=JSON)

    stats = client.get(f"{receiver.base_url}/_stats").json()
    tail = client.get(f"{receiver.base_url}/_received", params={"since": 1}).json()

    assert (stats["posts"], stats["events"], stats["unique_events"]) == (3, 8, 5)
    assert (stats["duplicate_events"], stats["unique_emails"]) == (3, 3)
    assert [post["index"] for post in tail] == [1, 2]
    assert tail[0]["events"][0] == {
        "event": "unsubscribe",
        "e": "email1@emailprovider.com",
        "ts": 1504632929,
    }
    assert TOKEN not in json.dumps(tail)


def test_a_get_on_a_callback_path_is_405(receiver: CallbackReceiver, client: httpx.Client) -> None:
    assert client.get(receiver.url).status_code == 405
    assert client.post(f"{receiver.base_url}/_stats", json={}).status_code == 405
    assert receiver.received == []


def test_a_chunked_body_is_read(receiver: CallbackReceiver, client: httpx.Client) -> None:
    def pieces() -> Iterator[bytes]:
        yield SEED_BOUNCES[:10]
        yield SEED_BOUNCES[10:]

    response = client.post(receiver.url, content=pieces(), headers=JSON)

    assert response.status_code == 200
    assert receiver.received[0].body == SEED_BOUNCES


def test_wait_for_events_counts_accepted_events_only(
    receiver: CallbackReceiver, client: httpx.Client
) -> None:
    receiver.set_faults(FaultPlan(status=503, count=1))
    client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)

    assert not receiver.wait_for_events(1, timeout=0.05)
    client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)
    client.post(receiver.url, content=SEED_BOUNCES, headers=JSON)
    assert receiver.wait_for_events(6, timeout=1.0)
    assert not receiver.wait_for_events(4, timeout=0.05, unique=True)


def test_concurrent_posts_are_all_counted(receiver: CallbackReceiver, client: httpx.Client) -> None:
    def send(worker: int) -> None:
        for batch in range(10):
            emails = [f"w{worker}b{batch}n{n}@example.com" for n in range(5)]
            client.post(receiver.url, json=[legacy("softbounce", *emails)])

    workers = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    stats = receiver.stats()
    assert (stats["posts"], stats["events"], stats["unique_emails"]) == (80, 400, 400)
    assert [post.index for post in receiver.received] == list(range(80))


# --------------------------------------------------------------------------- echo and record


def test_echo_never_shows_the_query_string_or_a_whole_email(client: httpx.Client) -> None:
    out = io.StringIO()
    with CallbackReceiver(echo=out) as echoing:
        url = f"{echoing.base_url}/bounce?token={TOKEN}"
        client.post(url, content=SEED_BOUNCES, headers=JSON)
        echoing.set_faults(FaultPlan(status=503, count=1, retry_after="2"))
        client.post(url, content=SEED_BOUNCES, headers=JSON)
        client.post(url, json=[legacy("jane.doe@example.com", "jane.doe@example.com")])

    text = out.getvalue()
    assert TOKEN not in text and "?" not in text
    for email in ("email1@emailprovider.com", "email3@emailprovider.com", "jane.doe@example.com"):
        assert email not in text
    assert "e***@emailprovider.com" in text and "/bounce" in text
    assert "hardbounce=1 softbounce=2" in text
    assert "FAULT injected (status 503 Retry-After 2)" in text
    assert "INVALID" in text


def test_the_record_file_gets_one_line_per_post(tmp_path: Path, client: httpx.Client) -> None:
    record = tmp_path / "received.jsonl"
    with CallbackReceiver(record_path=record, faults=FaultPlan(status=500, count=1)) as recording:
        for _ in range(2):
            client.post(
                f"{recording.base_url}/unsub?token={TOKEN}", content=SEED_UNSUBSCRIBES, headers=JSON
            )

    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(line["path"], line["status"]) for line in lines] == [("/unsub", 500), ("/unsub", 200)]
    assert [e["e"] for e in lines[1]["events"]] == [
        "email1@emailprovider.com",
        "email2@emailprovider2.com",
    ]
    assert TOKEN not in record.read_text()


def test_reprs_hold_no_email_or_query(receiver: CallbackReceiver, client: httpx.Client) -> None:
    client.post(f"{receiver.base_url}/b?token={TOKEN}", content=SEED_BOUNCES, headers=JSON)

    post = receiver.received[0]

    for text in (repr(post), repr(post.events[0])):
        assert "@" not in text and TOKEN not in text


# --------------------------------------------------------------------------- properties

LOCAL_PARTS = st.text("abcxyz0189._+-", min_size=1, max_size=16)
DOMAINS = st.builds(
    "{}.{}".format,
    st.text("abcxyz019", min_size=1, max_size=10),
    st.sampled_from(["com", "org", "io", "co.uk"]),
)
EMAILS = st.builds("{}@{}".format, LOCAL_PARTS, DOMAINS)
TIMESTAMPS = st.integers(min_value=0, max_value=4_000_000_000)


@given(EMAILS)
def test_a_masked_email_keeps_only_the_first_letter_and_the_domain(email: str) -> None:
    masked = mask_email(email)

    assert email not in masked
    assert masked == f"{email[0]}***@{email.split('@')[1]}"


@st.composite
def legacy_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    types = draw(
        st.lists(
            st.sampled_from(["softbounce", "hardbounce", "unsubscribe"]), min_size=1, unique=True
        )
    )
    return [
        {
            "event": event,
            "data": draw(
                st.lists(
                    st.fixed_dictionaries({"e": EMAILS, "ts": TIMESTAMPS}), min_size=1, max_size=8
                )
            ),
        }
        for event in types
    ]


@settings(max_examples=60)
@given(legacy_batches())
def test_every_well_formed_legacy_batch_passes_with_all_its_events(
    batch: list[dict[str, Any]],
) -> None:
    check = check_batch(json.dumps(batch).encode(), "application/json")

    assert check.problems == ()
    expected = [(el["event"], item["e"], item["ts"]) for el in batch for item in el["data"]]
    assert [(e.event, e.email, e.ts) for e in check.events] == expected


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | EMAILS
    | st.sampled_from(["event", "data", "e", "ts", "softbounce", "v2", "version", "events"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["event", "data", "e", "ts", "version", "events", "failed", "type", "email"]
            )
            | EMAILS,
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=150)
@given(JSON_VALUES)
def test_any_json_gets_a_verdict_and_problems_never_quote_an_email(value: Any) -> None:
    body = json.dumps(value)

    check = check_batch(body.encode(), "application/json")

    assert check.valid == (len(check.problems) == 0)
    problems = " ".join(check.problems)
    for token in body.replace('"', " ").replace(",", " ").split():
        if "@" in token:
            assert token.strip("[]{}:") not in problems


# --------------------------------------------------------------------------- command line


def test_the_command_serves_until_sigterm_and_prints_a_summary(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "bouncewire.receiver",
        "--port",
        "0",
        "--fail-status",
        "503",
        "--fail-count",
        "1",
        "--retry-after",
        "1",
        "--record",
        str(tmp_path / "rec.jsonl"),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        ready = process.stdout.readline()
        base_url = ready.split("listening on ")[1].split()[0]
        with httpx.Client(timeout=5.0) as http:
            codes = [
                http.post(
                    f"{base_url}/b?token={TOKEN}", content=SEED_BOUNCES, headers=JSON
                ).status_code
                for _ in range(2)
            ]
        process.send_signal(signal.SIGTERM)
        output = process.stdout.read()
        assert process.wait(timeout=10) == 0

    assert codes == [503, 200]
    assert "2 callback POSTs, 1 accepted" in output
    assert "hardbounce=1 softbounce=2" in output
    assert TOKEN not in ready + output and "email1@emailprovider.com" not in output


def test_the_command_refuses_a_bad_fault_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_receiver(["--port", "0", "--fail-rate", "2"]) == 2
    assert "fail_rate" in capsys.readouterr().err


def test_the_command_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        assert run_receiver(["--port", str(port), "--quiet"]) == 2
    assert "cannot listen" in capsys.readouterr().err


# --------------------------------------------------------------------------- a distant API


def post_at_once(url: str, n: int) -> list[httpx.Response]:
    """`n` callbacks at the same moment, one connection each (the clients are built first:
    each costs ~0.1 s, which on a busy machine would spread the requests out)."""
    results: list[httpx.Response] = []
    lock = threading.Lock()
    clients = [httpx.Client(timeout=5.0) for _ in range(n)]
    start = threading.Barrier(n)

    def one(http: httpx.Client) -> None:
        start.wait(10)
        response = http.post(url, content=SEED_BOUNCES, headers=JSON)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for client in clients:
        client.close()
    return results


def test_a_delay_is_served_concurrently_like_a_real_api() -> None:
    with CallbackReceiver(latency_s=0.3) as slow:
        started = time.monotonic()
        answers = post_at_once(slow.url, 8)
        took = time.monotonic() - started
        stats = slow.stats()
    assert [a.status_code for a in answers] == [200] * 8
    assert 0.3 <= took < 2.4  # eight 0.3 s answers side by side, not one after another
    assert stats["peak_in_progress"] == 8 and stats["throttled"] == 0


def test_above_k_at_once_the_answer_is_429_with_retry_after() -> None:
    with CallbackReceiver(latency_s=0.3, max_concurrent=3, throttle_retry_after="2") as capped:
        answers = post_at_once(capped.url, 7)
        stats = capped.stats()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 3 + [429] * 4
    refused = [a for a in answers if a.status_code == 429]
    assert all(a.headers["Retry-After"] == "2" for a in refused)
    assert all(a.json()["error"] == "Too many concurrent requests" for a in refused)
    assert stats["peak_in_progress"] == 3 and stats["throttled"] == 4
    assert stats["accepted"] == 3 and stats["by_status"] == {"200": 3, "429": 4}


def test_the_command_takes_delay_ms_and_max_concurrent() -> None:
    command = [sys.executable, "-m", "bouncewire.receiver", "--port", "0", "--quiet",
               "--delay-ms", "200", "--max-concurrent", "2"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        ready = process.stdout.readline()
        base_url = ready.split("listening on ")[1].split()[0]
        codes = sorted(a.status_code for a in post_at_once(f"{base_url}/b", 4))
        process.send_signal(signal.SIGTERM)
        output = process.stdout.read()
        assert process.wait(timeout=10) == 0
    assert "answers after 200 ms, 429 above 2 at once" in ready
    assert codes == [200, 200, 429, 429]
    assert "at once: peak 2, 2 throttled (429)" in output
