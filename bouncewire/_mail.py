"""Commands `mail parse | produce | serve` (bounces, complaints, unsubscribes that arrive as mail)
and `verp-address` (a signed return path). The wiring only: producers/mail holds the logic.

The signing keys (to check VERP and mailto tokens) are the unsubscribe keys: the same
`BOUNCEWIRE_UNSUBSCRIBE_SECRET` or `--secret-file`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import orjson

from bouncewire._flags import add_flag, add_kafka_flags, kafka_settings, topic_names
from bouncewire._produce import build_codec
from bouncewire._serve import acknowledging_producer
from bouncewire._unsubscribe import add_secret_file_flag, load_keyring
from bouncewire.kafka_client import BrokerUnavailableError, KafkaClientError, KafkaProducer
from bouncewire.producers import EventPublisher, PublishError
from bouncewire.producers.mail import parse_message
from bouncewire.producers.mail.events import (
    Conversion,
    MailEvent,
    MailOptions,
    mail_events,
    message_key,
)
from bouncewire.producers.mail.mailboxes import MailItem, Unreadable, file_processed, read_paths
from bouncewire.producers.mail.report import MailReport
from bouncewire.producers.signed_addresses import signed_address
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring, TokenError
from bouncewire.schemas.classification import classify

log = logging.getLogger("bouncewire.mail")
# Bounces carry the original (attachments included, at times): generous, still bounded.
DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# Messages published between two flushes of `mail produce` (and Maildir files then filed).
PRODUCE_BATCH = 500
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To")
_LINE_KEYS = (
    "email",
    "ts",
    "smtp_code",
    "enhanced_code",
    "smtp_message",
    "remote_mta",
    "message_id",
    "campaign_id",
    "meta",
)


def add_mail_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mail = sub.add_parser("mail", help="bounces, complaints and unsubscribes that arrive as mail")
    commands = mail.add_subparsers(dest="mail_command", required=True)
    parse = commands.add_parser("parse", help="print the events in messages as JSON lines")
    _add_input_flags(parse)
    parse.set_defaults(handler=cmd_mail_parse)

    produce = commands.add_parser("produce", help="publish the events in messages")
    _add_input_flags(produce)
    add_kafka_flags(produce)
    add_flag(produce, "--move-to", type=Path, help="file processed Maildir messages here")
    add_flag(produce, "--broker-timeout", type=float, default=15.0)
    produce.set_defaults(handler=cmd_mail_produce)

    serve = commands.add_parser("serve", help="an SMTP server (MX) for the bounce domain")
    _add_serve_flags(serve)
    serve.set_defaults(handler=cmd_mail_serve)

    verp = sub.add_parser("verp-address", help="print a signed return path (VERP) for EMAIL")
    verp.add_argument("email", help="the recipient's address")
    add_flag(verp, "--domain", required=True, help="the bounce domain `mail serve` receives")
    add_flag(verp, "--campaign", help="campaign id carried by the address")
    add_flag(verp, "--meta", help="X-CleverTap_META value carried by the address")
    add_secret_file_flag(verp)
    verp.set_defaults(handler=cmd_verp_address)


def _add_input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="message file, Maildir, mbox file, or -"
    )
    add_secret_file_flag(parser)
    _add_complaint_flag(parser)


def _add_complaint_flag(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--no-complaint-unsubscribes",
        action="store_true",
        help="count spam complaints but do not turn them into unsubscribes",
    )


def _add_serve_flags(serve: argparse.ArgumentParser) -> None:
    add_kafka_flags(serve)
    add_flag(serve, "--host", default="127.0.0.1", help="interface to listen on")
    add_flag(serve, "--port", type=int, default=2525)
    add_flag(serve, "--domain", required=True, help="accept mail for this domain only (a,b,...)")
    add_flag(serve, "--tls-cert", type=Path, help="certificate (PEM) offered with STARTTLS")
    add_flag(serve, "--tls-key", type=Path, help="private key (PEM) of --tls-cert")
    add_flag(serve, "--quarantine", type=Path, help="keep messages no format recognises here")
    add_flag(serve, "--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    add_flag(serve, "--max-recipients", type=int, default=100)
    add_flag(
        serve,
        "--ack-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for Kafka's acknowledgement before answering 451",
    )
    add_flag(serve, "--metrics-port", type=int, help="serve /metrics and /healthz here")
    add_flag(serve, "--metrics-host", default="127.0.0.1")
    add_secret_file_flag(serve)
    _add_complaint_flag(serve)


def _fail(message: str, code: int = 2) -> int:
    print(f"bouncewire: {message}", file=sys.stderr)
    return code


def _options(args: argparse.Namespace) -> MailOptions:
    return MailOptions(complaint_unsubscribes=not args.no_complaint_unsubscribes)


def _optional_keyring(args: argparse.Namespace) -> Keyring | None:
    """Files can be read without keys (tokens are then left unverified); a broken key
    configuration is still an error."""
    keyring = load_keyring(args)
    if isinstance(keyring, str):
        if keyring.startswith("no signing key"):
            print(f"bouncewire: {keyring}; VERP and mailto tokens unverified", file=sys.stderr)
            return None
        raise SystemExit(_fail(keyring))
    return keyring


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _convert(item: MailItem, keyring: Keyring | None, options: MailOptions) -> Conversion:
    now_ms = _now_ms()
    report = parse_message(item.raw, now_ms=now_ms)
    key = message_key(report, item.raw)
    envelope = delivered_to(item.raw)
    return mail_events(report, envelope, keyring, key=key, now_ms=now_ms, options=options)


def delivered_to(raw: bytes) -> tuple[str, ...]:
    """A stored message's envelope recipients, as the delivering MTA recorded them
    (`Delivered-To:` by Postfix, Exim, qmail; `X-Original-To:` by Postfix): the VERP or
    mailto address even when To: names another (a Bcc, a forward)."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        values = [str(v) for name in _ENVELOPE_HEADERS for v in headers.get_all(name, [])]
        return tuple(address for _, address in getaddresses(values) if "@" in address)
    except Exception:  # hostile headers: the message's own To: still stands in
        return ()


def _conversions(
    args: argparse.Namespace, unreadable: list[Unreadable]
) -> Iterator[tuple[MailItem, Conversion]]:
    keyring, options = _optional_keyring(args), _options(args)
    for item in read_paths(args.paths, sys.stdin.buffer):
        if isinstance(item, Unreadable):
            unreadable.append(item)
            print(f"bouncewire: cannot read {item.label}: {item.reason}", file=sys.stderr)
        else:
            yield item, _convert(item, keyring, options)


def parse_lines(item: MailItem, conversion: Conversion) -> list[dict[str, Any]]:
    """`mail parse` output for one message: a line per event, or one naming its kind."""
    if not conversion.events:
        return [{"file": item.label, "kind": conversion.kind, "counted": list(conversion.notes)}]
    return [_event_line(item.label, event) for event in conversion.events]


def _event_line(label: str, event: MailEvent) -> dict[str, Any]:
    record = event.record
    line: dict[str, Any] = {"file": label, "kind": event.mail_kind}
    for key in _LINE_KEYS:
        line[key] = record.get(key)
    line["ts"] = record["event_time"] / 1000
    if event.kind == "unsubscribe":
        line["source"] = record["source"]
        return line
    result = classify(
        record["email"],
        record["smtp_code"],
        record["enhanced_code"],
        record["smtp_message"],
        record["error"],
    )
    line.update(
        error=record["error"],
        bounce=result.bounce,
        error_class=result.error_class,
        reason=result.reason,
    )
    return line


def cmd_mail_parse(args: argparse.Namespace) -> int:
    unreadable: list[Unreadable] = []
    out = sys.stdout.buffer
    for item, conversion in _conversions(args, unreadable):
        for line in parse_lines(item, conversion):
            out.write(orjson.dumps(line) + b"\n")
    out.flush()
    return 1 if unreadable else 0


def cmd_mail_produce(args: argparse.Namespace) -> int:
    try:
        producer = KafkaProducer(kafka_settings(args))
        producer.check_broker(timeout=args.broker_timeout)
    except BrokerUnavailableError as exc:
        return _fail(f"{exc}; nothing published")
    publisher = EventPublisher(producer, build_codec(args), topic_names(args))
    unreadable: list[Unreadable] = []
    tally: Counter[str] = Counter()
    try:
        _produce_all(args, publisher, unreadable, tally)
    except (KafkaClientError, PublishError) as exc:
        return _fail(f"{exc} ({publisher.acknowledged} acknowledged; nothing filed since)")
    summary = ", ".join(f"{key} {count}" for key, count in sorted(tally.items()))
    print(f"published {publisher.acknowledged} events ({summary})", file=sys.stderr)
    return 1 if unreadable else 0


def _produce_all(
    args: argparse.Namespace,
    publisher: EventPublisher,
    unreadable: list[Unreadable],
    tally: Counter[str],
) -> None:
    """Publish in batches; a batch's Maildir files are filed only once it is acknowledged."""
    to_file: list[Path] = []
    for item, conversion in _conversions(args, unreadable):
        tally["messages"] += 1
        tally.update(f"counted {note}" for note in conversion.notes)
        for event in conversion.events:
            publisher.publish(event.kind, event.record, parsed=True)
        # Unrecognised mail stays where it is, unread, for a person to look at.
        recognised = conversion.kind != "unknown" or bool(conversion.events)
        if item.maildir_file is not None and recognised:
            to_file.append(item.maildir_file)
        if tally["messages"] % PRODUCE_BATCH == 0:
            _flush_and_file(args, publisher, to_file)
    _flush_and_file(args, publisher, to_file)


def _flush_and_file(args: argparse.Namespace, publisher: EventPublisher, files: list[Path]) -> None:
    publisher.flush(timeout=args.broker_timeout * 3)
    for file in files:
        try:
            file_processed(file, args.move_to)
        except OSError as exc:
            print(f"bouncewire: cannot file {file}: {exc.strerror}", file=sys.stderr)
    files.clear()


def cmd_verp_address(args: argparse.Namespace) -> int:
    keyring = load_keyring(args)
    if isinstance(keyring, str):
        return _fail(keyring)
    claims = Claims(args.email.strip(), args.campaign, args.meta)
    try:
        print(signed_address(keyring, claims, args.domain, "bounce"))
    except TokenError as exc:
        return _fail(f"cannot sign an address: {exc.reason}")
    return 0


def cmd_mail_serve(args: argparse.Namespace) -> int:
    keyring = load_keyring(args)
    if isinstance(keyring, str):
        return _fail(keyring)
    try:
        tls = _tls_context(args)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return _fail(f"TLS: {exc}")
    producer = acknowledging_producer(args, args.ack_timeout, unavailable_reply="451")
    return run_mail_server(args, keyring, tls, producer)


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return context


def wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def run_mail_server(
    args: argparse.Namespace, keyring: Keyring, tls: ssl.SSLContext | None, producer: KafkaProducer
) -> int:
    # Imported here: the other commands need neither aiosmtpd nor the metrics endpoint.
    from prometheus_client import CollectorRegistry

    from bouncewire.producers.acks import AcknowledgedPublisher, topics_by_kind
    from bouncewire.producers.mail.metrics import MailMetrics
    from bouncewire.producers.mail.server import Listener, MailHandler, ServeConfig, running_server

    domains = frozenset(d.strip().lower().rstrip(".") for d in args.domain.split(",") if d.strip())
    config = ServeConfig(
        domains, keyring, _options(args), args.ack_timeout, args.max_recipients, args.quarantine
    )
    registry = CollectorRegistry()
    topics = topics_by_kind(topic_names(args))
    publisher = AcknowledgedPublisher(producer, build_codec(args), topics, prechecked=True)
    handler = MailHandler(config, parse_received, publisher, MailMetrics.create(registry))
    listener = Listener(args.host, args.port, args.max_message_bytes, tls)
    endpoints = _endpoints(args, registry)
    with running_server(handler, listener):
        log.info(
            "mail server listening",
            extra={"port": args.port, "domains": sorted(domains), "tls": tls is not None},
        )
        wait_for_stop()
    if endpoints is not None:
        endpoints.stop()
    publisher.close()
    return 0


def _endpoints(args: argparse.Namespace, registry: Any) -> Any:
    """/metrics and /healthz on --metrics-port, as the consumer serves them (None: no port)."""
    if args.metrics_port is None:
        return None
    from bouncewire.consumers.endpoints import EndpointServer

    def alive() -> tuple[bool, str]:
        return True, "ok"

    endpoints = EndpointServer(
        registry, liveness=alive, readiness=alive, host=args.metrics_host, port=args.metrics_port
    )
    endpoints.start()
    return endpoints


def parse_received(raw: bytes, now_ms: int) -> MailReport:
    """The parser as `MailHandler` calls it (the receipt time passed positionally)."""
    return parse_message(raw, now_ms=now_ms)
