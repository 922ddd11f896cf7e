"""Address rules at their edges (RFC 5321 / 5322 / 6531), masking and hashing."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bouncewire.schemas import addresses
from bouncewire.schemas.addresses import (
    address_hash,
    address_problem,
    is_valid_address,
    mask_address,
)


def _domain_of_length(octets: int) -> str:
    """A valid domain of exactly ``octets`` octets: labels of at most 63, ending in .com."""
    labels = []
    remaining = octets - len("com")
    while remaining > 0:
        size = min(63, remaining - 1)  # the label and the dot after it
        if remaining - (size + 1) == 1:
            size -= 1  # never leave room for an empty label only
        labels.append("d" * size)
        remaining -= size + 1
    return "".join(f"{label}." for label in labels) + "com"


def _address_of_length(total: int) -> str:
    """A valid-looking address of exactly ``total`` octets with a 64-octet local part."""
    return "l" * 64 + "@" + _domain_of_length(total - 65)


LOCAL_64 = "a" * 64
LABEL_63 = "b" * 63

VALID = [
    "john@example.com",
    "John.Doe+tag@Example.COM",
    "a@b.co",
    "x@sub.domain.example",
    "!#$%&'*+-/=?^_`{|}~@example.org",
    f"{LOCAL_64}@example.com",
    f"user@{LABEL_63}.com",
    "user@xn--bcher-kva.de",
    "user@a-b.example",
    '"john doe"@example.com',
    '"a@b"@example.com',
    '"quoted\\"inner"@example.com',
    '""@example.com',
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "user@[ipv6:::1]",
    "üser@bücher.de",
    "用户@例子.广告",
    "δοκιμή@παράδειγμα.δοκιμή",
    _address_of_length(254),
]

INVALID = [
    ("", "empty"),
    ("plainaddress", "missing_at"),
    ("@example.com", "empty_local_part"),
    ("user@", "empty_domain"),
    ("a@@example.com", "multiple_at"),
    ("a@b@example.com", "multiple_at"),
    (f"{LOCAL_64}a@example.com", "local_part_too_long"),
    (_address_of_length(255), "too_long"),
    (f"user@{LABEL_63}b.com", "label_too_long"),
    ("user@" + ".".join(["a" * 63] * 4), "too_long"),
    (".user@example.com", "local_part_dots"),
    ("user.@example.com", "local_part_dots"),
    ("us..er@example.com", "local_part_dots"),
    ("us er@example.com", "invalid_local_character"),
    ("us(er)@example.com", "invalid_local_character"),
    ('us"er@example.com', "invalid_local_character"),
    ('"unterminated\\"@example.com', "invalid_quoted_local_part"),
    ('"in"side"@example.com', "invalid_quoted_local_part"),
    ("user@localhost", "domain_without_dot"),
    ("user@example..com", "domain_dots"),
    ("user@.example.com", "domain_dots"),
    ("user@example.com.", "domain_dots"),
    ("user@-example.com", "label_hyphen"),
    ("user@example-.com", "label_hyphen"),
    ("user@exa_mple.com", "invalid_domain_character"),
    ("user@exa mple.com", "invalid_domain_character"),
    ("user@192.0.2.1", "numeric_top_level_domain"),
    ("user@[192.0.2.256]", "invalid_address_literal"),
    ("user@[2001:db8::1]", "invalid_address_literal"),
    ("user@[IPv6:2001:db8::g]", "invalid_address_literal"),
    ("user@[example.com]", "invalid_address_literal"),
    ("user\n@example.com", "invalid_character"),
    ("user@example.com\r\n", "invalid_character"),
    ("user\x00@example.com", "invalid_character"),
    ("user\u200b@example.com", "invalid_character"),
    ("us\ud800er@example.com", "invalid_character"),
    ("user@exam\u00a0ple.com", "invalid_character"),
]


def test_edge_builders_are_exact() -> None:
    for octets in range(5, 253):
        assert len(_domain_of_length(octets)) == octets
        assert address_problem("a@" + _domain_of_length(octets)) is None
    assert len(_address_of_length(254)) == 254
    assert len(_address_of_length(255)) == 255
    assert len(f"{LOCAL_64}a") == 65 and len(LABEL_63) == 63


@pytest.mark.parametrize("email", VALID)
def test_valid_addresses(email: str) -> None:
    assert address_problem(email) is None
    assert is_valid_address(email)


@pytest.mark.parametrize(("email", "problem"), INVALID)
def test_invalid_addresses(email: str, problem: str) -> None:
    assert address_problem(email) == problem
    assert not is_valid_address(email)


def test_lengths_count_utf8_octets() -> None:
    local_32_chars_64_octets = "é" * 32
    assert address_problem(f"{local_32_chars_64_octets}@example.com") is None
    assert address_problem(f"{local_32_chars_64_octets}é@example.com") == "local_part_too_long"

    # A label is limited by its DNS form, 'xn--' + punycode, not by its UTF-8 octets.
    def cjk_label(count: int) -> str:
        return "".join(chr(0x4E00 + index * 37) for index in range(count))

    assert len(cjk_label(25).encode()) == 75
    assert address_problem(f"user@{cjk_label(25)}.cn") is None  # xn--… is 57 octets
    assert address_problem(f"user@{cjk_label(30)}.cn") == "label_too_long"


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("john@example.com", "j***@example.com"),
        ("j@example.com", "***@example.com"),
        ("@example.com", "***@example.com"),
        ("not an address", "n***"),
        ("", "***"),
        ("a@b@example.com", "a***@example.com"),
        ("jo\nhn@exa\nmple.com", "j***@exa?mple.com"),
    ],
)
def test_mask_address(email: str, masked: str) -> None:
    assert mask_address(email) == masked


def test_address_hash_is_short_stable_and_case_blind() -> None:
    assert address_hash("John@Example.com") == address_hash("john@example.com")
    assert address_hash("john@example.com") != address_hash("jane@example.com")
    assert re.fullmatch(r"[0-9a-f]{16}", address_hash("john@example.com"))
    # sha256("john@example.com")[:16], computed independently
    assert address_hash("john@example.com") == "855f96e983f1f8e8"


SNAKE = re.compile(r"[a-z][a-z0-9_]*")


@given(st.text(alphabet=st.characters(), max_size=300))
def test_address_problem_never_raises_and_is_snake_case(email: str) -> None:
    problem = address_problem(email)
    assert problem is None or SNAKE.fullmatch(problem)
    assert is_valid_address(email) == (problem is None)
    address_hash(email)


@given(
    st.from_regex(r"[a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){1,3}", fullmatch=True)
)
def test_address_problem_agrees_with_a_simple_ascii_grammar(email: str) -> None:
    local, _, domain = email.rpartition("@")
    labels = domain.split(".")
    expected_valid = (
        len(email) <= 254
        and not local.startswith(".") and not local.endswith(".") and ".." not in local
        and all(not label.startswith("-") and not label.endswith("-") for label in labels)
        and not labels[-1].isdigit()
    )  # fmt: skip
    assert is_valid_address(email) == expected_valid


@given(st.text(max_size=80), st.text(max_size=80))
def test_mask_never_shows_the_whole_local_part(local: str, domain: str) -> None:
    assume("@" not in domain and "*" not in local and len(local) > 1)
    masked = mask_address(f"{local}@{domain}")
    masked_local, at, _ = masked.rpartition("@")
    assert at == "@"
    assert local not in masked_local
    assert masked_local == (local[0] if local[0].isprintable() else "?") + "***"


@given(st.text(max_size=300))
def test_mask_never_raises_and_is_printable(email: str) -> None:
    assert mask_address(email).isprintable()


@given(
    st.builds(
        "{}@{}".format,
        st.from_regex(addresses._PLAIN_LOCAL, fullmatch=True),
        st.from_regex(addresses._PLAIN_DOMAIN, fullmatch=True),
    )
)
def test_the_fast_path_accepts_only_what_the_full_rules_accept(email: str) -> None:
    fast = addresses.address_problem(email)
    assert fast == addresses.full_address_problem(email)
