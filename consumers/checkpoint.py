"""Replay checkpoints: what a replay run is (its parameters) and how far it got (offsets).

A checkpoint is one small JSON file, replaced atomically (temporary file in the same
directory, fsync, rename, fsync of the directory): a crash leaves either the old or the new
version, never a torn one. It holds the run's parameters — event-time window, topics, mode
(live or dry run) and a SHA-256 fingerprint of the callback URLs (never the URLs: they carry
CleverTap's account token) — and, per partition, the scan range captured at the first start
and the next offset whose record is not yet done.

`--resume` continues only a run with the same parameters: a different window, topic set or
destination would leave part of the new window unsent. A checkpoint that cannot be written
raises CheckpointError, which stops the run before it sends anything it could not remember.

Pure module: stdlib only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
Partition = tuple[str, int]
_EPOCH_SECONDS = re.compile(r"^\d+(\.\d+)?$")


class CheckpointError(Exception):
    """The checkpoint cannot be read, written or resumed. The message names the file only."""


class TimeParseError(ValueError):
    pass


def parse_instant(text: str) -> int:
    """Epoch milliseconds of `text`: epoch seconds (`1714521600`, `1714521600.5`) or
    ISO-8601 (`2024-05-01T00:00:00Z`, `2024-05-01T02:00+02:00`, `2024-05-01`).
    A time without an offset is read as UTC: a replay window must not depend on the
    machine's time zone."""
    value = text.strip()
    if _EPOCH_SECONDS.match(value):
        return round(float(value) * 1000)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimeParseError(f"{text!r} is neither epoch seconds nor an ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def format_instant(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Window:
    """Event times [start_ms, end_ms)."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise TimeParseError("the window is empty: --to must be later than --from")

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        return cls(parse_instant(start), parse_instant(end))

    def as_tuple(self) -> tuple[int, int]:
        return (self.start_ms, self.end_ms)


def destinations_fingerprint(*urls: str) -> str:
    """SHA-256 over the callback URLs, so a resume can tell a different destination apart
    without the checkpoint ever holding the token-bearing URLs."""
    digest = hashlib.sha256()
    for url in urls:
        digest.update(url.encode())
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class RunParameters:
    """What makes two replay runs the same run."""

    window: Window
    topics: tuple[str, ...]
    destinations: str  # destinations_fingerprint(...)
    mode: str = "live"  # live | dry-run
    payload_format: str = "legacy"

    def differences(self, other: RunParameters) -> list[str]:
        """Names of the parameters that differ (values stay out: they may be secrets)."""
        names = ("window", "topics", "destinations", "mode", "payload_format")
        return [n for n in names if getattr(self, n) != getattr(other, n)]


@dataclass(slots=True)
class PartitionProgress:
    start: int  # first offset of the scan
    end: int  # offset the scan stops before (captured once, at the first start)
    next: int  # every record below it is done (delivered, dead-lettered or not needed)

    @property
    def done(self) -> int:
        return min(max(self.next - self.start, 0), self.end - self.start)

    @property
    def total(self) -> int:
        return max(self.end - self.start, 0)


@dataclass(slots=True)
class Checkpoint:
    params: RunParameters
    partitions: dict[Partition, PartitionProgress] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(p.next >= p.end for p in self.partitions.values())

    @property
    def done(self) -> int:
        return sum(p.done for p in self.partitions.values())

    @property
    def total(self) -> int:
        return sum(p.total for p in self.partitions.values())

    def advance(self, offsets: Mapping[Partition, int]) -> bool:
        """Raise `next` where `offsets` go further; True when anything moved."""
        moved = False
        for key, offset in offsets.items():
            progress = self.partitions.get(key)
            if progress is not None and min(offset, progress.end) > progress.next:
                progress.next = min(offset, progress.end)
                moved = True
        return moved

    def check_resumable(self, wanted: RunParameters) -> None:
        differences = self.params.differences(wanted)
        if differences:
            raise CheckpointError(
                "the checkpoint belongs to a different run (differs in "
                f"{', '.join(differences)}); start over with another --checkpoint file"
            )

    # --- JSON -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        p = self.params
        return {
            "version": FORMAT_VERSION,
            "window": {
                "from_ms": p.window.start_ms,
                "to_ms": p.window.end_ms,
                "from": format_instant(p.window.start_ms),
                "to": format_instant(p.window.end_ms),
            },
            "topics": list(p.topics),
            "destinations": p.destinations,
            "mode": p.mode,
            "payload_format": p.payload_format,
            "complete": self.complete,
            "partitions": [
                {"topic": t, "partition": n, "start": s.start, "end": s.end, "next": s.next}
                for (t, n), s in sorted(self.partitions.items())
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        if data.get("version") != FORMAT_VERSION:
            raise CheckpointError(f"unsupported checkpoint version {data.get('version')!r}")
        window = data["window"]
        params = RunParameters(
            Window(int(window["from_ms"]), int(window["to_ms"])),
            tuple(str(t) for t in data["topics"]),
            str(data["destinations"]),
            str(data["mode"]),
            str(data["payload_format"]),
        )
        partitions = {
            (str(p["topic"]), int(p["partition"])): PartitionProgress(
                int(p["start"]), int(p["end"]), int(p["next"])
            )
            for p in data["partitions"]
        }
        return cls(params, partitions)


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace `path` atomically with `checkpoint`; CheckpointError when that fails."""
    data = (json.dumps(checkpoint.to_json(), indent=1) + "\n").encode()
    directory = path.parent if str(path.parent) else Path(".")
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_directory(directory)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {_describe(exc)}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); not possible everywhere, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: Path) -> Checkpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_describe(exc)}") from exc
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return Checkpoint.from_json(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} is damaged ({type(exc).__name__})") from exc


def new_checkpoint(
    params: RunParameters, ranges: Iterable[tuple[Partition, int, int]]
) -> Checkpoint:
    """A run's first checkpoint: every partition at the start of its range."""
    return Checkpoint(
        params, {key: PartitionProgress(start, end, start) for key, start, end in ranges}
    )
