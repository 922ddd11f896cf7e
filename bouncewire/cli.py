"""`bouncewire` command line: parses arguments and wires components; no logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from bouncewire import __version__, _consume, _demo, _produce, _replay, receiver
from bouncewire._flags import add_flag, add_kafka_flags, unknown_env
from bouncewire._gateway import add_gateway_commands, add_simulate_gateway_flags
from bouncewire._mail import add_mail_commands
from bouncewire._mta_log import add_mta_log_command
from bouncewire._unsubscribe import add_unsubscribe_commands

Handler = Callable[[argparse.Namespace], int]


def _producer_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = sub.add_parser("topics", help="manage the pipeline's topics")
    create = topics.add_subparsers(dest="topics_command", required=True).add_parser(
        "create", help="create the send-results, unsubscribes and dead-letter topics"
    )
    add_kafka_flags(create)
    add_flag(create, "--partitions", type=int, default=6)
    add_flag(create, "--replication-factor", type=int, default=1)
    create.set_defaults(handler=_produce.cmd_topics_create)

    produce = sub.add_parser("produce", help="publish JSON lines as Avro events")
    produce.add_argument("event_kind", choices=sorted(_produce.KIND_BY_COMMAND))
    produce.add_argument("file", nargs="?", default="-", help="JSON lines file, - for stdin")
    add_kafka_flags(produce)
    add_flag(
        produce,
        "--broker-timeout",
        type=float,
        default=15.0,
        help="seconds to wait for the broker before giving up",
    )
    produce.set_defaults(handler=_produce.cmd_produce)

    classify = sub.add_parser("classify", help="classify send-result JSON lines (no Kafka)")
    classify.add_argument("file", nargs="?", default="-")
    classify.set_defaults(handler=_produce.cmd_classify)

    simulate = sub.add_parser("simulate", help="publish realistic synthetic traffic")
    add_kafka_flags(simulate)
    add_flag(simulate, "--rate", type=float, default=100.0, help="events per second")
    add_flag(simulate, "--duration", type=float, default=10.0, help="seconds")
    add_flag(simulate, "--seed", type=int, default=1)
    add_flag(simulate, "--broker-timeout", type=float, default=15.0)
    add_simulate_gateway_flags(simulate)
    simulate.set_defaults(handler=_produce.cmd_simulate)


def _consumer_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    consume = sub.add_parser("consume", help="deliver CleverTap callbacks as a consumer group")
    add_kafka_flags(consume)
    _consume.add_consume_flags(consume)
    consume.set_defaults(handler=_consume.cmd_consume)

    health = sub.add_parser("health", help="exit 0 when a running consumer is healthy")
    add_flag(health, "--metrics-port", type=int, default=9464)
    add_flag(health, "--metrics-host", default="127.0.0.1")
    health.add_argument("--check", choices=["live", "ready"], default="ready")
    health.add_argument("--timeout", type=float, default=3.0)
    health.set_defaults(handler=_consume.cmd_health)

    stand_in = sub.add_parser("receiver", help="a local stand-in for CleverTap's callback URLs")
    receiver.add_receiver_arguments(stand_in)
    stand_in.set_defaults(handler=receiver.cmd_receiver)

    demo = sub.add_parser("demo", help="the whole pipeline on this machine, then a summary")
    add_flag(demo, "--seconds", type=float, default=60.0, help="0 = until Ctrl-C")
    add_flag(demo, "--rate", type=float, default=200.0, help="simulated events per second")
    add_flag(
        demo, "--via-gateway", action="store_true", help="send results as mail via smtp-gateway"
    )
    add_flag(demo, "--callback-delay-ms", type=int, default=100, help="the stand-in's answer time")
    demo.set_defaults(handler=_demo.cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bouncewire",
        description="Carry SMTP send results and unsubscribes from Kafka to CleverTap callbacks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _producer_commands(sub)
    _consumer_commands(sub)
    add_unsubscribe_commands(sub)
    add_gateway_commands(sub)
    _replay.add_replay_commands(sub)
    add_mta_log_command(sub)
    add_mail_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    unknown = unknown_env(parser, os.environ)
    if unknown:
        parser.error(f"unknown environment variable(s) {', '.join(unknown)}: no flag reads them")
    args = parser.parse_args(argv)
    from bouncewire import logs

    logs.configure(getattr(args, "log_level", "info"))
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
