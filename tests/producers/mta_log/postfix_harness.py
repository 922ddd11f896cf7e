"""A throwaway Postfix (Debian's package) and a scripted "internet" for the mta-log tests.

`throwaway_postfix(...)` starts a real Postfix with its own config, queue and `maillog_file`
in a temporary directory, listening on loopback only (the recipe in the project's mail
notes: a unique multi_instance_name, postlogd, no chroot, no DNS), relaying everything to
`relay_port` and one domain to `refused_port`; short queue timers make a retry happen within
a second and an undeliverable message expire within seconds. It needs root (Postfix drops to
its `postfix` user itself). `internet(...)` is the aiosmtpd server Postfix relays to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

POSTFIX_COMMAND_TIMEOUT_S = 30
QUEUE_LIFETIME_S = 8
_MASTER_CF = (Path("/etc/postfix/master.cf"), Path("/usr/share/postfix/master.cf.dist"))


def postfix_usable() -> str | None:
    """Why a throwaway Postfix cannot run here, or None when it can."""
    if shutil.which("postfix") is None or shutil.which("postconf") is None:
        return "Debian's postfix is not installed (deploy/scripts/install-tools.sh mail)"
    if shutil.which("swaks") is None or shutil.which("script") is None:
        return "swaks (deploy/scripts/install-tools.sh mail) or script (util-linux) missing"
    if os.geteuid() != 0:
        return "a throwaway Postfix needs root"
    if not any(path.exists() for path in _MASTER_CF):
        return "no master.cf to start from"
    return None


@dataclass
class Internet:
    """What the scripted receiving servers saw: recipients accepted, by local part."""

    accepted: list[str] = field(default_factory=list)
    greylisted: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    """RCPT: `nouser@` → 550 5.1.1; `grey@` → 451 4.7.1 the first time, then accepted."""

    def __init__(self, seen: Internet) -> None:
        self.seen = seen

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        local = address.partition("@")[0]
        if local.startswith("nouser"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        with self.seen.lock:
            if local.startswith("grey") and address not in self.seen.greylisted:
                self.seen.greylisted.add(address)
                return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        with self.seen.lock:
            self.seen.accepted.extend(envelope.rcpt_tos)
        return "250 2.0.0 Ok: queued"


@contextmanager
def internet(port: int) -> Iterator[Internet]:
    seen = Internet()
    controller = Controller(_Handler(seen), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield seen
    finally:
        controller.stop()


@dataclass(frozen=True)
class Postfix:
    directory: Path
    maillog: Path
    smtpd_port: int
    name: str

    def postfix(self, *command: str) -> None:
        _run(["postfix", "-c", str(self.directory), *command])

    def flush_queue(self) -> None:
        _run(["postqueue", "-c", str(self.directory), "-f"])


def _run(argv: list[str]) -> None:
    # `script` gives postfix the terminal it prints its errors to (else only to syslog).
    done = subprocess.run(["script", "-qec", " ".join(argv), "/dev/null"],  # noqa: S603,S607
                          capture_output=True, text=True, timeout=POSTFIX_COMMAND_TIMEOUT_S,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} {argv[-1]} failed: {done.stdout}{done.stderr}")


def _postconf(directory: Path, *arguments: str) -> None:
    subprocess.run(["postconf", "-c", str(directory), *arguments],  # noqa: S603,S607
                   check=True, capture_output=True, timeout=POSTFIX_COMMAND_TIMEOUT_S)


@contextmanager
def throwaway_postfix(smtpd_port: int, relay_port: int, refused_domain: str,
                      refused_port: int) -> Iterator[Postfix]:
    directory = Path(tempfile.mkdtemp(prefix="bw-postfix-"))
    name = f"bwtest{uuid.uuid4().hex[:6]}"
    instance = Postfix(directory, directory / "maillog", smtpd_port, name)
    try:
        _configure(instance, relay_port, refused_domain, refused_port)
        instance.postfix("start")
        yield instance
    finally:
        try:
            instance.postfix("stop")
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _configure(instance: Postfix, relay_port: int, refused_domain: str,
               refused_port: int) -> None:
    d = instance.directory
    d.chmod(0o755)
    (d / "queue").mkdir()
    (d / "data").mkdir()
    (d / "main.cf").write_text("compatibility_level = 3.7\n")
    shutil.copyfile(next(p for p in _MASTER_CF if p.exists()), d / "master.cf")
    (d / "transport").write_text(f"{refused_domain} smtp:[127.0.0.1]:{refused_port}\n")
    instance.maillog.touch()
    shutil.chown(instance.maillog, "postfix")
    shutil.chown(d / "data", "postfix")
    lifetime = f"{QUEUE_LIFETIME_S}s"
    _postconf(
        d, "-e", f"queue_directory={d}/queue", f"data_directory={d}/data",
        f"maillog_file={instance.maillog}", f"maillog_file_prefixes=/var, {d}",
        f"multi_instance_name={instance.name}", "inet_interfaces=127.0.0.1",
        "inet_protocols=ipv4", "mydestination=", "myhostname=mta.test",
        "mynetworks=127.0.0.0/8", "alias_maps=", "alias_database=",
        "smtp_dns_support_level=disabled", "smtpd_peername_lookup=no",
        f"relayhost=[127.0.0.1]:{relay_port}", f"transport_maps=texthash:{d}/transport",
        # A retry within a second or two; what cannot be delivered expires in seconds.
        "queue_run_delay=1s", "minimal_backoff_time=1s", "maximal_backoff_time=2s",
        f"maximal_queue_lifetime={lifetime}", f"bounce_queue_lifetime={lifetime}",
        "smtp_connect_timeout=5s",
    )
    _postconf(d, "-M#", "smtp/inet")
    _postconf(d, "-Me", f"{instance.smtpd_port}/inet={instance.smtpd_port} inet n - n - - smtpd")
    _postconf(d, "-Me", "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd")
    _postconf(d, "-F", "*/*/chroot = n")
    instance.postfix("set-permissions")
