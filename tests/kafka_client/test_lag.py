"""The committed-lag arithmetic of one round of answers (no Kafka): log end minus the group's
committed offset, the log start when the group never committed, nothing for a partition the
coordinator did not answer for, and nothing at all when a question failed."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

from bouncewire.kafka_client import PartitionLag
from bouncewire.kafka_client._lag import _Asked

Offsets = dict[tuple[str, int], int]


class TopicPartition(NamedTuple):  # what list_offsets keys its futures by, in the fields read
    topic: str
    partition: int


def answered(offsets: Offsets) -> dict[Any, Future[Any]]:
    futures: dict[Any, Future[Any]] = {}
    for (topic, partition), offset in offsets.items():
        future: Future[Any] = Future()
        future.set_result(SimpleNamespace(offset=offset))
        futures[TopicPartition(topic, partition)] = future
    return futures


def round_of(ends: Offsets, starts: Offsets, commits: Offsets, positions: Offsets) -> _Asked:
    return _Asked(positions=positions, commits=commits, ends=answered(ends),
                  starts=answered(starts))


@pytest.mark.parametrize(
    ("end", "start", "commit", "position", "expected"),
    [
        (1500, 0, 100, 700, PartitionLag(1400, 600)),  # an outage: read ahead, paused
        (100, 0, 100, 100, PartitionLag(0, 0)),  # caught up
        (300, 0, -1001, 40, PartitionLag(300, 40)),  # never committed: from the log start
        (300, 120, -1001, -1001, PartitionLag(180, 0)),  # ... retention moved the start
        (50, 0, 80, 80, PartitionLag(0, 0)),  # a stale end never makes lag negative
    ],
)
def test_lag_of_one_partition(
    end: int, start: int, commit: int, position: int, expected: PartitionLag
) -> None:
    key = ("t", 0)
    asked = round_of({key: end}, {key: start}, {key: commit}, {key: position})
    assert asked.done()
    assert asked.answers() == {key: expected}


def test_a_partition_without_a_committed_answer_sits_the_round_out() -> None:
    ends = {("t", 0): 10, ("t", 1): 10}
    asked = round_of(ends, dict.fromkeys(ends, 0), {("t", 0): 4}, dict.fromkeys(ends, 8))
    assert asked.answers() == {("t", 0): PartitionLag(6, 4)}


def test_a_failed_question_gives_no_answers() -> None:
    asked = round_of({("t", 0): 10}, {("t", 0): 0}, {("t", 0): 4}, {("t", 0): 8})
    failed: Future[Any] = Future()
    failed.set_exception(RuntimeError("broker gone"))
    ends = {**asked.ends, TopicPartition("t", 1): failed}
    asked = _Asked(asked.positions, asked.commits, ends, asked.starts)
    assert asked.answers() == {}
