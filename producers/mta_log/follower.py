"""The decisions of following a log file, without touching one. Pure: no I/O.

A position in a log is the file's identity (device, inode), an offset that always ends a
complete line, and a hash of the file's first bytes (an inode number is reused once a file
is deleted; the first lines of a log, with their timestamps, are not). tail.py does the
reading and asks these functions what to do:

- `LineBuffer`: bytes in, complete lines out; a line still being written waits for its end.
- `resume_plan`: after a restart, which files to read from where, so that a rotation while
  the reader was down loses nothing (a renamed file is found by identity, a copytruncate
  copy by its head) and reads nothing twice.
- `poll_action`: while following, whether the file was truncated (copytruncate), rotated
  away (rename: drain the old file to its end, then switch) or is just quiet.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

HEAD_BYTES: Final = 1024
# A line longer than this is cut into pieces: a runaway writer must not exhaust memory.
MAX_LINE_BYTES: Final = 1 << 20


def head_digest(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading stopped: `offset` bytes of the file (dev, inode) are done."""

    dev: int
    inode: int
    offset: int
    head_len: int  # how many first bytes `head` hashes: min(HEAD_BYTES, offset)
    head: str
    # The file's last change as seen then: rotated files changed later hold newer lines.
    mtime: float = math.inf

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["mtime"] = None if math.isinf(self.mtime) else self.mtime  # JSON has no inf
        return fields

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Position:
        return cls(
            int(data["dev"]),
            int(data["inode"]),
            int(data["offset"]),
            int(data["head_len"]),
            str(data["head"]),
            math.inf if data.get("mtime") is None else float(data["mtime"]),
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that may hold the checkpoint's remainder: the path itself or a sibling
    (`maillog.1`, `maillog-20240605`). `head` hashes its first `Position.head_len` bytes."""

    path: str
    dev: int
    inode: int
    size: int
    head: str
    mtime: float = 0.0


@dataclass(frozen=True, slots=True)
class Step:
    path: str
    start: int


def resume_plan(
    saved: Position | None, current: Candidate, siblings: list[Candidate]
) -> list[Step]:
    """The files to read, in order, and the offset to start each at.

    When the saved file was rotated away, the files rotated after it (written later: a
    second rotation while the reader was down) are read whole before the current one."""
    if saved is None:
        return [Step(current.path, 0)]
    if _continues(saved, current):
        if saved.head_len == 0:
            # Nothing of the file was read, so nothing tells whether it was copied and
            # truncated meanwhile: a rotated file changed since holds lines to read first.
            return [*_later_than(saved.mtime, siblings), Step(current.path, saved.offset)]
        return [Step(current.path, saved.offset)]
    for rotated in _rotated(saved, siblings):
        later = _later_than(rotated.mtime, siblings)
        return [Step(rotated.path, saved.offset), *later, Step(current.path, 0)]
    return [Step(current.path, 0)]


def _later_than(mtime: float, siblings: list[Candidate]) -> list[Step]:
    """Rotated files changed after `mtime`, oldest first, read whole."""
    later = sorted((f for f in siblings if f.mtime > mtime), key=lambda f: f.mtime)
    return [Step(f.path, 0) for f in later]


def _continues(saved: Position, file: Candidate) -> bool:
    same_file = (file.dev, file.inode) == (saved.dev, saved.inode)
    return same_file and file.head == saved.head and file.size >= saved.offset


def _rotated(saved: Position, siblings: list[Candidate]) -> list[Candidate]:
    """The renamed file (same identity) first, else a copytruncate copy (same head)."""
    renamed = [f for f in siblings if _continues(saved, f)]
    if renamed or saved.head_len == 0:  # an empty head would match any file
        return renamed
    return [f for f in siblings if f.head == saved.head and f.size >= saved.offset][:1]


PollAction = Literal["wait", "truncated", "switch"]


def poll_action(
    opened: tuple[int, int],
    opened_size: int,
    offset: int,
    at_path: tuple[int, int] | None,
    head_changed: bool = False,
) -> PollAction:
    """What to do when a read found nothing new. `at_path`: the identity now at the path
    (None: no file there yet); `head_changed`: the first bytes read are not there any more
    (truncated and written past our offset between two polls)."""
    if opened_size < offset or head_changed:
        return "truncated"
    if at_path is not None and at_path != opened:
        return "switch"  # only ever asked at the old file's end: nothing of it is left behind
    return "wait"


class LineBuffer:
    """Complete lines (without their newline) of a byte stream; `offset` is where the last
    complete line ended."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        data = self._pending + data if self._pending else data
        end = data.rfind(b"\n") + 1
        if end == 0:
            self._pending = data
            return self._overlong()
        lines = data[: end - 1].split(b"\n")  # not splitlines: a lone \r ends no log line
        self._pending = data[end:]
        self.offset += end
        return lines + self._overlong()

    def _overlong(self) -> list[bytes]:
        if len(self._pending) <= MAX_LINE_BYTES:
            return []
        piece, self._pending = self._pending[:MAX_LINE_BYTES], self._pending[MAX_LINE_BYTES:]
        self.offset += len(piece)
        return [piece]

    @property
    def pending(self) -> bytes:
        """The bytes of a line not ended yet."""
        return self._pending

    def restart(self, offset: int = 0) -> None:
        self.offset, self._pending = offset, b""
