"""The gateway's pure pieces: users file and scrypt hashes, limits and the AUTH throttle,
header decisions, client replies, the relayed-but-unpublished memory. No network, no Kafka."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.gateway.dedup import RecentlyRelayed, Unpublished, transaction_digest
from bouncewire.producers.gateway.headers import (
    UnsubscribeDecision,
    dkim_signed_names,
    message_facts,
    with_unsubscribe_headers,
)
from bouncewire.producers.gateway.limits import AuthThrottle, GatewayLimits, SessionSlots
from bouncewire.producers.gateway.replies import client_reply, data_reply
from bouncewire.producers.gateway.users import (
    UsersFileError,
    UserStore,
    hash_password,
    parse_users,
    set_user,
    verify_password,
)
from bouncewire.producers.smtp_errors import Evidence

CHEAP = (2**4, 1, 1)  # hypothesis runs many: the cost is stored in the hash, so any works


# ------------------------------------------------------------------ passwords and the file


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_a_hash_verifies_its_password_only(password: str, other: str) -> None:
    stored = hash_password(password, cost=CHEAP)
    assert verify_password(stored, password)
    assert verify_password(stored, other) is (other == password)


def test_hashes_are_salted_and_hold_no_password() -> None:
    first, second = hash_password("same-Pass", cost=CHEAP), hash_password("same-Pass", cost=CHEAP)
    assert first != second and "same-Pass" not in first
    assert first.startswith("scrypt$16$1$1$")


@pytest.mark.parametrize("stored", ["", "scrypt$1$2", "bcrypt$x$y$z$a$b", "scrypt$a$8$1$AA==$AA==",
                                    "scrypt$16$1$1$!!$AA=="])
def test_a_malformed_hash_never_verifies(stored: str) -> None:
    assert verify_password(stored, "anything") is False


def test_users_file_lines() -> None:
    good = f"# comment\n\nclevertap:{hash_password('p', cost=CHEAP)}\n"
    assert list(parse_users(good)) == ["clevertap"]
    with pytest.raises(UsersFileError, match="line 1") as caught:
        parse_users("clevertap:plain-text-password\n")
    assert "plain-text-password" not in str(caught.value)


def test_set_user_writes_0600_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "users"
    assert set_user(path, "clevertap", "first-Pass") is True
    assert set_user(path, "clevertap", "second-Pass") is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "second-Pass" not in path.read_text()
    store = UserStore(path)
    assert store.check("clevertap", "second-Pass") and not store.check("clevertap", "first-Pass")
    with pytest.raises(UsersFileError):
        set_user(path, "bad name", "x")


def test_store_rereads_a_changed_file_and_keeps_the_old_on_a_broken_one(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(f"a:{hash_password('pa', cost=CHEAP)}\n")
    store = UserStore(path)
    path.write_text(f"a:{hash_password('pa', cost=CHEAP)}\nbb:{hash_password('pb', cost=CHEAP)}\n")
    assert store.check("bb", "pb")  # noticed without a SIGHUP
    path.write_text("a:broken\n")
    assert store.check("a", "pa")  # the last good file still serves
    assert not store.check("nobody", "pa")


# ------------------------------------------------------------------ limits


def test_throttle_allows_n_failures_per_window() -> None:
    throttle = AuthThrottle(allowed=3, window_s=60)
    assert [throttle.failed("10.0.0.1", t) for t in (0, 1, 2)] == [False, False, True]
    assert throttle.throttled("10.0.0.1", 30) and not throttle.throttled("10.0.0.2", 30)
    assert not throttle.throttled("10.0.0.1", 61)  # the oldest left the window
    throttle.succeeded("10.0.0.1")
    assert not throttle.throttled("10.0.0.1", 3)


def test_throttle_memory_is_bounded() -> None:
    throttle = AuthThrottle(allowed=1, window_s=60, max_clients=2)
    for client in ("a", "b", "c"):
        throttle.failed(client, 0)
    assert not throttle.throttled("a", 1) and throttle.throttled("c", 1)


def test_session_slots_and_limit_validation() -> None:
    slots = SessionSlots(1)
    assert slots.take() and not slots.take()
    slots.give_back()
    assert slots.take()
    with pytest.raises(ValueError, match="max_recipients"):
        GatewayLimits(max_recipients=0)


# ------------------------------------------------------------------ headers

SIGNED = (b"DKIM-Signature: v=1; a=rsa-sha256; d=shop.example.com; s=s1;\r\n"
          b"\th=from:to:subject:list-unsubscribe:list-unsubscribe-post; bh=x; b=y\r\n")


@pytest.mark.parametrize(("headers", "decision"), [
    (b"From: a@b.c\r\n", UnsubscribeDecision.ADD),
    (b"List-Unsubscribe: <https://x.test/u/1>\r\n", UnsubscribeDecision.ALREADY_PRESENT),
    (SIGNED, UnsubscribeDecision.DKIM_COVERS),
    (b"DKIM-Signature: v=1; d=a.b; h=From:To; b=z\r\n", UnsubscribeDecision.ADD),
])
def test_unsubscribe_decision(headers: bytes, decision: UnsubscribeDecision) -> None:
    assert message_facts(headers + b"\r\nbody\r\n").unsubscribe_decision() is decision


def test_facts_from_headers_only() -> None:
    data = (b"Message-ID: <m@x>\r\nX-Campaign-ID: cmp-1\r\nX-CleverTap_META: a\r\n b\r\n\r\n"
            b"X-CleverTap_META: not a header, the body\r\n")
    facts = message_facts(data)
    assert (facts.message_id, facts.campaign_id, facts.meta) == ("<m@x>", "cmp-1", "a b")


@given(st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True), min_size=1))
def test_dkim_h_tag_names(names: list[str]) -> None:
    signature = f"v=1; a=rsa-sha256; h={' : '.join(names)} ; bh=abc; b=def"
    assert dkim_signed_names(signature) == {name.lower() for name in names}


def test_unsubscribe_headers_are_prepended() -> None:
    added = with_unsubscribe_headers(b"From: a@b.c\r\n\r\nbody", "https://u.test/u/T")
    assert added.startswith(b"List-Unsubscribe: <https://u.test/u/T>\r\n"
                            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    assert message_facts(added).has_list_unsubscribe


# ------------------------------------------------------------------ replies

REPLIES = [
    (Evidence(250, "2.1.5", "2.1.5 OK"), "250 2.1.5 OK"),
    (Evidence(550, "5.1.1", "5.1.1 User unknown\nsee https://x"),
     "550-5.1.1 User unknown\r\n550 see https://x"),
    (Evidence(421, "4.7.0", "4.7.0 Try later"), "451 4.7.0 Try later"),
    (Evidence(error="timeout"), "451 4.4.1 Upstream relay unavailable (timeout), try again later"),
    (Evidence(535, "5.7.8", "5.7.8 no", "auth_failure"),
     "451 4.4.1 Upstream relay unavailable (auth_failure), try again later"),
]


@pytest.mark.parametrize(("evidence", "expected"), REPLIES)
def test_client_reply(evidence: Evidence, expected: str) -> None:
    assert client_reply(evidence) == expected


def test_data_reply_for_several_legs() -> None:
    ok, bad = Evidence(250, None, "2.0.0 queued"), Evidence(550, None, "5.7.1 refused")
    assert data_reply([ok, ok]) == "250 2.0.0 queued"
    assert data_reply([bad, bad]) == "550 5.7.1 refused"
    assert data_reply([ok, bad]).startswith("250 2.0.0 Relayed to 1 of 2")


# ------------------------------------------------------------------ relayed but unpublished


def test_digest_ignores_recipient_order_and_case() -> None:
    assert transaction_digest("A@x", ["b@y", "c@z"], b"m") == transaction_digest(
        "a@x", ["C@z", "b@y"], b"m")
    assert transaction_digest("a@x", ["b@y"], b"m") != transaction_digest("a@x", ["b@y"], b"n")


def test_recently_relayed_is_bounded_in_count_and_age() -> None:
    recent = RecentlyRelayed(max_entries=2, max_age_s=10)
    for name in ("a", "b", "c"):
        recent.keep(name, Unpublished((), "250 ok", kept_at=0))
    assert recent.find("a", 1) is None and recent.find("c", 1) is not None
    assert recent.find("c", 11) is None and len(recent) == 1
