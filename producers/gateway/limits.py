"""The gateway's limits and the per-client AUTH throttle. Pure: no I/O, clock injected."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

# Replies to the limits (RFC 5321 §4.2.2/§4.5.3.1, RFC 3463 codes). Each names what was
# exceeded; none names the client.
TOO_MANY_SESSIONS: Final = "421 4.7.0 Too many sessions, try again later"
TOO_MANY_RECIPIENTS: Final = "452 4.5.3 Too many recipients in this message"
COMMAND_TIMEOUT: Final = "421 4.4.2 Timeout waiting for a command, closing"
SESSION_TIMEOUT: Final = "421 4.4.2 Session too long, closing"
AUTH_THROTTLED: Final = "421 4.7.0 Too many failed authentications, try again later"
AUTH_REQUIRED: Final = "530 5.7.0 Authentication required"


@dataclass(frozen=True, slots=True)
class GatewayLimits:
    max_message_bytes: int = 25 * 1024 * 1024  # advertised as SIZE
    max_recipients: int = 50
    max_sessions: int = 100
    command_timeout_s: float = 300.0  # RFC 5321 §4.5.3.2 suggests 5 min between commands
    session_timeout_s: float = 1800.0
    auth_failures_allowed: int = 5  # per client address within `auth_window_s`
    auth_window_s: float = 600.0
    auth_pause_s: float = 2.0  # how long a throttled client waits for its 421

    def __post_init__(self) -> None:
        for name in (
            "max_message_bytes",
            "max_recipients",
            "max_sessions",
            "auth_failures_allowed",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("command_timeout_s", "session_timeout_s", "auth_window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass
class AuthThrottle:
    """Failed AUTHs per client address in a sliding window; bounded memory (oldest forgotten).

    A client over the allowance is throttled until its oldest failure leaves the window, so
    guessing is limited to `allowed` tries per `window_s` per address.
    """

    allowed: int
    window_s: float
    max_clients: int = 10_000
    _failures: OrderedDict[str, list[float]] = field(default_factory=OrderedDict, repr=False)

    def throttled(self, client: str, now: float) -> bool:
        return len(self._recent(client, now)) >= self.allowed

    def failed(self, client: str, now: float) -> bool:
        """Record a failure; True if the client is throttled from now on."""
        recent = self._recent(client, now)
        recent.append(now)
        self._failures[client] = recent
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
        return len(recent) >= self.allowed

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> list[float]:
        return [t for t in self._failures.get(client, ()) if now - t < self.window_s]


@dataclass
class SessionSlots:
    """Concurrent sessions: `take` answers whether one more fits."""

    limit: int
    active: int = 0

    def take(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def give_back(self) -> None:
        self.active = max(0, self.active - 1)
