"""The follower's pure decisions: complete lines only, where to resume, what a poll means."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.producers.mta_log.follower import (
    MAX_LINE_BYTES,
    Candidate,
    LineBuffer,
    Position,
    Step,
    head_digest,
    poll_action,
    resume_plan,
)

line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@given(st.lists(line_bytes, max_size=20), line_bytes,
       st.lists(st.integers(min_value=1, max_value=50), max_size=40))
def test_never_half_a_line(lines: list[bytes], tail: bytes, cuts: list[int]) -> None:
    """However the bytes arrive, exactly the complete lines come out, and the offset is
    where the last of them ended."""
    stream = b"".join(line + b"\n" for line in lines) + tail
    buffer, seen, at = LineBuffer(), [], 0
    for size in [*cuts, len(stream)]:
        seen.extend(buffer.feed(stream[at : at + size]))
        at += size
        assert stream[: buffer.offset].count(b"\n") == len(seen)
        assert buffer.offset == 0 or stream[buffer.offset - 1 : buffer.offset] == b"\n"
    assert seen == lines
    assert buffer.pending == tail
    assert buffer.offset == len(stream) - len(tail)


def test_a_lone_carriage_return_ends_no_line() -> None:
    assert LineBuffer().feed(b"a\rb\nc") == [b"a\rb"]


def test_an_endless_line_is_cut_not_hoarded() -> None:
    buffer = LineBuffer()
    pieces = buffer.feed(b"x" * (MAX_LINE_BYTES + 10))
    assert [len(p) for p in pieces] == [MAX_LINE_BYTES]
    assert buffer.offset == MAX_LINE_BYTES and len(buffer.pending) == 10


HEAD = head_digest(b"Jun  5 first line\n")
SAVED = Position(dev=1, inode=100, offset=500, head_len=18, head=HEAD)


def candidate(path: str, inode: int, size: int, head: str = HEAD) -> Candidate:
    return Candidate(path, 1, inode, size, head)


@pytest.mark.parametrize(("saved", "current", "siblings", "plan"), [
    (None, candidate("maillog", 100, 900), [], [Step("maillog", 0)]),
    # The same file, grown: go on where we stopped.
    (SAVED, candidate("maillog", 100, 900), [], [Step("maillog", 500)]),
    # Renamed away while we were down: finish it, then the new file from the start.
    (SAVED, candidate("maillog", 200, 50, head="new"),
     [candidate("maillog.1", 100, 700), candidate("maillog.2", 50, 9000, head="old")],
     [Step("maillog.1", 500), Step("maillog", 0)]),
    # Copied and truncated while we were down: the copy holds our remainder.
    (SAVED, candidate("maillog", 100, 40, head="new"), [candidate("maillog.1", 300, 800)],
     [Step("maillog.1", 500), Step("maillog", 0)]),
    # Truncated, no copy to be found: start over (what was lost is lost).
    (SAVED, candidate("maillog", 100, 40, head="new"), [], [Step("maillog", 0)]),
    # Same inode number, other content (deleted and recreated): start over.
    (SAVED, candidate("maillog", 100, 9000, head="other"), [], [Step("maillog", 0)]),
    # Rotated twice: the saved file, then what was rotated after it, then the current one.
    (SAVED, candidate("maillog", 300, 50, head="new"),
     [Candidate("maillog.1", 1, 200, 900, "b", 20.0),
      Candidate("maillog.2", 1, 100, 700, HEAD, 10.0),
      Candidate("maillog.3", 1, 50, 700, "c", 5.0)],
     [Step("maillog.2", 500), Step("maillog.1", 0), Step("maillog", 0)]),
    # A shorter sibling with our head cannot hold our remainder.
    (SAVED, candidate("maillog", 200, 10, head="new"), [candidate("maillog.1", 300, 400)],
     [Step("maillog", 0)]),
])
def test_resume_plan(saved: Position | None, current: Candidate, siblings: list[Candidate],
                     plan: list[Step]) -> None:
    assert resume_plan(saved, current, siblings) == plan


@pytest.mark.parametrize(("opened", "size", "offset", "at_path", "action"), [
    ((1, 100), 500, 500, (1, 100), "wait"),
    ((1, 100), 10, 500, (1, 100), "truncated"),  # copytruncate
    ((1, 100), 500, 500, (1, 200), "switch"),  # renamed, a new file at the path
    ((1, 100), 500, 500, None, "wait"),  # renamed, the new file not there yet
])
def test_poll_action(opened: tuple[int, int], size: int, offset: int,
                     at_path: tuple[int, int] | None, action: str) -> None:
    assert poll_action(opened, size, offset, at_path) == action


def test_a_changed_head_is_a_truncation_even_when_the_file_regrew() -> None:
    assert poll_action((1, 100), 900, 500, (1, 100), head_changed=True) == "truncated"


def test_position_round_trips_through_json() -> None:
    assert Position.from_json(SAVED.to_json()) == SAVED
