"""Reading message files, Maildirs and mbox files; filing Maildir messages as seen."""

from __future__ import annotations

import io
import mailbox
from pathlib import Path

import pytest

from bouncewire.producers.mail.mailboxes import (
    MailItem,
    Unreadable,
    file_processed,
    is_seen,
    read_paths,
)

MESSAGE = b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"


def _read(*paths: str, stdin: bytes = b"") -> list[MailItem | Unreadable]:
    return list(read_paths(paths, io.BytesIO(stdin)))


def test_a_file_stdin_an_mbox_and_a_maildir(tmp_path: Path) -> None:
    single = tmp_path / "one.eml"
    single.write_bytes(MESSAGE)
    box = mailbox.mbox(tmp_path / "box")
    box.add(MESSAGE)
    box.add(MESSAGE.replace(b"x", b"y"))
    box.close()
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "2.h").write_bytes(MESSAGE)
    (maildir / "cur" / "1.h:2,S").write_bytes(MESSAGE)
    (maildir / "tmp" / "3.h").write_bytes(MESSAGE)  # still being delivered: not read
    items = _read(str(single), "-", str(tmp_path / "box"), str(maildir), stdin=MESSAGE)
    assert [i.label for i in items] == [
        str(single), "-", f"{tmp_path}/box#1", f"{tmp_path}/box#2",
        str(maildir / "new" / "2.h"), str(maildir / "cur" / "1.h:2,S")]
    assert all(isinstance(i, MailItem) for i in items)
    assert b"Subject: y" in items[3].raw  # type: ignore[union-attr]
    assert [i.maildir_file is not None for i in items] == [False] * 4 + [True] * 2  # type: ignore[union-attr]


def test_unreadable_paths_are_named_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    missing, plain = _read(str(tmp_path / "nope"), str(tmp_path / "plain"))
    assert missing == Unreadable(str(tmp_path / "nope"), "No such file or directory")
    assert isinstance(plain, Unreadable) and "not a Maildir" in plain.reason


@pytest.mark.parametrize(
    ("where", "name", "filed"),
    [("new", "1.h", "1.h:2,S"), ("cur", "1.h:2,RF", "1.h:2,FRS"), ("cur", "1.h:2,S", "1.h:2,S")],
)
def test_filing_marks_seen_in_cur_keeping_other_flags(
    tmp_path: Path, where: str, name: str, filed: str
) -> None:
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "M" / sub).mkdir(parents=True)
    file = tmp_path / "M" / where / name
    file.write_bytes(MESSAGE)
    target = file_processed(file, None)
    assert target == tmp_path / "M" / "cur" / filed and is_seen(target)
    assert target.read_bytes() == MESSAGE and not file.exists() or target == file


def test_filing_into_another_maildir_creates_it(tmp_path: Path) -> None:
    (tmp_path / "M" / "new").mkdir(parents=True)
    file = tmp_path / "M" / "new" / "1.h"
    file.write_bytes(MESSAGE)
    target = file_processed(file, tmp_path / "Done")
    assert target == tmp_path / "Done" / "cur" / "1.h:2,S"
    assert all((tmp_path / "Done" / sub).is_dir() for sub in ("new", "cur", "tmp"))
