"""`bouncewire replay` end to end: real broker, real HTTP receiver on loopback."""

from __future__ import annotations

import collections
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bouncewire.consumers.checkpoint import load_checkpoint
from bouncewire.kafka_client import TopicNames
from bouncewire.receiver import CallbackReceiver, FaultPlan
from tests.consumers.pipeline_harness import (
    NOW_S,
    bounce,
    delivered,
    publish,
    read_all,
    soft,
    topics_for,
    unsubscribe,
    wait_until,
)
from tests.consumers.replay_harness import cli_process, replay_argv, run_cli, urls

pytestmark = pytest.mark.integration

# A window a day back, on an hour boundary: event times are in the past as in a real backfill.
START = (NOW_S - 86_400) // 3600 * 3600
END = START + 3600
Pair = tuple[str, int]


def posted_pairs(receiver: CallbackReceiver) -> collections.Counter[Pair]:
    return collections.Counter((e.email, e.ts or 0) for post in receiver.received
                               for e in post.processed_events)


def pairs(records: list[dict[str, Any]]) -> set[Pair]:
    return {(r["email"], r["event_time"] // 1000) for r in records}


def publish_window_traffic(bootstrap: str, topics: TopicNames) -> set[Pair]:
    """Events before, inside and after [START, END); returns the (email, ts) of those inside.
    Two records land out of order: after later ones on the same partition (same key)."""
    inside = ([bounce(f"in{i}@example.com", ts=START + 1 + i * 30) for i in range(60)]
              + [soft("edge-start@example.com", ts=START),
                 bounce("edge-end@example.com", ts=END - 1)])
    outside = [bounce("early@example.com", ts=START - 1800),
               bounce("slack@example.com", ts=START - 300),
               soft("edge-before@example.com", ts=START - 1),
               bounce("edge-after@example.com", ts=END),
               bounce("late@example.com", ts=END + 100)]
    after = [bounce(f"after{i}@example.com", ts=END + 60 + i) for i in range(30)]
    # Published after the records above: an in-window event and an earlier out-of-window one.
    straggler_in = bounce("late@example.com", ts=END - 20)
    straggler_out = bounce("after0@example.com", ts=START - 10)
    fine = [delivered(f"ok{i}@example.com", ts=START + 50) for i in range(5)]
    publish(bootstrap, topics, "send_result",
            outside + inside + fine + after + [straggler_in, straggler_out]
            + [bounce("far@example.com", ts=END + 7200)])
    unsubs_in = [unsubscribe(f"u{i}@example.com", ts=START + 600 + i) for i in range(10)]
    publish(bootstrap, topics, "unsubscribe",
            [unsubscribe("u-out@example.com", ts=START - 5), *unsubs_in,
             unsubscribe("u-late@example.com", ts=END + 5)])
    return pairs(inside + [straggler_in] + unsubs_in)


def test_window_replay_delivers_exactly_the_window_with_original_ts(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver, tmp_path: Path
) -> None:
    expected = publish_window_traffic(kafka_bootstrap, topics)
    checkpoint = tmp_path / "cp.json"
    code = run_cli(replay_argv(kafka_bootstrap, topics, START, END, checkpoint,
                               *urls(receiver.url), "--rate-limit", "5000"))
    assert code == 0
    posted = posted_pairs(receiver)
    assert set(posted) == expected  # original ts kept, nothing outside the window
    assert max(posted.values()) == 1
    assert all(p.valid for p in receiver.received)
    assert load_checkpoint(checkpoint).complete
    assert read_all(kafka_bootstrap, topics.dlq, 0, timeout=1) == []


def test_dry_run_file_equals_what_a_live_run_posts(
    kafka_bootstrap: str, unique_name: Callable[[str], str], receiver: CallbackReceiver,
    tmp_path: Path
) -> None:
    topics = topics_for(kafka_bootstrap, unique_name, partitions=1)
    records = [(bounce if i % 3 else soft)(f"d{i}@example.com", ts=START + i) for i in range(24)]
    publish(kafka_bootstrap, topics, "send_result",
            [bounce("before@example.com", ts=START - 60), *records,
             bounce("after@example.com", ts=END + 60)])
    publish(kafka_bootstrap, topics, "unsubscribe",
            [unsubscribe(f"du{i}@example.com", ts=START + 100 + i) for i in range(8)])
    batching = ("--max-batch-events", "4", "--linger-ms", "3000")
    dry_file = tmp_path / "posts.jsonl"
    assert run_cli(replay_argv(kafka_bootstrap, topics, START, END, tmp_path / "dry.json",
                               "--dry-run", str(dry_file), *batching)) == 0
    assert run_cli(replay_argv(kafka_bootstrap, topics, START, END, tmp_path / "live.json",
                               *urls(receiver.url), *batching)) == 0
    lines = dry_file.read_bytes().splitlines()
    assert len(lines) == 8
    assert sorted(lines) == sorted(p.body for p in receiver.received)


def test_interrupted_replay_resumed_sends_every_event_once(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver, tmp_path: Path
) -> None:
    records = [bounce(f"r{i}@example.com", ts=START + i) for i in range(150)]
    publish(kafka_bootstrap, topics, "send_result", records)
    receiver.set_faults(FaultPlan(delay_s=0.1, count=-1))
    checkpoint = tmp_path / "cp.json"
    argv = replay_argv(kafka_bootstrap, topics, START, END, checkpoint, *urls(receiver.url),
                       "--max-batch-events", "5", "--max-in-flight", "1")
    # A short drain: the interrupted run stops after its in-flight POST, leaving work over
    # (one POST at a time, so that it is still running when the signal lands).
    proc = cli_process([*argv, "--drain-timeout", "0.3"])
    try:
        assert wait_until(lambda: len(receiver.received) >= 4, 30)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
    first_run = len(receiver.received)
    assert first_run < 30, "the run was not interrupted"
    assert not load_checkpoint(checkpoint).complete
    receiver.set_faults(FaultPlan())
    assert run_cli([*argv, "--resume"]) == 0
    posted = posted_pairs(receiver)
    assert set(posted) == pairs(records)
    assert max(posted.values()) == 1  # no batch sent twice across the two runs
    assert load_checkpoint(checkpoint).complete


def test_unwritable_checkpoint_fails_before_any_post(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    publish(kafka_bootstrap, topics, "send_result", [bounce("x@example.com", ts=START + 1)])
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    code = run_cli(replay_argv(kafka_bootstrap, topics, START, END,
                               not_a_directory / "cp.json", *urls(receiver.url)))
    assert code == 2
    assert receiver.received == []
    assert "cannot write checkpoint" in capsys.readouterr().err


def test_checkpoint_that_stops_being_writable_stops_the_run(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver, tmp_path: Path
) -> None:
    records = [bounce(f"w{i}@example.com", ts=START + i) for i in range(100)]
    publish(kafka_bootstrap, topics, "send_result", records)
    receiver.set_faults(FaultPlan(delay_s=0.05, count=-1))
    directory = tmp_path / "cp"
    directory.mkdir()
    checkpoint = directory / "cp.json"
    # One POST at a time: the run must still be going when the checkpoint breaks.
    argv = replay_argv(kafka_bootstrap, topics, START, END, checkpoint, *urls(receiver.url),
                       "--max-batch-events", "5", "--max-in-flight", "1")
    proc = cli_process(argv)
    try:
        assert wait_until(lambda: len(receiver.received) >= 2, 30)
        checkpoint.unlink()
        directory.rmdir()
        directory.write_text("a file where the directory was")
        assert proc.wait(30) == 2
        assert proc.stderr is not None
        assert b"cannot write checkpoint" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
    assert len(receiver.received) < 20  # stopped early, not after sending everything


def test_resume_refuses_another_window_and_a_fresh_run_refuses_an_old_checkpoint(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    publish(kafka_bootstrap, topics, "unsubscribe", [unsubscribe("a@example.com", ts=START)])
    checkpoint = tmp_path / "cp.json"
    assert run_cli(replay_argv(kafka_bootstrap, topics, START, END, checkpoint,
                               *urls(receiver.url))) == 0
    assert len(receiver.received) == 1
    assert run_cli(replay_argv(kafka_bootstrap, topics, START, END + 60, checkpoint,
                               *urls(receiver.url), "--resume")) == 2
    assert "differs in window" in capsys.readouterr().err
    assert run_cli(replay_argv(kafka_bootstrap, topics, START, END, checkpoint,
                               *urls(receiver.url))) == 2
    assert "--resume" in capsys.readouterr().err
    # Resuming a finished run sends nothing more.
    assert run_cli(replay_argv(kafka_bootstrap, topics, START, END, checkpoint,
                               *urls(receiver.url), "--resume")) == 0
    assert len(receiver.received) == 1
