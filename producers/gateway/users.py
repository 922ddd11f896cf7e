"""The gateway's users file: one `name:hash` line per user, the hash salted scrypt.

    # comment
    clevertap:scrypt$16384$8$1$<salt, base64>$<key, base64>

A leaked file must not leak passwords: each hash has its own 16-byte salt and scrypt's cost
(N, r, p) is stored with it, so the cost can rise for new hashes without breaking old ones.
`UserStore` re-reads the file when its size or modification time changed (checked at every
AUTH: one stat) or when `reload()` is called (the gateway calls it on SIGHUP). No password,
hash or salt is ever in a log line, an exception or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SCHEME: Final = "scrypt"
# RFC 7914 §2's interactive figures: ~50 ms and 16 MiB per check on a laptop core.
DEFAULT_COST: Final = (2**14, 8, 1)
_SALT_BYTES: Final = 16
_KEY_BYTES: Final = 32
_NAME: Final = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
# scrypt needs 128 * r * N bytes; allow a little above the default's 16 MiB.
_MAX_MEMORY: Final = 64 * 1024 * 1024


class UsersFileError(ValueError):
    """The users file or a name in it is malformed; the message names the line, never a hash."""


def name_problem(name: str) -> str | None:
    if not _NAME.fullmatch(name):
        return "must be 1-128 characters of letters, digits and . _ @ + -"
    return None


def hash_password(password: str, *, cost: tuple[int, int, int] = DEFAULT_COST) -> str:
    """`scrypt$N$r$p$salt$key` for `password`, with a fresh random salt."""
    n, r, p = cost
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, n, r, p)
    return "$".join((SCHEME, str(n), str(r), str(p), _b64(salt), _b64(key)))


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` matches the stored hash; False for a malformed hash."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return False
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt, key = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        derived = _derive(password, salt, n, r, p)
    except ValueError:
        return False
    return hmac.compare_digest(derived, key)


def parse_users(text: str) -> dict[str, str]:
    """name → stored hash. Blank lines and `#` comments are skipped."""
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or name_problem(name) or not stored.startswith(SCHEME + "$"):
            raise UsersFileError(f"line {number}: expected name:{SCHEME}$N$r$p$salt$key")
        users[name] = stored
    return users


def format_users(users: dict[str, str]) -> str:
    header = "# bouncewire smtp-gateway users (edit with: bouncewire smtp-gateway-user)\n"
    return header + "".join(f"{name}:{stored}\n" for name, stored in sorted(users.items()))


def set_user(path: Path, name: str, password: str) -> bool:
    """Add or replace `name` in the file (created 0600); True if the user is new.

    Written to a temporary file and renamed over the old one, so a gateway reading it
    concurrently sees the old file or the new one, never half of either.
    """
    problem = name_problem(name)
    if problem is not None:
        raise UsersFileError(f"user name {problem}")
    if not password:
        raise UsersFileError("the password is empty")
    users = parse_users(path.read_text()) if path.exists() else {}
    new = name not in users
    users[name] = hash_password(password)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(format_users(users))
    os.replace(temporary, path)
    return new


@dataclass
class UserStore:
    """The users file, re-read when it changed; `check` is safe from several threads."""

    path: Path
    _users: dict[str, str] = field(default_factory=dict, repr=False)
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.reload()  # a broken file at start is an error the operator must see

    def reload(self) -> int:
        """Read the file now; returns the number of users. Raises UsersFileError/OSError."""
        stat = self.path.stat()
        users = parse_users(self.path.read_text())
        with self._lock:
            self._users, self._stamp = users, (stat.st_mtime_ns, stat.st_size)
        log.info("smtp-gateway users file read", extra={"users": len(users)})
        return len(users)

    def check(self, name: str, password: str) -> bool:
        """Whether `name` exists with this password (re-reading the file if it changed)."""
        self._refresh_if_changed()
        with self._lock:
            stored = self._users.get(name)
        if stored is None:
            # Spend the same time as a real check: failures must not tell names apart.
            verify_password(_DUMMY_HASH, password)
            return False
        return verify_password(stored, password)

    def _refresh_if_changed(self) -> None:
        try:
            stat = self.path.stat()
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self.reload()
        except (OSError, UsersFileError) as exc:
            # Keep serving the users we know: a half-edited file must not lock everyone out.
            log.warning("smtp-gateway users file not re-read", extra={"reason": str(exc)})


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY, dklen=_KEY_BYTES
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_DUMMY_HASH: Final = hash_password("not a password: equalizes the time of an unknown name")
