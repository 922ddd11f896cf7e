"""Signed tokens: round trips, rotation, and that no change to a token survives verification."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.unsubscribe import (
    Claims,
    KeyConfigError,
    Keyring,
    TokenError,
    daily_event_id,
    sign,
    verify,
)
from bouncewire.producers.unsubscribe.tokens import MAX_TOKEN_CHARS

SECRET_A = "secret-a-" + "x" * 32
SECRET_B = "secret-b-" + "y" * 32
RING = Keyring.parse(f"new:{SECRET_A},old:{SECRET_B}")
OLD_ONLY = Keyring.parse(f"old:{SECRET_B}")
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_."
DAY_MS = 86_400_000

local_parts = st.text(string.ascii_lowercase + string.digits + ".+_-", min_size=1, max_size=30
                      ).filter(lambda s: not s.startswith(".") and not s.endswith(".")
                               and ".." not in s)
domains = st.sampled_from(["example.com", "mail.example.org", "bücher.de", "[192.0.2.1]"])
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
texts = st.none() | st.text(max_size=200)
claims = st.builds(Claims, emails, texts, texts)


@given(claims)
def test_sign_then_verify_returns_the_claims(original: Claims) -> None:
    assert verify(RING, sign(RING, original)) == original


@given(claims)
def test_tokens_use_only_the_url_safe_alphabet(original: Claims) -> None:
    token = sign(RING, original)
    assert set(token) <= set(TOKEN_ALPHABET)
    assert token.startswith("1.new.")


@st.composite
def tampered(draw: st.DrawFn) -> tuple[str, str]:
    token = sign(RING, draw(claims))
    position = draw(st.integers(0, len(token) - 1))
    kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "swap"]))
    char = draw(st.sampled_from(TOKEN_ALPHABET))
    if kind == "replace":
        changed = token[:position] + char + token[position + 1 :]
    elif kind == "insert":
        changed = token[:position] + char + token[position:]
    elif kind == "delete":
        changed = token[:position] + token[position + 1 :]
    elif kind == "truncate":
        changed = token[:position]
    else:
        other = draw(st.integers(0, len(token) - 1))
        chars = list(token)
        chars[position], chars[other] = chars[other], chars[position]
        changed = "".join(chars)
    return token, changed


@given(tampered())
def test_any_change_to_a_valid_token_fails_verification(pair: tuple[str, str]) -> None:
    original, changed = pair
    if changed == original:  # replacing a char by itself, swapping equal chars
        return
    with pytest.raises(TokenError):
        verify(RING, changed)


@given(st.text(max_size=3000) | st.text(TOKEN_ALPHABET, max_size=300))
def test_random_strings_fail_without_raising_anything_else(text: str) -> None:
    with pytest.raises(TokenError):
        verify(RING, text)


@given(st.lists(st.text(string.ascii_letters + string.digits + "-_", max_size=60),
                min_size=4, max_size=4))
def test_token_shaped_garbage_fails(parts: list[str]) -> None:
    with pytest.raises(TokenError):
        verify(RING, ".".join(["1", "new", *parts[2:]]))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: "2" + t[1:], "unknown_version"),
        (lambda t: t.replace(".new.", ".old.", 1), "bad_signature"),
        (lambda t: t.replace(".new.", ".gone.", 1), "unknown_key"),
        (lambda t: t[:-1], "malformed"),
        (lambda t: t + "A", "malformed"),
        (lambda t: t.replace(".", "", 1), "malformed"),
        (lambda t: t + ".x", "malformed"),
        (lambda t: t[:10] + "é" + t[11:], "malformed"),
        (lambda t: t[:10] + "/" + t[11:], "malformed"),
        (lambda t: "A" * (MAX_TOKEN_CHARS + 1), "too_long"),
        (lambda t: "", "malformed"),
    ],
    ids=["version", "kid-swap", "unknown-kid", "short-tag", "long-tag", "fields", "extra-field",
         "non-ascii", "slash", "too-long", "empty"],
)
def test_refusal_reasons(mutate: object, reason: str) -> None:
    token = sign(RING, Claims("a@example.com", "c"))
    with pytest.raises(TokenError) as caught:
        verify(RING, mutate(token))  # type: ignore[operator]
    assert caught.value.reason == reason


def test_forged_with_another_secret_under_the_same_key_id() -> None:
    forger = Keyring.parse("new:" + "f" * 40)
    with pytest.raises(TokenError, match="bad_signature"):
        verify(RING, sign(forger, Claims("victim@example.com")))


def test_token_of_a_retired_signing_key_verifies_while_its_key_is_listed() -> None:
    token = sign(OLD_ONLY, Claims("a@example.com"))
    assert verify(RING, token).email == "a@example.com"
    with pytest.raises(TokenError, match="unknown_key"):
        verify(Keyring.parse(f"new:{SECRET_A}"), token)


def test_first_key_signs() -> None:
    assert RING.signing_kid == "new" and RING.kids == ("new", "old")


@pytest.mark.parametrize(
    "text",
    ["", " , ", "nocolon", f"bad kid:{SECRET_A}", f"{'k' * 17}:{SECRET_A}", "k:short",
     f"k:{SECRET_A},k:{SECRET_B}"],
    ids=["empty", "blank", "no-colon", "kid-space", "kid-long", "short-secret", "duplicate"],
)
def test_bad_key_configurations_are_refused_without_echoing_secrets(text: str) -> None:
    with pytest.raises(KeyConfigError) as caught:
        Keyring.parse(text)
    message = str(caught.value)
    assert SECRET_A not in message and SECRET_B not in message and "short" not in message


def test_key_configuration_tolerates_whitespace_and_newlines() -> None:
    ring = Keyring.parse(f" new : {SECRET_A} \n old:{SECRET_B}\n")
    assert ring.kids == ("new", "old")
    assert verify(RING, sign(ring, Claims("a@example.com"))).email == "a@example.com"


def test_reprs_hide_secrets_and_addresses() -> None:
    shown = repr(RING) + repr(RING.key("new")) + repr(Claims("who@example.com", "c", "m"))
    assert SECRET_A not in shown and SECRET_B not in shown
    assert "who@example.com" not in shown


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "a b@example.com"])
def test_signing_refuses_unusable_addresses(email: str) -> None:
    with pytest.raises(TokenError, match="invalid_address"):
        sign(RING, Claims(email))


def test_signing_refuses_tokens_too_long_for_a_url() -> None:
    with pytest.raises(TokenError, match="too_long"):
        sign(RING, Claims("a@example.com", meta="m" * MAX_TOKEN_CHARS))


@given(claims, st.integers(0, 10**13))
def test_event_id_is_stable_within_a_utc_day_and_changes_across_days(
    who: Claims, now_ms: int
) -> None:
    day_start = now_ms - now_ms % DAY_MS
    assert daily_event_id(who, now_ms) == daily_event_id(who, day_start + DAY_MS - 1)
    assert daily_event_id(who, now_ms) != daily_event_id(who, day_start + DAY_MS)


def test_event_id_differs_per_campaign() -> None:
    assert daily_event_id(Claims("a@example.com", "c1"), 0) != daily_event_id(
        Claims("a@example.com", "c2"), 0)
