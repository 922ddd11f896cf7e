"""The RFC 8058 unsubscribe service as a Starlette ASGI app.

    GET  /u/{token}   confirmation page with a button; never publishes (scanners prefetch)
    POST /u/{token}   body ``List-Unsubscribe=One-Click`` → source one_click, 200 text;
                      any other POST (the page's button) → source link, 200 confirmation page
    GET  /healthz     liveness

A 200 goes out only after Kafka acknowledged the event; otherwise 503 with Retry-After and
nothing is claimed. No redirects (RFC 8058 §3.2), no cookies, no authentication: the signed
token is the only credential. Logs carry masked addresses and reason codes, never a token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from bouncewire.producers.events import parse_unsubscribe
from bouncewire.producers.exceptions import InvalidEventError, PublishError
from bouncewire.producers.unsubscribe import page
from bouncewire.producers.unsubscribe.tokens import (
    Claims,
    Keyring,
    TokenError,
    daily_event_id,
    verify,
)
from bouncewire.schemas.addresses import mask_address

log = logging.getLogger("bouncewire.unsubscribe")

ONE_CLICK_KEY: Final = "List-Unsubscribe"
ONE_CLICK_VALUE: Final = "one-click"
_MAX_FORM_FIELDS: Final = 10
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token must not leak to other sites
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


class Sender(Protocol):
    """Publishes one record; returns once acknowledged, else raises PublishError
    (`bouncewire.producers.acks.AcknowledgedPublisher`)."""

    def publish_one(self, kind: str, record: Mapping[str, Any], timeout: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    keyring: Keyring
    ack_timeout_s: float = 10.0
    retry_after_s: int = 30
    # RFC 8058 bodies are 26 bytes (urlencoded) or a few hundred (multipart).
    max_body_bytes: int = 8 * 1024


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _html(content: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return HTMLResponse(content, status, headers={**SECURITY_HEADERS, **(headers or {})})


def _invalid(status: int = 400) -> Response:
    return _html(page.invalid_page(), status)


class UnsubscribeService:
    """The request handlers; state is the config, the sender and the clock."""

    def __init__(
        self, config: ServiceConfig, sender: Sender, clock: Callable[[], int] = _now_ms
    ) -> None:
        self._config = config
        self._sender = sender
        self._clock = clock

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n", headers=dict(SECURITY_HEADERS))

    async def confirm(self, request: Request) -> Response:
        claims = self._claims(request)
        if claims is None:
            return _invalid()
        token = request.path_params["token"]
        # Relative action: posts back to this very URL whatever prefix a proxy put before /u/.
        return _html(page.confirm_page(mask_address(claims.email), claims.campaign_id, token))

    async def unsubscribe(self, request: Request) -> Response:
        claims = self._claims(request)
        if claims is None:
            return _invalid()
        try:
            fields = await _form_fields(request, self._config.max_body_bytes)
        except _BadRequest as exc:
            log.info("unsubscribe body rejected", extra={"reason": exc.reason})
            return _invalid(exc.status)
        one_click = fields.get(ONE_CLICK_KEY, "").strip().casefold() == ONE_CLICK_VALUE
        return await self._publish(claims, "one_click" if one_click else "link")

    def _claims(self, request: Request) -> Claims | None:
        try:
            return verify(self._config.keyring, request.path_params["token"])
        except TokenError as exc:
            log.info("unsubscribe token rejected", extra={"reason": exc.reason})
            return None

    async def _publish(self, claims: Claims, source: str) -> Response:
        now_ms = self._clock()
        masked = mask_address(claims.email)
        try:
            record = parse_unsubscribe(_input_of(claims, source, now_ms), now_ms=now_ms)
            await run_in_threadpool(
                self._sender.publish_one, "unsubscribe", record, self._config.ack_timeout_s
            )
        except InvalidEventError as exc:
            log.warning("unsubscribe token holds an unusable record", extra={"reason": str(exc)})
            return _invalid()
        except PublishError as exc:
            log.warning(
                "unsubscribe not acknowledged; answered 503",
                extra={"address": masked, "source": source, "reason": str(exc)},
            )
            return self._unavailable()
        log.info(
            "unsubscribe published",
            extra={
                "address": masked,
                "source": source,
                "campaign_id": claims.campaign_id,
                "event_id": record["event_id"],
            },
        )
        if source == "one_click":
            return PlainTextResponse("Unsubscribed.\n", headers=dict(SECURITY_HEADERS))
        return _html(page.done_page(masked))

    def _unavailable(self) -> Response:
        retry_after = self._config.retry_after_s
        return _html(page.unavailable_page(retry_after), 503, {"Retry-After": str(retry_after)})


def _input_of(claims: Claims, source: str, now_ms: int) -> dict[str, Any]:
    return {
        "email": claims.email,
        "source": source,
        "campaign_id": claims.campaign_id,
        "meta": claims.meta,
        "event_id": daily_event_id(claims, now_ms),
    }


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BadRequest(413, "body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadRequest(413, "body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _form_fields(request: Request, limit: int) -> dict[str, str]:
    """The POST's form fields: multipart/form-data (RFC 8058's SHOULD) or urlencoded (MAY).

    The body is read under a byte cap first; any other content type is read as urlencoded,
    since a sloppy client's one-click body is still a request to unsubscribe.
    """
    body = await _read_body(request, limit)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return await _multipart_fields(request, body, limit)
    try:
        return dict(
            parse_qsl(
                body.decode("utf-8", "replace"),
                keep_blank_values=True,
                max_num_fields=_MAX_FORM_FIELDS,
            )
        )
    except ValueError:
        raise _BadRequest(400, "too_many_fields") from None


async def _multipart_fields(request: Request, body: bytes, limit: int) -> dict[str, str]:
    async def chunks() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        request.headers, chunks(), max_files=0, max_fields=_MAX_FORM_FIELDS, max_part_size=limit
    )
    try:
        form = await parser.parse()
    except MultiPartException:
        raise _BadRequest(400, "bad_multipart") from None
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


def create_app(
    service: UnsubscribeService, on_shutdown: Callable[[], object] | None = None
) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    app = Starlette(
        routes=[
            Route("/u/{token}", service.confirm, methods=["GET"]),
            Route("/u/{token}", service.unsubscribe, methods=["POST"]),
            Route("/healthz", service.healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # A trailing-slash redirect would be an RFC 8058 violation (no redirects on the POST).
    app.router.redirect_slashes = False
    return app
