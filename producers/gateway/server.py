"""The aiosmtpd edge: listeners, sessions, AUTH, limits. Relaying is `relay.GatewayRelay`.

Two listeners share one event loop (and so one set of limits): the submission port, which
offers STARTTLS, and optionally an implicit-TLS port (465 style). AUTH (PLAIN, LOGIN) is
offered only under TLS; MAIL without AUTH gets 530 5.7.0. Every limit answers with a reply
before the connection closes: too many sessions (421), a command or the whole session taking
too long (421 4.4.2), too many recipients (452 4.5.3), too big (552), repeated AUTH failures
from one address (a pause, then 421 4.7.0).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bouncewire.producers.gateway import limits as limit_replies
from bouncewire.producers.gateway.limits import AuthThrottle, GatewayLimits, SessionSlots
from bouncewire.producers.gateway.metrics import GatewayMetrics
from bouncewire.producers.gateway.relay import GatewayRelay, Transaction
from bouncewire.producers.gateway.users import UserStore
from bouncewire.producers.smtp_capture import RelaySession

log = logging.getLogger(__name__)
_T = TypeVar("_T")
# What _authenticate hands back to aiosmtpd's auth_PLAIN/auth_LOGIN: replaced by the real
# result in GatewaySMTP._verify before smtp_AUTH sees it.
_DEFERRED = AuthResult(success=False, handled=True)
# aiosmtpd logs every command line at INFO (an AUTH PLAIN line is masked, a LOGIN answer and
# the addresses are not) and a deprecation of its own at WARNING on every AUTH: the gateway
# logs its own masked lines instead, and aiosmtpd's errors only.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass
class GatewayState:
    """What every session of both listeners shares (all touched on the event loop only)."""

    relay: GatewayRelay
    users: UserStore
    limits: GatewayLimits
    metrics: GatewayMetrics
    hostname: str = "bouncewire-gateway"
    clock: Callable[[], float] = time.monotonic
    slots: SessionSlots = field(init=False)
    throttle: AuthThrottle = field(init=False)
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.slots = SessionSlots(self.limits.max_sessions)
        self.throttle = AuthThrottle(self.limits.auth_failures_allowed, self.limits.auth_window_s)
        # A worker per session, each blocked on the upstream or the broker at most.
        self.executor = ThreadPoolExecutor(
            self.limits.max_sessions + 2, thread_name_prefix="gateway-relay"
        )

    async def blocking(self, action: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, action)


class GatewaySMTP(SMTP):
    """One client connection."""

    def __init__(self, state: GatewayState, listener: str, **options: Any) -> None:
        super().__init__(
            GatewayHandler(state),
            hostname=state.hostname,
            ident="bouncewire smtp-gateway",
            data_size_limit=state.limits.max_message_bytes,
            timeout=state.limits.command_timeout_s,
            auth_required=True,
            authenticator=_refuse_all,
            **options,
        )
        self.state = state
        self.listener = listener
        self.transaction: Transaction | None = None
        # The last transaction's upstream session, being reset for the next one.
        self._finishing: asyncio.Future[RelaySession | None] | None = None
        self._admitted: bool | None = None
        self._pending_auth: tuple[str, Any] | None = None
        self._session_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admitted is None:  # not the second call STARTTLS makes
            self._admitted = self.state.slots.take()
            if self._admitted:
                self.state.metrics.sessions.labels(self.listener).inc()
                self.state.metrics.active_sessions.inc()
                self._session_timer = self.loop.call_later(
                    self.state.limits.session_timeout_s, self._session_expired
                )
            else:
                self.state.metrics.refusals.labels("sessions").inc()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._admitted:
            self._admitted = False
            self.state.slots.give_back()
            self.state.metrics.active_sessions.dec()
        if self._session_timer is not None:
            self._session_timer.cancel()
        self.drop_upstream()
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if not self._admitted:
            await self.push(limit_replies.TOO_MANY_SESSIONS)
            self._close()
            return
        await super()._handle_client()

    def _timeout_cb(self) -> None:
        self.state.metrics.refusals.labels("command_timeout").inc()
        self._say_and_close(limit_replies.COMMAND_TIMEOUT)

    def _session_expired(self) -> None:
        self.state.metrics.refusals.labels("session_timeout").inc()
        self._say_and_close(limit_replies.SESSION_TIMEOUT)

    def _say_and_close(self, reply: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._writer.write(reply.encode("ascii") + b"\r\n")
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def reset_command_timer(self) -> None:
        """The client waits on the upstream, not idling: restart its command timer."""
        self._reset_timeout()

    async def smtp_AUTH(self, arg: str) -> None:
        client = self.client_address()
        if self.state.throttle.throttled(client, self.state.clock()):
            self.state.metrics.auth_failures.labels(_mechanism(arg), "throttled").inc()
            log.warning("smtp-gateway: AUTH throttled", extra={"client": client})
            await asyncio.sleep(self.state.limits.auth_pause_s)
            await self.push(limit_replies.AUTH_THROTTLED)
            self._close()
            return
        await super().smtp_AUTH(arg)

    # AUTH: aiosmtpd parses PLAIN and LOGIN (and challenges for LOGIN), then calls
    # _authenticate synchronously. scrypt takes ~50 ms: on the event loop it would stall every
    # session, so _authenticate only notes the credentials and the check runs in a worker.

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._verify(await super().auth_LOGIN(_, args))

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        self._pending_auth = (mechanism, auth_data)
        return _DEFERRED

    async def _verify(self, parsed: AuthResult) -> AuthResult:
        pending, self._pending_auth = self._pending_auth, None
        if parsed is not _DEFERRED or pending is None:
            return parsed  # a syntax error aiosmtpd already answered, or an abandoned exchange
        mechanism, data = pending
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        ok = await self.state.blocking(lambda: self.state.users.check(name, password))
        return self._auth_outcome(mechanism, name, ok)

    def _auth_outcome(self, mechanism: str, name: str, ok: bool) -> AuthResult:
        client = self.client_address()
        if ok:
            self.state.throttle.succeeded(client)
            return AuthResult(success=True, auth_data=name)
        throttled = self.state.throttle.failed(client, self.state.clock())
        self.state.metrics.auth_failures.labels(mechanism, "refused").inc()
        # Logged without the password, with the client's IP (a machine, not a person).
        log.warning(
            "smtp-gateway: AUTH failed",
            extra={"client": client, "mechanism": mechanism, "now_throttled": throttled},
        )
        # handled=False: aiosmtpd answers 535 5.7.8 itself.
        return AuthResult(success=False, handled=False)

    def client_address(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else "unknown"

    async def begin_transaction(self, sender: str, options: list[str]) -> None:
        self.end_transaction()
        finishing, self._finishing = self._finishing, None
        spare = await finishing if finishing is not None else None
        self.transaction = self.state.relay.begin(sender, options, spare)

    def end_transaction(self) -> None:
        """Finish upstream off the loop, after the reply went out; the next MAIL waits."""
        transaction, self.transaction = self.transaction, None
        if transaction is not None:
            # begin_transaction took the previous one: nothing else is finishing now.
            self._finishing = self.loop.run_in_executor(self.state.executor, transaction.finish)

    def keep_upstream(self, kept: RelaySession | None) -> None:
        """The finished transaction's upstream session, for the next MAIL."""
        self.transaction = None
        done: asyncio.Future[RelaySession | None] = self.loop.create_future()
        done.set_result(kept)
        self._finishing = done

    def drop_upstream(self) -> None:
        """The client is gone: close everything upstream (QUIT), off the loop. A worker may
        still be relaying a command of the transaction: finish waits for it (its lock), and
        a session it would keep is closed instead (client_gone)."""
        if self.transaction is not None:
            self.transaction.client_gone = True
        self.end_transaction()
        finishing, self._finishing = self._finishing, None
        if finishing is not None:
            finishing.add_done_callback(self._close_kept)

    def _close_kept(self, finishing: asyncio.Future[RelaySession | None]) -> None:
        if not finishing.cancelled() and finishing.exception() is None:
            kept = finishing.result()
            if kept is not None:
                self.state.executor.submit(kept.close)  # QUIT, bounded by the relay timeout


def _mechanism(arg: str | None) -> str:
    mechanism = (arg or "").split(" ", 1)[0].upper()
    return mechanism if mechanism in {"PLAIN", "LOGIN"} else "other"


def _refuse_all(*_: Any) -> AuthResult:
    """aiosmtpd's authenticator slot: never reached (GatewaySMTP._authenticate replaces it)."""
    return AuthResult(success=False, handled=False)


class GatewayHandler:
    """aiosmtpd hooks: each relays its command upstream (in a worker thread)."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    async def handle_MAIL(  # noqa: N802 -- aiosmtpd's hook names
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        await server.begin_transaction(address, mail_options)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        transaction = server.transaction
        assert transaction is not None  # aiosmtpd answers 503 to RCPT before MAIL
        if len(envelope.rcpt_tos) >= self.state.limits.max_recipients:
            self.state.metrics.refusals.labels("recipients").inc()
            return limit_replies.TOO_MANY_RECIPIENTS
        server.reset_command_timer()
        reply = await self.state.blocking(lambda: self.state.relay.rcpt(transaction, address))
        server.reset_command_timer()
        if reply.startswith("25"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(  # noqa: N802
        self, server: GatewaySMTP, session: Session, envelope: Envelope
    ) -> str:
        transaction = server.transaction
        assert transaction is not None
        data = bytes(envelope.original_content or b"")
        server.reset_command_timer()

        def relay_and_finish() -> tuple[str, RelaySession | None]:
            # One worker hop, not two: after DATA the upstream session is clean and
            # finishing it is bookkeeping, no network round trip.
            return self.state.relay.data(transaction, data), transaction.finish()

        reply, kept = await self.state.blocking(relay_and_finish)
        server.reset_command_timer()
        server.keep_upstream(kept)
        return reply

    async def handle_RSET(self, server: GatewaySMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        server.end_transaction()
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server: GatewaySMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        server.end_transaction()
        return "221 2.0.0 Bye"


@dataclass(frozen=True, slots=True)
class Listeners:
    host: str
    port: int
    tls_context: ssl.SSLContext = field(repr=False)
    implicit_tls_port: int | None = None


async def start_listeners(state: GatewayState, listeners: Listeners) -> list[asyncio.Server]:
    """The STARTTLS listener, and the implicit-TLS one if a port is given."""
    loop = asyncio.get_running_loop()
    context = listeners.tls_context
    servers = [
        await loop.create_server(
            lambda: GatewaySMTP(state, "starttls", tls_context=context, loop=loop),
            listeners.host,
            listeners.port,
        )
    ]
    if listeners.implicit_tls_port is not None:
        # The transport is TLS from the first byte: AUTH needs no STARTTLS there.
        servers.append(
            await loop.create_server(
                lambda: GatewaySMTP(state, "implicit_tls", auth_require_tls=False, loop=loop),
                listeners.host,
                listeners.implicit_tls_port,
                ssl=context,
            )
        )
    return servers
