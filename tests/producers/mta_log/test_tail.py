"""Reading real files: complete lines only, rotation by rename and by copytruncate while
following and while stopped, and restarts from a checkpoint — nothing lost, nothing twice."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bouncewire.producers.mta_log import (
    Checkpoint,
    LogFile,
    Position,
    load_checkpoint,
    save_checkpoint,
    stream_chunks,
)

WAIT_S = 10.0


def numbered(start: int, stop: int) -> bytes:
    return b"".join(b"Jun  5 15:09:21 mx postfix/qmgr[1]: Q%d: removed\n" % n
                    for n in range(start, stop))


def names(lines: list[bytes]) -> list[int]:
    return [int(line.split(b": Q")[1].split(b":")[0]) for line in lines]


def read_once(path: Path, saved: Position | None = None) -> tuple[list[bytes], Position | None]:
    lines: list[bytes] = []
    position = saved
    for chunk in LogFile(path, saved).chunks():
        lines.extend(chunk.lines)
        position = chunk.position or position
    return lines, position


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def test_reads_complete_lines_and_resumes_after_them(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 5) + b"Jun  5 15:09:21 mx postfix/qmgr[1]: Q5: rem")
    lines, position = read_once(log)
    assert names(lines) == [0, 1, 2, 3, 4]
    assert position is not None and position.offset == len(numbered(0, 5))
    append(log, b"oved\n" + numbered(6, 8))
    lines, position = read_once(log, position)
    assert names(lines) == [5, 6, 7]


def test_restart_after_rename_rotation_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 5))
    first, position = read_once(log)
    append(log, numbered(5, 8))  # written before the rotation, not read yet
    log.rename(tmp_path / "maillog.1")
    log.write_bytes(numbered(8, 10))
    (tmp_path / "maillog.2.gz").write_bytes(b"\x1f\x8b compressed, never read")
    rest, _ = read_once(log, position)
    assert names(first + rest) == list(range(10))


def test_restart_after_two_rotations_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 3))
    first, position = read_once(log)
    append(log, numbered(3, 5))
    for start, stop in [(5, 7), (7, 9)]:
        time.sleep(0.02)  # rotated files are ordered by their last write
        for older in sorted(tmp_path.glob("maillog.*"), reverse=True):
            older.rename(tmp_path / f"maillog.{int(older.suffix[1:]) + 1}")
        log.rename(tmp_path / "maillog.1")
        log.write_bytes(numbered(start, stop))
    checkpoint = tmp_path / "maillog.checkpoint"  # next to the log, but no log
    checkpoint.write_text('{"not": "a log"}\n')
    rest = [line for chunk in LogFile(log, position, not_logs=(checkpoint,)).chunks()
            for line in chunk.lines]
    assert names(first + rest) == list(range(9))


def test_restart_after_copytruncate_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 5))
    first, position = read_once(log)
    append(log, numbered(5, 8))
    shutil.copyfile(log, tmp_path / "maillog.1")
    os.truncate(log, 0)
    append(log, numbered(8, 10))
    rest, _ = read_once(log, position)
    assert names(first + rest) == list(range(10))


def test_checkpoint_file_round_trip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    assert load_checkpoint(path) is None
    checkpoint = Checkpoint(Position(1, 2, 3, 3, "abc"), [{"queue_id": "Q1", "deferred": []}])
    save_checkpoint(path, checkpoint)
    assert load_checkpoint(path) == checkpoint
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_checkpoint(path)
    path.write_text('{"version": 1}')
    with pytest.raises(ValueError, match="position"):
        load_checkpoint(path)


def test_stream_chunks_hold_back_a_line_without_its_end() -> None:
    chunks = list(stream_chunks(io.BytesIO(numbered(0, 3) + b"half"), read_bytes=7))
    assert names([line for chunk in chunks for line in chunk.lines]) == [0, 1, 2]
    assert chunks[-1].partial == 1


class Follower:
    """A LogFile followed on a thread; `lines` grows as it reads."""

    def __init__(self, path: Path, saved: Position | None = None) -> None:
        self.stop = threading.Event()
        self.lines: list[bytes] = []
        self.position: Position | None = saved
        self.partial = 0
        self._file = LogFile(path, saved, follow=True, poll_s=0.02, stop=self.stop)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for chunk in self._file.chunks():
            self.lines.extend(chunk.lines)
            self.position = chunk.position or self.position
            self.partial += chunk.partial

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.lines) >= count, f"read {len(self.lines)} of {count} lines"

    @contextmanager
    def running(self) -> Iterator[Follower]:
        self._thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self._thread.join(WAIT_S)
            assert not self._thread.is_alive()


def test_follow_across_rename_rotation(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 3))
    with Follower(log).running() as follower:
        follower.wait_for(3)
        with open(log, "ab") as old:
            log.rename(tmp_path / "maillog.1")
            old.write(numbered(3, 5))  # the writer has not reopened yet
            old.flush()
            time.sleep(0.1)
            log.write_bytes(numbered(5, 7))
        follower.wait_for(7)
        append(log, numbered(7, 9))
        follower.wait_for(9)
    assert names(follower.lines) == list(range(9))


def test_follow_across_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 4))
    with Follower(log).running() as follower:
        follower.wait_for(4)
        shutil.copyfile(log, tmp_path / "maillog.1")
        os.truncate(log, 0)
        time.sleep(0.1)
        append(log, numbered(4, 6))
        follower.wait_for(6)
    assert names(follower.lines) == list(range(6))


def test_follow_reads_what_was_written_just_before_a_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 4))
    follower = Follower(log)
    with follower.running():
        follower.wait_for(4)
        append(log, numbered(4, 6))  # logrotate copies and truncates before the next poll
        shutil.copyfile(log, tmp_path / "maillog.1")
        os.truncate(log, 0)
        append(log, numbered(6, 8))
        follower.wait_for(8)
        time.sleep(0.1)
    assert names(follower.lines) == list(range(8))


def test_follow_notices_a_truncation_the_file_outgrew_between_polls(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 2))
    follower = Follower(log)
    with follower.running():
        follower.wait_for(2)
        with open(log, "r+b") as handle:  # truncate and write more than before, at once
            handle.truncate(0)
            handle.write(numbered(2, 6))
        follower.wait_for(6)
    assert names(follower.lines) == list(range(6))


def test_follow_waits_for_the_end_of_a_line(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 1) + b"Jun  5 15:09:21 mx postfix/qmgr[1]: Q1: re")
    with Follower(log).running() as follower:
        follower.wait_for(1)
        time.sleep(0.1)
        assert len(follower.lines) == 1
        append(log, b"moved\n")
        follower.wait_for(2)
    assert names(follower.lines) == [0, 1] and follower.partial == 0


def test_stop_and_restart_while_following_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_bytes(numbered(0, 5))
    with Follower(log).running() as first:
        first.wait_for(5)
    append(log, numbered(5, 7))
    log.rename(tmp_path / "maillog.1")
    log.write_bytes(numbered(7, 9))
    with Follower(log, first.position).running() as second:
        second.wait_for(4)
        append(log, numbered(9, 10))
        second.wait_for(5)
    assert names(first.lines + second.lines) == list(range(10))


class Writer:
    """A log writer rotating the way logrotate does, and a reader that runs from its saved
    position now and then (several rotations may pass between two of its runs). Rotated
    files get increasing mtimes (the order logrotate's numbering gives them; the
    filesystem's clock may be too coarse to tell)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.log = folder, folder / "maillog"
        self.log.write_bytes(b"")
        self.written = 0
        self.half: bytes = b""
        self.clock = 1_000_000.0
        self.read: list[bytes] = []
        self.position: Position | None = None
        # The first run starts at the file then at the path, once it has read something: a
        # file copied and truncated before a single line of it was read is indistinguishable
        # from one that was not (docs/mta-log.md).
        self.step("line")
        self.restart_reader()

    def touch(self, path: Path) -> None:
        self.clock += 1
        os.utime(path, (self.clock, self.clock))

    def step(self, action: str) -> None:
        line = b"Jun  5 15:09:21 mx postfix/qmgr[1]: Q%d: removed\n" % self.written
        if action == "half" and not self.half:
            self.half = line[len(line) // 2:]
            append(self.log, line[: len(line) // 2])
        elif action == "line" or self.half:
            append(self.log, self.half or line)
            self.written += 1
            self.half = b""
        elif action in ("rename", "copytruncate"):
            self.rotate(action)
        elif action == "read":
            self.restart_reader()
        self.touch(self.log)

    def rotate(self, how: str) -> None:
        for older in sorted(self.folder.glob("maillog.*"),
                            key=lambda p: int(p.suffix[1:]), reverse=True):
            older.rename(self.folder / f"maillog.{int(older.suffix[1:]) + 1}")
        if how == "rename":
            self.log.rename(self.folder / "maillog.1")
            self.log.write_bytes(b"")
        else:
            shutil.copy2(self.log, self.folder / "maillog.1")
            os.truncate(self.log, 0)
        self.touch(self.folder / "maillog.1")

    def restart_reader(self) -> None:
        for chunk in LogFile(self.log, self.position).chunks():
            self.read.extend(chunk.lines)
            self.position = chunk.position or self.position


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["rename", "copytruncate"]),
       st.lists(st.sampled_from(["line", "line", "half", "rotate", "read"]), max_size=30))
def test_any_rotations_between_restarts_lose_and_repeat_nothing(
    how: str, actions: list[str]
) -> None:
    """One logrotate method per log, as configured; the reader runs now and then."""
    with tempfile.TemporaryDirectory() as folder:
        writer = Writer(Path(folder))
        for action in actions:
            action = how if action == "rotate" else action
            writer.step(action)
        writer.step("line")
        writer.restart_reader()
        assert names(writer.read) == list(range(writer.written))
