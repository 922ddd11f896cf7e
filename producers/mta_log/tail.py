"""Reading a log file (or a stream) in complete lines, following it across rotations, and the
checkpoint file. The I/O edge of follower.py, which makes every decision."""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from bouncewire.producers.mta_log.follower import (
    HEAD_BYTES,
    Candidate,
    LineBuffer,
    Position,
    head_digest,
    poll_action,
    resume_plan,
)

READ_BYTES: Final = 1 << 20
_COMPRESSED: Final = (".gz", ".bz2", ".xz", ".zst", ".lz4")
CHECKPOINT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete lines, and the position just after them (None when reading a stream).

    `idle`: the end of what there is for now (a good moment to flush and checkpoint).
    `partial`: a line that will never end was dropped (a rotated-away or truncated file).
    """

    lines: list[bytes]
    position: Position | None
    idle: bool = False
    partial: int = 0


class LogFile:
    """Reads `path` from `saved` on (the start when None), and with `follow` keeps reading
    what is appended, across rename rotation and copytruncate, until `stop` is set."""

    def __init__(
        self,
        path: str | Path,
        saved: Position | None = None,
        *,
        follow: bool = False,
        poll_s: float = 0.25,
        stop: threading.Event | None = None,
        not_logs: tuple[Path, ...] = (),
    ) -> None:
        """`not_logs`: files next to the log that are no rotated logs (the checkpoint)."""
        self.path = str(path)
        self._not_logs = {os.path.abspath(p) for p in not_logs}
        self._saved = saved
        self._follow = follow
        self._poll_s = poll_s
        self._stop = stop or threading.Event()

    def chunks(self) -> Iterator[Chunk]:
        if self._follow and not self._wait_for_file():
            return
        head_len = self._saved.head_len if self._saved else 0
        siblings = self._siblings(head_len) if self._saved else []
        plan = resume_plan(self._saved, self._candidate(self.path, head_len), siblings)
        for number, step in enumerate(plan, start=1):
            last = number == len(plan)
            yield from self._read(step.path, step.start, follow=self._follow and last, last=last)

    # ------------------------------------------------------------------ one file

    def _read(self, path: str, start: int, *, follow: bool, last: bool) -> Iterator[Chunk]:
        while True:
            opened = _Opened(path, start)
            try:
                yield from opened.read_to_end()
                if not follow:
                    if not last and opened.buffer.pending:
                        yield Chunk([], opened.position(), idle=True, partial=1)
                    yield Chunk([], opened.position(), idle=True)
                    return
                switched = yield from self._follow_file(opened)
            finally:
                opened.close()
            if not switched:
                return
            path, start = self.path, 0

    def _follow_file(self, opened: _Opened) -> Generator[Chunk, None, bool]:
        """Yields until the file at the path is another one (True) or `stop` is set (False).

        Each poll looks before it reads: bytes past our offset in a file truncated and
        rewritten since the last poll would start mid-line."""
        while True:
            yield Chunk([], opened.position(), idle=True)
            if self._stop.wait(self._poll_s):
                return False
            action = poll_action(
                opened.identity,
                opened.size(),
                opened.read_so_far,
                _identity(self.path),
                opened.head_changed(),
            )
            if action == "truncated":
                before = opened.position()  # the head as read, not the new content's
                dropped = opened.restart()
                copied = yield from self._copy_of(before)
                yield Chunk([], opened.position(), idle=True, partial=0 if copied else dropped)
            elif action == "switch":
                yield from opened.read_to_end()  # what was written before the writer reopened
                if opened.buffer.pending:
                    yield Chunk([], opened.position(), idle=True, partial=1)
                return True
            yield from opened.read_to_end()

    def _copy_of(self, before: Position) -> Generator[Chunk, None, bool]:
        """After a copytruncate, the copy's lines written after `before` (those the writer
        added between our last read and the truncation); False when no copy is found."""
        if before.head_len == 0:
            return False  # no line read: an empty head would match any rotated file
        copies = [
            found
            for found in self._siblings(before.head_len)
            if found.head == before.head and found.size >= before.offset
        ]
        if not copies:
            return False
        newest = max(copies, key=lambda found: found.mtime)
        yield from self._read(newest.path, before.offset, follow=False, last=True)
        return True

    def _wait_for_file(self) -> bool:
        while not os.path.exists(self.path):
            if self._stop.wait(self._poll_s):
                return False
        return True

    # ------------------------------------------------------------------ resuming

    def _candidate(self, path: str, head_len: int) -> Candidate:
        stat = os.stat(path)
        head = _head(path, head_len)
        return Candidate(path, stat.st_dev, stat.st_ino, stat.st_size, head, stat.st_mtime)

    def _siblings(self, head_len: int) -> list[Candidate]:
        """Files next to the log whose name starts with its name (maillog.1, maillog-2024...),
        looked at only when the file we read is not at the path any more."""
        folder, name = os.path.split(os.path.abspath(self.path))
        found = []
        for entry in os.scandir(folder):
            if entry.name.startswith(name) and entry.name != name and entry.is_file():
                if not entry.name.endswith(_COMPRESSED) and not self._is_not_log(entry.path):
                    found.append(self._candidate(entry.path, head_len))
        return found

    def _is_not_log(self, path: str) -> bool:
        plain = os.path.abspath(path)
        return plain in self._not_logs or plain.removesuffix(".tmp") in self._not_logs


class _Opened:
    """One open log file: its identity, the line buffer, the head hash of what was read."""

    def __init__(self, path: str, start: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 -- closed by close(), spans many reads
        stat = os.fstat(self._file.fileno())
        self.identity = (stat.st_dev, stat.st_ino)
        self.buffer = LineBuffer(start)
        self._file.seek(start)
        self._head = (0, head_digest(b""))

    @property
    def read_so_far(self) -> int:
        return self.buffer.offset + len(self.buffer.pending)

    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def read_to_end(self) -> Iterator[Chunk]:
        while data := self._file.read(READ_BYTES):
            lines = self.buffer.feed(data)
            if lines:
                yield Chunk(lines, self.position())

    def restart(self) -> int:
        """Truncated under us: read again from the start; returns 1 if a partial line went."""
        dropped = 1 if self.buffer.pending else 0
        self.buffer.restart(0)
        self._file.seek(0)
        self._head = (0, head_digest(b""))
        return dropped

    def head_changed(self) -> bool:
        length, digest = self._head
        return length > 0 and head_digest(os.pread(self._file.fileno(), length, 0)) != digest

    def position(self) -> Position:
        offset = self.buffer.offset
        wanted = min(offset, HEAD_BYTES)
        if self._head[0] != wanted:
            self._head = (wanted, head_digest(os.pread(self._file.fileno(), wanted, 0)))
        return Position(*self.identity, offset, *self._head, self.mtime())

    def mtime(self) -> float:
        return os.fstat(self._file.fileno()).st_mtime

    def close(self) -> None:
        self._file.close()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _head(path: str, length: int) -> str:
    with open(path, "rb") as handle:
        data = handle.read(length)
    return head_digest(data) if len(data) == length else ""


def stream_chunks(stream: IO[bytes], read_bytes: int = 1 << 16) -> Iterator[Chunk]:
    """Complete lines of a pipe (`journalctl -f -o cat | ...`) as they arrive; no positions."""
    buffer = LineBuffer()
    read = getattr(stream, "read1", stream.read)
    while data := read(read_bytes):
        yield Chunk(buffer.feed(data), None, idle=len(data) < read_bytes)
    yield Chunk([], None, idle=True, partial=1 if buffer.pending else 0)


# ------------------------------------------------------------------ checkpoint file


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a restart needs: where reading stopped, and the joiner's table at that point."""

    position: Position
    joiner: list[dict[str, Any]]


def load_checkpoint(path: Path) -> Checkpoint | None:
    """The saved checkpoint; None when there is none yet. A damaged one raises ValueError."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"checkpoint {path} is not valid JSON ({exc.msg})") from None
    try:
        if data["version"] != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint {path} has unknown version {data['version']!r}")
        return Checkpoint(Position.from_json(data["position"]), list(data.get("joiner", [])))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint {path} lacks or mistypes {exc}") from None


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Written to a temporary file and renamed over: a crash leaves the old or the new one."""
    data = {
        "version": CHECKPOINT_VERSION,
        "position": checkpoint.position.to_json(),
        "joiner": checkpoint.joiner,
    }
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(orjson.dumps(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
