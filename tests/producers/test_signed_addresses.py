"""Signed VERP and mailto addresses: round trips, case folding, rotation, forgery."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.signed_addresses import signed_address, verify_address
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring, TokenError

RING = Keyring([("K2", b"k" * 32), ("k1old", b"o" * 32)])


def test_round_trip_names_recipient_campaign_and_meta() -> None:
    claims = Claims("Jane.Doe@example.com", "c-42", '{"a":1}')
    address = signed_address(RING, claims, "Bounces.Example.NET", "bounce")
    assert address.startswith("bounce+v1.k2.")
    assert address.endswith("@bounces.example.net")
    assert address == address.lower()
    assert verify_address(RING, address, "bounce") == claims


def test_survives_case_folding_and_angle_brackets() -> None:
    address = signed_address(RING, Claims("a@example.com"), "b.example", "bounce")
    assert verify_address(RING, f"<{address.upper()}>", "bounce") == Claims("a@example.com")


def test_old_key_still_verifies_after_rotation() -> None:
    old_ring = Keyring([("k1old", b"o" * 32)])
    address = signed_address(old_ring, Claims("a@example.com"), "b.example", "unsubscribe")
    assert verify_address(RING, address, "unsubscribe").email == "a@example.com"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda a: a.replace("bounce+", "unsubscribe+", 1), "wrong_purpose"),
        (lambda a: a[:20] + ("a" if a[20] != "a" else "b") + a[21:], "bad_signature"),
        (lambda a: a.replace(".k2.", ".k9.", 1), "unknown_key"),
        (lambda a: "bounce@b.example", "malformed"),
    ],
)
def test_forged_or_tampered_addresses_attribute_nothing(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    address = signed_address(RING, Claims("a@example.com", "c"), "b.example", "bounce")
    with pytest.raises(TokenError) as caught:
        verify_address(RING, mutate(address), "bounce")
    assert caught.value.reason == reason


def test_other_keys_signature_is_refused() -> None:
    stranger = Keyring([("K2", b"x" * 32)])
    address = signed_address(stranger, Claims("a@example.com"), "b.example", "bounce")
    with pytest.raises(TokenError, match="bad_signature"):
        verify_address(RING, address, "bounce")


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_but_token_error(text: str) -> None:
    try:
        verify_address(RING, text, "bounce")
    except TokenError:
        pass


def test_reprs_and_errors_hold_no_address_or_secret() -> None:
    with pytest.raises(TokenError) as caught:
        signed_address(RING, Claims("not-an-address"), "b.example", "bounce")
    assert "not-an-address" not in str(caught.value)
    assert "kkkk" not in repr(RING)
