"""Commands `unsubscribe-server` (the RFC 8058 service) and `unsubscribe-link` (sign a link).

The signing keys come from `BOUNCEWIRE_UNSUBSCRIBE_SECRET` or `--secret-file`, never from a
flag (command lines show up in `ps`): ``kid1:secret1,kid2:secret2``, the first signs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bouncewire._flags import add_flag, add_kafka_flags, topic_names
from bouncewire._produce import build_codec
from bouncewire._serve import acknowledging_producer
from bouncewire.producers.signed_addresses import signed_address
from bouncewire.producers.unsubscribe import (
    Claims,
    KeyConfigError,
    Keyring,
    TokenError,
    header_lines,
    public_url_problem,
    sign,
    unsubscribe_url,
)

# Not a credential: the name of the environment variable that holds the signing keys.
SECRET_ENV = "BOUNCEWIRE_UNSUBSCRIBE_SECRET"  # noqa: S105
log = logging.getLogger("bouncewire.unsubscribe")


def add_unsubscribe_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = sub.add_parser(
        "unsubscribe-server", help="serve RFC 8058 one-click unsubscribe links, publish the clicks"
    )
    add_kafka_flags(server)
    add_flag(server, "--host", default="127.0.0.1", help="interface to listen on")
    add_flag(server, "--port", type=int, default=8080)
    _add_link_flags(server)
    add_flag(
        server,
        "--ack-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for Kafka's acknowledgement before answering 503",
    )
    add_flag(
        server,
        "--retry-after",
        type=int,
        default=30,
        help="seconds announced in Retry-After when the broker is unavailable",
    )
    server.set_defaults(handler=cmd_unsubscribe_server)

    link = sub.add_parser(
        "unsubscribe-link", help="print a signed unsubscribe URL and its mail header lines"
    )
    link.add_argument("email", help="the recipient's address")
    _add_link_flags(link)
    add_flag(link, "--campaign", help="campaign id carried by the link")
    add_flag(link, "--meta", help="X-CleverTap_META value carried by the link")
    add_flag(
        link,
        "--mailto-domain",
        help="also print a signed mailto: address at this domain (served by `mail serve`) "
        "for the List-Unsubscribe header",
    )
    link.set_defaults(handler=cmd_unsubscribe_link)


def _add_link_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--public-url",
        required=True,
        help="base URL the service is reachable at, e.g. https://mail.example.com",
    )
    add_secret_file_flag(parser)


def _fail(message: str) -> int:
    print(f"bouncewire: {message}", file=sys.stderr)
    return 2


def _link_setup(args: argparse.Namespace) -> tuple[Keyring, str] | str:
    """(keyring, public_url), or an error message that names no secret."""
    problem = public_url_problem(args.public_url)
    if problem is not None:
        return f"--public-url {problem}"
    keyring = load_keyring(args)
    return keyring if isinstance(keyring, str) else (keyring, args.public_url)


def add_secret_file_flag(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--secret-file",
        type=Path,
        help=f"file holding the signing keys kid:secret,... (or set {SECRET_ENV})",
    )


def load_keyring(
    args: argparse.Namespace, missing: str = f"no signing key: set {SECRET_ENV} or --secret-file"
) -> Keyring | str:
    """The signing keys from --secret-file or the environment, or an error message that
    names no secret (`missing` when neither holds any)."""
    if args.secret_file is not None:
        try:
            text = args.secret_file.read_text()
        except OSError as exc:
            return f"cannot read --secret-file: {exc.strerror}"
    else:
        text = os.environ.get(SECRET_ENV, "")
    if not text.strip():
        return missing
    try:
        return Keyring.parse(text)
    except KeyConfigError as exc:
        return f"signing keys: {exc}"


def cmd_unsubscribe_link(args: argparse.Namespace) -> int:
    setup = _link_setup(args)
    if isinstance(setup, str):
        return _fail(setup)
    keyring, public_url = setup
    claims = Claims(args.email.strip(), args.campaign, args.meta)
    try:
        url = unsubscribe_url(public_url, sign(keyring, claims))
        mailto = None
        if args.mailto_domain:
            mailto = "mailto:" + signed_address(keyring, claims, args.mailto_domain, "unsubscribe")
    except TokenError as exc:
        return _fail(f"cannot sign a link: {exc.reason}")
    print(url)
    if mailto is not None:
        print(mailto)
    for line in header_lines(url, mailto):
        print(line)
    return 0


def cmd_unsubscribe_server(args: argparse.Namespace) -> int:
    # Imported here: the other commands need neither Starlette nor uvicorn.
    from bouncewire.producers.acks import AcknowledgedPublisher
    from bouncewire.producers.unsubscribe.app import ServiceConfig, UnsubscribeService, create_app
    from bouncewire.producers.unsubscribe.server import run_server

    setup = _link_setup(args)
    if isinstance(setup, str):
        return _fail(setup)
    keyring = setup[0]
    topics = {"unsubscribe": topic_names(args).unsubscribes}
    sender = AcknowledgedPublisher(
        acknowledging_producer(args, args.ack_timeout, unavailable_reply="503"),
        build_codec(args),
        topics,
    )
    config = ServiceConfig(keyring, ack_timeout_s=args.ack_timeout, retry_after_s=args.retry_after)
    app = create_app(UnsubscribeService(config, sender), on_shutdown=sender.close)
    log.info(
        "unsubscribe service starting",
        extra={
            "host": args.host,
            "port": args.port,
            "signing_kid": keyring.signing_kid,
            "verifying_kids": list(keyring.kids),
        },
    )
    run_server(app, args.host, args.port)
    return 0
