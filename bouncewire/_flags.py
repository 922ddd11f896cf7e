"""Flags shared by the commands; every flag also reads `BOUNCEWIRE_<FLAG>` from the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bouncewire.kafka_client import KafkaSettings, Secret, TopicNames

ENV_PREFIX = "BOUNCEWIRE_"
DEFAULT_TOPICS = TopicNames()


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


# Read directly, not through a flag: secrets must not sit on a command line (`ps` shows it).
SECRET_ENV = frozenset(
    {
        "BOUNCEWIRE_SASL_PASSWORD",
        "BOUNCEWIRE_UNSUBSCRIBE_SECRET",
        "BOUNCEWIRE_UPSTREAM_PASSWORD",
        "BOUNCEWIRE_GATEWAY_PASSWORD",
    }
)


def unknown_env(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> list[str]:
    """`BOUNCEWIRE_*` variables no command knows: a typo would otherwise be silently ignored."""
    known = set(SECRET_ENV)
    for action in _all_actions(parser):
        known.update(env_name(o) for o in action.option_strings if o.startswith("--"))
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions.extend(_all_actions(sub))
    return actions


# A flag whose name holds one of these never shows its value in --help: a callback URL holds
# CleverTap's account token, a registry URL may hold credentials, and the environment may set them.
SECRET_FLAG_WORDS = ("url", "password", "secret", "token", "key", "credential")


def is_secret_flag(flag: str) -> bool:
    return any(word in flag.lower() for word in SECRET_FLAG_WORDS)


def add_flag(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """add_argument, with the environment variable as default (argparse applies `type` to it).

    --help shows the default beside the variable (`[default: 500; env BOUNCEWIRE_LINGER_MS]`),
    the environment's value when it sets one, except for secret-looking flags."""
    env = env_name(flag)
    from_env = env in os.environ
    if from_env:
        if kwargs.get("action") == "store_true":
            kwargs["default"] = os.environ[env].lower() in {"1", "true", "yes", "on"}
        else:
            kwargs["default"] = os.environ[env]
        kwargs["required"] = False
    shown = _shown_default(flag, kwargs.get("default"), from_env)
    kwargs["help"] = f"{kwargs.get('help', '')} [{shown}env {env}]".strip()
    parser.add_argument(flag, **kwargs)


def _shown_default(flag: str, default: Any, from_env: bool) -> str:
    if default is None or default is False or default == argparse.SUPPRESS or is_secret_flag(flag):
        return ""  # a switch is off unless given; a value-less flag has nothing to show
    if default is True:
        default = "on"
    origin = " (from the environment)" if from_env else ""
    return f"default: {default}{origin}; ".replace("%", "%%")  # argparse %-formats help


def add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--bootstrap-servers", default="127.0.0.1:9092", help="Kafka bootstrap list")
    add_flag(
        parser,
        "--security-protocol",
        default="PLAINTEXT",
        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
    )
    add_flag(parser, "--sasl-mechanism", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    add_flag(parser, "--sasl-username")
    add_flag(
        parser,
        "--sasl-password-file",
        type=Path,
        help="file holding the SASL password (or set BOUNCEWIRE_SASL_PASSWORD)",
    )
    add_flag(parser, "--ssl-ca-location", help="CA certificate file for SSL listeners")
    add_flag(
        parser,
        "--schema-registry-url",
        help="use the Confluent wire format through this registry instead of "
        "Avro single-object encoding",
    )
    add_flag(parser, "--send-results-topic", default=DEFAULT_TOPICS.send_results)
    add_flag(parser, "--unsubscribes-topic", default=DEFAULT_TOPICS.unsubscribes)
    add_flag(parser, "--dlq-topic", default=DEFAULT_TOPICS.dlq)
    add_flag(parser, "--log-level", default="info", choices=["debug", "info", "warning", "error"])


def kafka_settings(args: argparse.Namespace) -> KafkaSettings:
    password = os.environ.get("BOUNCEWIRE_SASL_PASSWORD", "")
    if args.sasl_password_file:
        password = args.sasl_password_file.read_text().strip()
    return KafkaSettings(
        bootstrap_servers=args.bootstrap_servers,
        security_protocol=args.security_protocol,
        sasl_mechanism=args.sasl_mechanism,
        sasl_username=args.sasl_username,
        sasl_password=Secret(password),
        ssl_ca_location=args.ssl_ca_location,
    )


def topic_names(args: argparse.Namespace) -> TopicNames:
    return TopicNames(args.send_results_topic, args.unsubscribes_topic, args.dlq_topic)
