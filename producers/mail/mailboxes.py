"""Read messages from the paths `mail parse` and `mail produce` take, and file them afterwards.

A path is a message file, an mbox file (it starts with a ``From `` line), a Maildir (a directory
with cur/ or new/: both are read, new/ first) or ``-`` for one message on stdin. stdlib
`mailbox` splits mbox files; Maildir messages are plain files, read and renamed directly
(Python 3.11's `mailbox.Maildir` can only change flags by rewriting the whole message).
"""

from __future__ import annotations

import mailbox
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

_MBOX_START: Final = b"From "
_INFO: Final = ":2,"  # Maildir: "<unique name>:2,<flags>", flags sorted, S = seen
_SUBDIRS: Final = ("new", "cur")


@dataclass(frozen=True, slots=True)
class MailItem:
    """One message's bytes; `maildir_file` is set when it is a file in a Maildir."""

    label: str
    raw: bytes
    maildir_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Unreadable:
    label: str
    reason: str


def read_paths(paths: Sequence[str], stdin: BinaryIO) -> Iterator[MailItem | Unreadable]:
    for path in paths:
        if path == "-":
            yield MailItem("-", stdin.read())
            continue
        try:
            yield from _read_path(Path(path))
        except OSError as exc:
            yield Unreadable(path, exc.strerror or type(exc).__name__)


def _read_path(path: Path) -> Iterator[MailItem | Unreadable]:
    if path.is_dir():
        if not any((path / sub).is_dir() for sub in _SUBDIRS):
            yield Unreadable(str(path), "a directory, but not a Maildir (no cur/ or new/)")
            return
        yield from _read_maildir(path)
        return
    with open(path, "rb") as handle:
        start = handle.read(len(_MBOX_START))
    if start == _MBOX_START:
        yield from _read_mbox(path)
    else:
        yield MailItem(str(path), path.read_bytes())


def _read_maildir(root: Path) -> Iterator[MailItem | Unreadable]:
    for sub in _SUBDIRS:
        directory = root / sub
        if not directory.is_dir():
            continue
        for file in sorted(directory.iterdir()):
            if file.name.startswith(".") or not file.is_file():
                continue
            try:
                yield MailItem(str(file), file.read_bytes(), file)
            except OSError as exc:  # delivered and then removed by another reader, say
                yield Unreadable(str(file), exc.strerror or type(exc).__name__)


def _read_mbox(path: Path) -> Iterator[MailItem]:
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield MailItem(f"{path}#{number}", box.get_bytes(key))
    finally:
        box.close()


def is_seen(file: Path) -> bool:
    return "S" in file.name.partition(_INFO)[2]


def file_processed(file: Path, move_to: Path | None) -> Path:
    """Mark a Maildir message seen: into cur/ with the S flag, in its own Maildir or, with
    `move_to`, in that one (created as a Maildir if need be). Never deletes anything."""
    base, _, flags = file.name.partition(_INFO)
    name = base + _INFO + "".join(sorted(set(flags) | {"S"}))
    root = file.parent.parent if move_to is None else move_to
    if move_to is not None:
        for sub in ("tmp", "new", "cur"):
            (move_to / sub).mkdir(parents=True, exist_ok=True)
    target = root / "cur" / name
    shutil.move(file, target)  # a rename within one file system
    return target
