"""Commands `smtp-gateway` (the SMTP server CleverTap connects to) and `smtp-gateway-user`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

from bouncewire._flags import add_flag, add_kafka_flags, topic_names
from bouncewire._produce import build_codec
from bouncewire._serve import acknowledging_producer
from bouncewire._unsubscribe import SECRET_ENV, load_keyring
from bouncewire.kafka_client import BrokerUnavailableError, KafkaProducer, Secret
from bouncewire.producers.acks import AcknowledgedPublisher
from bouncewire.producers.gateway.limits import GatewayLimits
from bouncewire.producers.gateway.metrics import GatewayMetrics
from bouncewire.producers.gateway.publish import AcknowledgedResults
from bouncewire.producers.gateway.relay import GatewayRelay, Personalization, RelayPolicy
from bouncewire.producers.gateway.server import GatewayState, Listeners, start_listeners
from bouncewire.producers.gateway.traffic import GatewayLogin, GatewayTraffic
from bouncewire.producers.gateway.users import UsersFileError, UserStore, set_user
from bouncewire.producers.smtp_capture import RelayConfig
from bouncewire.producers.unsubscribe import public_url_problem

log = logging.getLogger("bouncewire.smtp_gateway")
# Not a credential: the names of the variables holding the keys and the upstream password.
UPSTREAM_PASSWORD_ENV = "BOUNCEWIRE_UPSTREAM_PASSWORD"  # noqa: S105
GATEWAY_PASSWORD_ENV = "BOUNCEWIRE_GATEWAY_PASSWORD"  # noqa: S105
DEFAULTS = GatewayLimits()


def add_gateway_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gateway = sub.add_parser(
        "smtp-gateway", help="SMTP submission server relaying to your relay, publishing results"
    )
    add_kafka_flags(gateway)
    _listener_flags(gateway)
    _upstream_flags(gateway)
    _limit_flags(gateway)
    gateway.set_defaults(handler=cmd_smtp_gateway)

    user = sub.add_parser(
        "smtp-gateway-user", help="add or change a gateway user (password read from stdin)"
    )
    user.add_argument("name", help="the user name CleverTap will log in with")
    add_flag(user, "--users-file", type=Path, required=True)
    user.set_defaults(handler=cmd_smtp_gateway_user)


def add_simulate_gateway_flags(p: argparse.ArgumentParser) -> None:
    """`simulate --via-gateway`: send results go as mail through a running gateway."""
    add_flag(p, "--via-gateway", help="HOST:PORT of a smtp-gateway (STARTTLS) to send through")
    add_flag(p, "--gateway-username")
    add_flag(p, "--gateway-password-file", type=Path, help=f"(or set {GATEWAY_PASSWORD_ENV})")
    add_flag(p, "--gateway-ca-file", help="CA to verify the gateway with (default: no check)")


def simulated_traffic(args: argparse.Namespace) -> GatewayTraffic | None:
    """The SMTP sender `simulate` uses with --via-gateway, else None."""
    if not args.via_gateway:
        return None
    host, _, port = args.via_gateway.rpartition(":")
    password = os.environ.get(GATEWAY_PASSWORD_ENV, "")
    if args.gateway_password_file:
        password = args.gateway_password_file.read_text().strip()
    login = GatewayLogin(
        host, int(port), args.gateway_username or "", password, args.gateway_ca_file
    )
    return GatewayTraffic(login)


def _listener_flags(p: argparse.ArgumentParser) -> None:
    add_flag(p, "--host", default="127.0.0.1", help="interface to listen on")
    add_flag(p, "--port", type=int, default=587, help="submission port (STARTTLS)")
    add_flag(p, "--implicit-tls-port", type=int, help="also listen with TLS from the start (465)")
    add_flag(p, "--tls-cert", type=Path, required=True, help="certificate chain (PEM)")
    add_flag(p, "--tls-key", type=Path, required=True, help="private key (PEM)")
    add_flag(p, "--users-file", type=Path, required=True, help="made by smtp-gateway-user")
    add_flag(p, "--hostname", default=socket.gethostname(), help="name in the greeting")
    add_flag(p, "--metrics-port", type=int, help="serve /metrics, /healthz, /readyz here")
    add_flag(p, "--metrics-host", default="127.0.0.1")


def _upstream_flags(p: argparse.ArgumentParser) -> None:
    add_flag(p, "--upstream", required=True, help="HOST:PORT of your relay")
    add_flag(
        p, "--upstream-security", default="starttls", choices=["none", "starttls", "implicit_tls"]
    )
    add_flag(p, "--upstream-username")
    add_flag(
        p,
        "--upstream-password-file",
        type=Path,
        help=f"file holding the relay password (or set {UPSTREAM_PASSWORD_ENV})",
    )
    add_flag(p, "--upstream-ca-file", type=Path, help="CA bundle to verify the relay with")
    add_flag(p, "--upstream-timeout", type=float, default=30.0, help="seconds per relay step")
    add_flag(p, "--verp-domain", help="sign a VERP return path per recipient at this domain")
    add_flag(p, "--list-unsubscribe-url", help="unsubscribe-server base URL for RFC 8058 headers")
    add_flag(p, "--secret-file", type=Path, help=f"signing keys kid:secret,... (or {SECRET_ENV})")
    add_flag(p, "--publish-timeout", type=float, default=10.0, help="seconds to wait for Kafka")


def _limit_flags(p: argparse.ArgumentParser) -> None:
    add_flag(p, "--max-message-bytes", type=int, default=DEFAULTS.max_message_bytes)
    add_flag(p, "--max-recipients", type=int, default=DEFAULTS.max_recipients)
    add_flag(p, "--max-sessions", type=int, default=DEFAULTS.max_sessions)
    add_flag(p, "--command-timeout", type=float, default=DEFAULTS.command_timeout_s)
    add_flag(p, "--session-timeout", type=float, default=DEFAULTS.session_timeout_s)
    add_flag(p, "--auth-failures-allowed", type=int, default=DEFAULTS.auth_failures_allowed)
    add_flag(p, "--auth-pause", type=float, default=DEFAULTS.auth_pause_s)


def _fail(message: str) -> int:
    print(f"bouncewire: {message}", file=sys.stderr)
    return 2


def cmd_smtp_gateway_user(args: argparse.Namespace) -> int:
    prompt = sys.stdin.isatty()
    password = getpass.getpass("password: ") if prompt else sys.stdin.readline().rstrip("\r\n")
    try:
        new = set_user(args.users_file, args.name, password)
    except (UsersFileError, OSError) as exc:
        return _fail(f"{args.users_file}: {exc}")
    print(f"{'added' if new else 'changed'} user {args.name} in {args.users_file}", file=sys.stderr)
    return 0


def _personalization(args: argparse.Namespace) -> Personalization | None | str:
    if not args.verp_domain and not args.list_unsubscribe_url:
        return None
    if args.list_unsubscribe_url and (problem := public_url_problem(args.list_unsubscribe_url)):
        return f"--list-unsubscribe-url {problem}"
    need = f"--verp-domain and --list-unsubscribe-url need signing keys: set {SECRET_ENV}"
    keyring = load_keyring(args, missing=need)
    if isinstance(keyring, str):
        return keyring
    return Personalization(keyring, args.verp_domain, args.list_unsubscribe_url)


def _relay_config(args: argparse.Namespace) -> RelayConfig | str:

    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit():
        return "--upstream must be HOST:PORT"
    password = os.environ.get(UPSTREAM_PASSWORD_ENV)
    if args.upstream_password_file:
        try:
            password = args.upstream_password_file.read_text().strip()
        except OSError as exc:
            return f"cannot read --upstream-password-file: {exc.strerror}"
    if (args.upstream_username is None) != (password is None):
        return "--upstream-username and the upstream password go together"
    context = None
    if args.upstream_ca_file:
        context = ssl.create_default_context(cafile=str(args.upstream_ca_file))
    return RelayConfig(
        host.strip("[]"),
        int(port),
        timeout_s=args.upstream_timeout,
        security=args.upstream_security,
        username=args.upstream_username,
        password=Secret(password) if password is not None else None,
        helo_name=args.hostname,
        ssl_context=context,
    )


def _limits(args: argparse.Namespace) -> GatewayLimits:
    return GatewayLimits(
        max_message_bytes=args.max_message_bytes,
        max_recipients=args.max_recipients,
        max_sessions=args.max_sessions,
        command_timeout_s=args.command_timeout,
        session_timeout_s=args.session_timeout,
        auth_failures_allowed=args.auth_failures_allowed,
        auth_pause_s=args.auth_pause,
    )


def cmd_smtp_gateway(args: argparse.Namespace) -> int:
    relay, personal = _relay_config(args), _personalization(args)
    if isinstance(relay, str):
        return _fail(relay)
    if isinstance(personal, str):
        return _fail(personal)
    setup = _server_setup(args)
    if isinstance(setup, str):
        return _fail(setup)
    users, tls, limits = setup
    # linger 0: each reply waits on its own records, produced together in one call.
    producer = acknowledging_producer(
        args, args.publish_timeout, unavailable_reply="451", linger_ms=0
    )
    results = AcknowledgedResults(
        AcknowledgedPublisher(
            producer, build_codec(args), {"send_result": topic_names(args).send_results}
        )
    )
    metrics = GatewayMetrics()
    policy = RelayPolicy(relay, personal, publish_timeout_s=args.publish_timeout)
    state = GatewayState(
        GatewayRelay(policy, results, metrics), users, limits, metrics, hostname=args.hostname
    )
    listeners = Listeners(args.host, args.port, tls, args.implicit_tls_port)
    try:
        asyncio.run(_serve(state, listeners, args, producer))
    finally:
        unacknowledged = results.close()
        state.executor.shutdown(wait=False, cancel_futures=True)
        if unacknowledged:
            log.warning("records unacknowledged at exit", extra={"count": unacknowledged})
    return 0


def _server_setup(
    args: argparse.Namespace,
) -> tuple[UserStore, ssl.SSLContext, GatewayLimits] | str:
    """Users, TLS and limits, or what is wrong with them (naming the flag)."""
    try:
        users = UserStore(args.users_file)
    except (OSError, UsersFileError) as exc:
        return f"--users-file {args.users_file}: {getattr(exc, 'strerror', None) or exc}"
    try:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return f"--tls-cert {args.tls_cert} / --tls-key {args.tls_key}: {reason}"
    try:
        return users, tls, _limits(args)
    except ValueError as exc:
        return f"limits: {exc}"


async def _serve(
    state: GatewayState, listeners: Listeners, args: argparse.Namespace, producer: KafkaProducer
) -> None:
    from bouncewire.consumers.endpoints import EndpointServer

    servers = await start_listeners(state, listeners)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload_users(state))
    endpoints = None
    if args.metrics_port is not None:
        endpoints = EndpointServer(
            state.metrics.registry,
            liveness=lambda: (True, "ok"),
            readiness=lambda: _broker_ready(producer),
            host=args.metrics_host,
            port=args.metrics_port,
        )
        endpoints.start()
    log.info(
        "smtp-gateway listening",
        extra={
            "host": listeners.host,
            "port": listeners.port,
            "implicit_tls_port": listeners.implicit_tls_port,
        },
    )
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        if endpoints is not None:
            endpoints.stop()
        log.info("smtp-gateway stopped")


def _reload_users(state: GatewayState) -> None:
    try:
        count = state.users.reload()
    except (OSError, UsersFileError) as exc:
        log.warning(
            "SIGHUP: users file not re-read, keeping the old one", extra={"reason": str(exc)}
        )
        return
    log.info("SIGHUP: users file re-read", extra={"users": count})


def _broker_ready(producer: KafkaProducer) -> tuple[bool, str]:
    try:
        producer.check_broker(timeout=2.0)
    except BrokerUnavailableError:
        return False, "broker unreachable: SMTP transactions are answered 451"
    return True, "ready"
