"""Frozen settings for the Kafka clients, built once at the entry point and passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Secret:
    """A string that never shows itself in a repr, str, log line or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class TopicNames:
    send_results: str = "email.send-results"
    unsubscribes: str = "email.unsubscribes"
    dlq: str = "email.callbacks.dlq"

    def sources(self) -> tuple[str, str]:
        return (self.send_results, self.unsubscribes)


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Connection settings. `extra` holds raw librdkafka keys for what has no field of its own."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "bouncewire"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: Secret = field(default_factory=lambda: Secret(""))
    ssl_ca_location: str | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: _frozen(None))

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _frozen(self.extra))

    def as_librdkafka(self) -> dict[str, str]:
        """The connection part of a librdkafka config; secrets revealed only here."""
        conf = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = self.sasl_password.reveal()
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf

    def merged(self, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Merge order, later wins: component defaults, `extra`, connection settings, overrides.

        Connection settings win over `extra` so a stray `bootstrap.servers` in extra cannot
        silently redirect a client; overrides are the component's own callbacks and invariants.
        """
        return {**defaults, **self.extra, **self.as_librdkafka(), **overrides}
