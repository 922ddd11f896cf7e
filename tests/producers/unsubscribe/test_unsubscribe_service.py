"""The unsubscribe service end to end: real uvicorn on loopback, real broker, records read
back from the topic and decoded with the contract's codec."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from bouncewire.logs import JsonFormatter
from bouncewire.producers.unsubscribe import Claims, Keyring, daily_event_id, sign
from tests.producers.unsubscribe.unsubscribe_harness import OLD_KEYS, SERVER_KEYS, LiveService

pytestmark = pytest.mark.integration

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
FORGER_KEYS = Keyring.parse("k2:" + "f" * 40)


def unique_email() -> str:
    return f"user.{uuid.uuid4().hex[:10]}@example.com"


def assert_one_click_answer(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert "location" not in response.headers  # RFC 8058: no redirect
    assert "set-cookie" not in response.headers


def test_one_click_post_publishes_exactly_one_unsubscribe(
    live_service: LiveService, http: httpx.Client
) -> None:
    email = unique_email()
    start = live_service.end_offsets()
    response = http.post(live_service.link(email, "spring-sale", "meta-42"), data=ONE_CLICK)
    assert_one_click_answer(response)
    messages = live_service.published_since(start)
    assert len(messages) == 1
    record = live_service.decode(messages[0])
    assert record["email"] == email
    assert record["source"] == "one_click"
    assert (record["campaign_id"], record["meta"]) == ("spring-sale", "meta-42")
    assert record["event_id"] == daily_event_id(Claims(email, "spring-sale", "meta-42"),
                                                record["event_time"])
    assert messages[0].key() == email.lower().encode()
    assert messages[0].timestamp()[1] == record["event_time"]


def test_one_click_as_multipart_form_data(live_service: LiveService, http: httpx.Client) -> None:
    email = unique_email()
    start = live_service.end_offsets()
    # RFC 8058 §3.2: the body SHOULD be multipart/form-data.
    response = http.post(live_service.link(email), content=_multipart_one_click(),
                         headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert_one_click_answer(response)
    records = [live_service.decode(m) for m in live_service.published_since(start)]
    assert [(r["email"], r["source"]) for r in records] == [(email, "one_click")]


def _multipart_one_click() -> bytes:
    return (b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
            b"One-Click\r\n--XyZ--\r\n")


def test_get_shows_a_button_and_publishes_nothing(
    live_service: LiveService, http: httpx.Client
) -> None:
    email = unique_email()
    url = live_service.link(email, "c-1")
    start = live_service.end_offsets()
    page = http.get(url)
    head = http.head(url)
    assert page.status_code == 200 and head.status_code == 200
    assert '<form method="post"' in page.text and "<button" in page.text
    assert email not in page.text and email[0] + "***@example.com" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert live_service.published_since(start) == []


def test_page_button_post_publishes_a_link_unsubscribe(
    live_service: LiveService, http: httpx.Client
) -> None:
    email = unique_email()
    start = live_service.end_offsets()
    response = http.post(live_service.link(email), data={"confirm": "1"})
    assert response.status_code == 200
    assert 'id="done"' in response.text
    records = [live_service.decode(m) for m in live_service.published_since(start)]
    assert [(r["email"], r["source"]) for r in records] == [(email, "link")]


def test_repeated_clicks_each_publish_with_the_same_event_id(
    live_service: LiveService, http: httpx.Client
) -> None:
    url = live_service.link(unique_email())
    start = live_service.end_offsets()
    for _ in range(3):
        assert_one_click_answer(http.post(url, data=ONE_CLICK))
    records = [live_service.decode(m) for m in live_service.published_since(start)]
    assert len(records) == 3
    assert len({r["event_id"] for r in records}) == 1


def tampered_tokens(token: str) -> dict[str, str]:
    version, kid, payload, tag = token.split(".")
    flipped = "B" if payload[5] == "A" else "A"
    flipped_tag = "y" if tag[-2] == "x" else "x"  # a tag ending in "x?" would stay valid
    other_email = sign(FORGER_KEYS, Claims("victim@example.com"))
    return {
        "flipped payload char": ".".join([version, kid, payload[:5] + flipped + payload[6:], tag]),
        "flipped tag char": ".".join([version, kid, payload, tag[:-2] + flipped_tag + tag[-1]]),
        "wrong key id": ".".join([version, "k1", payload, tag]),
        "unknown key id": ".".join([version, "k9", payload, tag]),
        "truncated": token[:-4],
        "forged with another secret": other_email,
        "unknown version": ".".join(["2", kid, payload, tag]),
        "not a token": "hello",
        "huge": "A" * 5000,
    }


@pytest.mark.parametrize("case", list(tampered_tokens(sign(SERVER_KEYS, Claims("a@b.co")))))
def test_tampered_tokens_are_refused_and_publish_nothing(
    live_service: LiveService, http: httpx.Client, case: str
) -> None:
    token = tampered_tokens(sign(SERVER_KEYS, Claims(unique_email(), "c")))[case]
    start = live_service.end_offsets()
    get = http.get(live_service.url(token))
    one_click = http.post(live_service.url(token), data=ONE_CLICK)
    button = http.post(live_service.url(token), data={"confirm": "1"})
    assert {get.status_code, one_click.status_code, button.status_code} <= {400, 404, 414}
    assert live_service.published_since(start) == []


def test_token_of_a_rotated_out_signing_key_still_works(
    live_service: LiveService, http: httpx.Client
) -> None:
    email = unique_email()
    start = live_service.end_offsets()
    response = http.post(live_service.link(email, keys=OLD_KEYS), data=ONE_CLICK)
    assert_one_click_answer(response)
    records = [live_service.decode(m) for m in live_service.published_since(start)]
    assert [r["email"] for r in records] == [email]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"List-Unsubscribe=One-Click&" + b"x" * 20_000, "application/x-www-form-urlencoded",
         413),
        (b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\n"
         b"data\r\n--XyZ--\r\n", "multipart/form-data; boundary=XyZ", 400),
        ("&".join(f"k{i}=v" for i in range(50)).encode(), "application/x-www-form-urlencoded",
         400),
    ],
    ids=["oversized", "file-upload", "too-many-fields"],
)
def test_odd_bodies_are_refused_and_publish_nothing(
    live_service: LiveService, http: httpx.Client, body: bytes, content_type: str, status: int
) -> None:
    start = live_service.end_offsets()
    response = http.post(live_service.link(unique_email()), content=body,
                         headers={"content-type": content_type})
    assert response.status_code == status
    assert live_service.published_since(start) == []


def test_trailing_slash_is_not_redirected(live_service: LiveService, http: httpx.Client) -> None:
    start = live_service.end_offsets()
    response = http.post(live_service.link(unique_email()) + "/", data=ONE_CLICK)
    assert response.status_code == 404
    assert live_service.published_since(start) == []


def test_healthz(live_service: LiveService, http: httpx.Client) -> None:
    response = http.get(f"{live_service.base_url}/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


@pytest.mark.parametrize("data", [ONE_CLICK, {"confirm": "1"}], ids=["one-click", "button"])
def test_broker_down_answers_503_with_retry_after(
    down_service: LiveService, http: httpx.Client, data: dict[str, str]
) -> None:
    response = http.post(down_service.link(unique_email()), data=data)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert "location" not in response.headers


def test_logs_hold_neither_address_nor_token(
    live_service: LiveService, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    email = unique_email()
    url = live_service.link(email, "c-log")
    token = url.rsplit("/", 1)[1]
    caplog.set_level(logging.WARNING, logger="httpx")  # the test client's own request lines
    with caplog.at_level(logging.INFO):
        http.get(url)
        http.post(url, data=ONE_CLICK)
        http.post(url[:-3] + "xyz", data=ONE_CLICK)
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert any("unsubscribe published" in line for line in lines)
    assert any("token rejected" in line for line in lines)
    for line in lines:
        assert email not in line and email.split("@")[0] not in line
        assert token[10:40] not in line and NEW_SECRET_FRAGMENT not in line


NEW_SECRET_FRAGMENT = "n3w-s3cret"
