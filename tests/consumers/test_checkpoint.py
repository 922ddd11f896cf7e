"""Replay checkpoints, time parsing, scan progress and pacing: pure code, no broker."""

from __future__ import annotations

import io
import os
import queue
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire._replay import format_duration, format_progress
from bouncewire.consumers.batching import Batch
from bouncewire.consumers.checkpoint import (
    Checkpoint,
    CheckpointError,
    PartitionProgress,
    RunParameters,
    TimeParseError,
    Window,
    destinations_fingerprint,
    format_instant,
    load_checkpoint,
    new_checkpoint,
    parse_instant,
    write_checkpoint,
)
from bouncewire.consumers.delivery import OutcomeKind
from bouncewire.consumers.payloads import CallbackEvent, EventRef, payload_size
from bouncewire.consumers.replay import (
    CompletionQueue,
    DryRunDeadLetters,
    DryRunSender,
    DryRunWriter,
    Pacer,
    ScanRange,
)
from bouncewire.kafka_client import KafkaSettings

SECRET_URL = "https://eu1.api.clevertap.com/smtp/callback?token=acct-secret-42"
PARAMS = RunParameters(Window(1_714_521_600_000, 1_714_525_200_000), ("sr", "un"),
                       destinations_fingerprint(SECRET_URL, SECRET_URL))


# --- time parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "epoch_ms"), [
    ("1714521600", 1_714_521_600_000),
    ("1714521600.25", 1_714_521_600_250),
    (" 1714521600 ", 1_714_521_600_000),
    ("2024-05-01T00:00:00Z", 1_714_521_600_000),
    ("2024-05-01T02:00:00+02:00", 1_714_521_600_000),
    ("2024-05-01T00:00:00.500Z", 1_714_521_600_500),
    ("2024-05-01", 1_714_521_600_000),  # no offset: UTC, not the machine's zone
    ("2024-05-01T00:00", 1_714_521_600_000),
    ("0", 0),
])
def test_parse_instant_reads_epoch_seconds_and_iso_8601(text: str, epoch_ms: int) -> None:
    assert parse_instant(text) == epoch_ms


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "-5", "1e9", "12:00",
                                  "2024-05-01T25:00Z"])
def test_parse_instant_refuses_anything_else(text: str) -> None:
    with pytest.raises(TimeParseError):
        parse_instant(text)


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_format_instant_round_trips(epoch_ms: int) -> None:
    assert parse_instant(format_instant(epoch_ms)) == epoch_ms


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_epoch_seconds_are_seconds(seconds: int) -> None:
    assert parse_instant(str(seconds)) == seconds * 1000


@pytest.mark.parametrize(("start", "end"), [("2024-05-01T01:00Z", "2024-05-01T00:00Z"),
                                            ("1714521600", "1714521600")])
def test_an_empty_window_is_refused(start: str, end: str) -> None:
    with pytest.raises(TimeParseError, match="--to must be later"):
        Window.parse(start, end)


# --- the checkpoint file ----------------------------------------------------------------------


def sample() -> Checkpoint:
    return new_checkpoint(PARAMS, [(("sr", 0), 10, 20), (("sr", 1), 0, 0), (("un", 0), 5, 9)])


def test_write_then_load_gives_the_same_checkpoint_and_no_url(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    checkpoint = sample()
    checkpoint.advance({("sr", 0): 15})
    write_checkpoint(path, checkpoint)
    loaded = load_checkpoint(path)
    assert loaded.params == PARAMS
    assert loaded.partitions == checkpoint.partitions
    assert (loaded.done, loaded.total) == (5, 14)
    text = path.read_text()
    assert "acct-secret-42" not in text and "clevertap" not in text
    assert os.listdir(tmp_path) == ["cp.json"]  # no temporary file left behind


def test_a_failed_replace_keeps_the_old_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cp.json"
    write_checkpoint(path, sample())
    before = path.read_bytes()
    moved = sample()
    moved.advance({("sr", 0): 20})

    def no_space(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(CheckpointError, match="No space left on device"):
        write_checkpoint(path, moved)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["cp.json"]


def test_an_unwritable_path_raises_a_clear_checkpoint_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*file/cp\.json"):
        write_checkpoint(a_file / "cp.json", sample())


@pytest.mark.parametrize("content", ["", "{", "[]", '{"version": 99}',
                                     '{"version": 1, "window": {}}'])
def test_a_damaged_checkpoint_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "nope.json")


@pytest.mark.parametrize(("changed", "named"), [
    (RunParameters(Window(0, 1), PARAMS.topics, PARAMS.destinations), "window"),
    (RunParameters(PARAMS.window, ("sr",), PARAMS.destinations), "topics"),
    (RunParameters(PARAMS.window, PARAMS.topics, destinations_fingerprint("a", "b")),
     "destinations"),
    (RunParameters(PARAMS.window, PARAMS.topics, PARAMS.destinations, mode="dry-run"), "mode"),
    (RunParameters(PARAMS.window, PARAMS.topics, PARAMS.destinations, payload_format="v2"),
     "payload_format"),
])
def test_resume_refuses_a_checkpoint_of_another_run(changed: RunParameters, named: str) -> None:
    with pytest.raises(CheckpointError, match=f"differs in {named}") as caught:
        sample().check_resumable(changed)
    assert "sha256" not in str(caught.value)


def test_resume_accepts_the_same_run() -> None:
    sample().check_resumable(RunParameters(PARAMS.window, PARAMS.topics, PARAMS.destinations))


def test_fingerprints_tell_destinations_apart_without_holding_them() -> None:
    a = destinations_fingerprint(SECRET_URL, SECRET_URL)
    assert a == destinations_fingerprint(SECRET_URL, SECRET_URL)
    assert a != destinations_fingerprint(SECRET_URL, SECRET_URL + "x")
    assert a != destinations_fingerprint(SECRET_URL + SECRET_URL, "")
    assert "secret" not in a


@given(st.lists(st.tuples(st.sampled_from([("t", 0), ("t", 1), ("u", 0)]),
                          st.integers(min_value=-5, max_value=40))))
def test_advance_only_moves_forward_and_never_past_the_end(
    moves: list[tuple[tuple[str, int], int]]
) -> None:
    checkpoint = new_checkpoint(PARAMS, [(("t", 0), 0, 10), (("t", 1), 5, 30)])
    for key, offset in moves:
        before = {k: p.next for k, p in checkpoint.partitions.items()}
        moved = checkpoint.advance({key: offset})
        after = {k: p.next for k, p in checkpoint.partitions.items()}
        assert all(after[k] >= before[k] for k in before)
        assert all(p.next <= p.end for p in checkpoint.partitions.values())
        assert moved == (after != before)
    assert checkpoint.complete == all(p.next == p.end for p in checkpoint.partitions.values())


def test_progress_counts_from_the_run_origin() -> None:
    progress = PartitionProgress(start=100, end=200, next=150)
    assert (progress.done, progress.total) == (50, 100)


# --- what a scan may call done ----------------------------------------------------------------


@given(st.data())
def test_done_upto_never_passes_an_unfinished_record(data: st.DataObject) -> None:
    """Offsets [0, n) are read; each was handed to the pipeline (done or not) or kept back
    (its side work pending or not). done_upto is the first unfinished offset."""
    n = data.draw(st.integers(min_value=0, max_value=30))
    states = data.draw(st.lists(st.sampled_from(["done", "open", "held", "skipped"]),
                                min_size=n, max_size=n))
    at_end = data.draw(st.booleans())
    end = n + (data.draw(st.integers(min_value=0, max_value=3)) if at_end else 5)
    handed = [o for o, s in enumerate(states) if s in ("done", "open")]
    open_handed = [o for o, s in enumerate(states) if s == "open"]
    # The pipeline's stored position: first unfinished handed offset, or past the last handed.
    stored = min(open_handed, default=(handed[-1] + 1) if handed else 0)
    r = ScanRange(0, 0, end, read=n, stored=stored, at_end=at_end, handed=deque(handed),
                  held={o for o, s in enumerate(states) if s == "held"})
    unfinished = [o for o, s in enumerate(states) if s in ("open", "held")]
    expected = min(unfinished, default=end if at_end else n)
    assert r.done_upto() == expected


# --- pacing and progress display --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_spaces_batches_by_their_events() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=10, clock=clock)
    assert pacer.reserve(5) == 0.0  # the first batch goes at once
    assert pacer.reserve(10) == pytest.approx(0.5)
    assert pacer.reserve(1) == pytest.approx(1.5)
    clock.now += 10
    assert pacer.reserve(3) == 0.0  # idle time is not saved up for a burst


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=1000),
                          st.floats(min_value=0, max_value=5)), min_size=1),
       st.floats(min_value=0.5, max_value=5000))
def test_pacer_never_exceeds_the_rate_on_average(
    batches: list[tuple[int, float]], rate: float
) -> None:
    clock = FakeClock()
    pacer = Pacer(rate, clock=clock)
    first_send = None
    sent = 0
    for events, idle in batches:
        clock.now += idle
        send_at = clock.now + pacer.reserve(events)
        first_send = send_at if first_send is None else first_send
        # Everything sent before this batch fits the rate from the first send on.
        assert sent <= rate * (send_at - first_send) + 1e-6 * max(sent, 1)
        sent += events


def test_pacer_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


@pytest.mark.parametrize(("done", "total", "elapsed", "expected"), [
    (0, 100, 0.0, "[..........] 0/100 records   0.0%  0/s  ETA -:--:--"),
    (50, 100, 10.0, "[#####.....] 50/100 records  50.0%  5/s  ETA 0:00:10"),
    (100, 100, 4.0, "[##########] 100/100 records 100.0%  25/s  ETA -:--:--"),
    (0, 0, 1.0, "[##########] 0/0 records 100.0%  0/s  ETA -:--:--"),
])
def test_format_progress(done: int, total: int, elapsed: float, expected: str) -> None:
    assert format_progress(done, total, elapsed, width=10) == expected


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00:00"), (59.9, "0:00:59"),
                                               (3661, "1:01:01"), (-3, "0:00:00")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- dry-run stand-ins ------------------------------------------------------------------------


def test_dry_run_sender_writes_the_exact_payload_and_reports_it_delivered() -> None:
    events = [CallbackEvent("e1", "hardbounce", "a@example.com", 1_714_521_600, None,
                            EventRef("sr", 0, 7), 1_714_521_600_123)]
    batch = Batch("bounce", events, [events[0].ref], payload_size(events, "legacy"), 0.0)
    out = io.BytesIO()
    completions: CompletionQueue = queue.SimpleQueue()
    sender = DryRunSender("bounce", DryRunWriter(out, "legacy"), completions)
    sender.submit(batch)
    assert out.getvalue() == (b'[{"event":"hardbounce","data":[{"e":"a@example.com",'
                              b'"ts":1714521600}]}]\n')
    done, outcome = completions.get_nowait()
    assert done is batch and outcome.kind is OutcomeKind.DELIVERED
    assert sender.backlog == 0 and sender.in_flight() == []


def test_dry_run_dead_letters_are_acknowledged_without_touching_kafka() -> None:
    producer = DryRunDeadLetters(KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    acks: list[tuple[object, object]] = []
    producer.produce("dlq", b"v", key=b"k", on_delivery=lambda err, msg: acks.append((err, msg)))
    assert acks == []  # acknowledged when polled, as a real producer does
    assert producer.poll(0) == 1 and acks == [(None, None)]
    assert producer.flush() == 0 and producer.would_write == 1
    assert producer._client is None  # never connected
