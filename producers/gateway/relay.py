"""Relay one client transaction upstream, command by command, and publish its results.

Blocking (smtplib, a Kafka acknowledgement): the aiosmtpd edge calls each method from a
worker thread, one at a time per transaction.

Upstream transactions ("legs"): without personalization, one leg carries every recipient,
as the client sent them. With a VERP domain or a List-Unsubscribe URL each recipient needs
its own return path or header, so each gets its own leg (an upstream session opened at its
RCPT): the client's per-RCPT answers stay the upstream's own, at the cost of one upstream
connection per recipient (bounded by the recipients-per-message limit).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bouncewire.producers.exceptions import InvalidEventError, PublishError
from bouncewire.producers.gateway import replies
from bouncewire.producers.gateway.dedup import RecentlyRelayed, Unpublished, transaction_digest
from bouncewire.producers.gateway.headers import (
    MessageFacts,
    UnsubscribeDecision,
    message_facts,
    with_unsubscribe_headers,
)
from bouncewire.producers.gateway.metrics import GatewayMetrics, upstream_result
from bouncewire.producers.signed_addresses import signed_address
from bouncewire.producers.smtp_capture import (
    RelayConfig,
    RelaySession,
    SendOutcome,
    check_publishable,
    log_outcome,
    outcome_of,
)
from bouncewire.producers.smtp_errors import Evidence
from bouncewire.producers.unsubscribe.links import unsubscribe_url
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring, TokenError, sign

log = logging.getLogger(__name__)
# Event ids are uuid5 of what the transaction was: a kept result republished keeps its id.
_EVENT_NAMESPACE = uuid.UUID("2f4c1b8e-6f0a-5e8b-9a7c-3d2e1f0a9b8c")
BAD_ADDRESS = "553 5.1.3 Recipient address cannot be recorded ({reason})"
BAD_MESSAGE = "554 5.6.0 Message cannot be recorded ({reason})"


class ResultPublisher(Protocol):
    def publish(self, records: Sequence[dict[str, Any]], timeout: float) -> None:
        """Return once the cluster acknowledged every record; raise PublishError otherwise."""


@dataclass(frozen=True, slots=True)
class Personalization:
    """Per-recipient changes; both need the unsubscribe keyring."""

    keyring: Keyring = field(repr=False)
    verp_domain: str | None = None
    unsubscribe_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    relay: RelayConfig
    personalization: Personalization | None = None
    publish_timeout_s: float = 10.0


@dataclass
class _Leg:
    session: RelaySession
    return_path: str
    recipients: list[str] = field(default_factory=list)


class Transaction:
    """One client transaction (MAIL FROM to the end of DATA) and its upstream legs."""

    def __init__(
        self,
        policy: RelayPolicy,
        sender: str,
        options: Sequence[str],
        spare: RelaySession | None = None,
    ) -> None:
        self.policy = policy
        self.sender = sender
        self.options = tuple(options)
        self.id = uuid.uuid4().hex
        self.legs: list[_Leg] = []
        # An upstream session the client's previous transaction left open and clean.
        self._spare = spare
        self._clean = True  # the upstream has no open transaction (after DATA or RSET)
        # One worker at a time: a client that hangs up mid-command has its transaction
        # finished by another worker, which must wait for the command's own to end.
        self.lock = threading.RLock()
        self.client_gone = False  # set from the event loop; read by the workers

    @property
    def recipients(self) -> list[str]:
        return [recipient for leg in self.legs for recipient in leg.recipients]

    def rcpt(self, recipient: str) -> Evidence:
        self._clean = False
        leg = self._leg_for(recipient)
        evidence = leg.session.rcpt(recipient)
        if evidence.accepted:
            leg.recipients.append(recipient)
        return evidence

    def deliver(self, data: bytes, facts: MessageFacts) -> list[tuple[str, Evidence]]:
        """DATA on every leg with recipients; one evidence per recipient, in RCPT order."""
        results: list[tuple[str, Evidence]] = []
        for leg in self.legs:
            if leg.recipients:
                for recipient, evidence in self._deliver_leg(leg, data, facts):
                    results.append((recipient, evidence))
        self._clean = all(leg.recipients for leg in self.legs)  # else a leg is mid-transaction
        return results

    def abandon(self) -> None:
        """RSET every leg: the message is not sent (already relayed once)."""
        for leg in self.legs:
            leg.session.reset()
        self._clean = True

    def close(self) -> None:
        for leg in self.legs:
            leg.session.close()
        if self._spare is not None:
            self._spare.close()

    def finish(self) -> RelaySession | None:
        """Close every leg but one healthy session, returned (reset) for the next transaction:
        a client sending many messages in one session costs one upstream connection. None
        (everything closed) once the client is gone."""
        with self.lock:
            keep = self._keep_one()
            if keep is not None and self.client_gone:
                keep.close()
                return None
            return keep

    def _keep_one(self) -> RelaySession | None:
        keep = self._spare
        if keep is None and self.legs and self.legs[0].session.ended is None:
            keep = self.legs.pop(0).session
        self._spare = None
        self.close()
        if keep is not None and not self._clean and not keep.reset().accepted:
            keep.close()
            return None
        return keep

    def _leg_for(self, recipient: str) -> _Leg:
        if self.legs and self.policy.personalization is None:
            return self.legs[0]
        return_path = self._return_path(recipient, MessageFacts())
        spare = self._take_spare()
        leg = _Leg(spare or RelaySession(self.policy.relay), return_path)
        self.legs.append(leg)
        if spare is None:
            self._open_and_mail(leg)
        elif leg.session.mail(return_path, self.options).error is not None:
            # The kept session went stale (the upstream hung up while idle): one fresh try.
            leg.session.close()
            leg.session = RelaySession(self.policy.relay)
            self._open_and_mail(leg)
        return leg

    def _take_spare(self) -> RelaySession | None:
        spare, self._spare = self._spare, None
        return spare

    def _open_and_mail(self, leg: _Leg) -> None:
        if leg.session.open() is None:
            leg.session.mail(leg.return_path, self.options)

    def _deliver_leg(
        self, leg: _Leg, data: bytes, facts: MessageFacts
    ) -> list[tuple[str, Evidence]]:
        personal = self.policy.personalization
        if personal is not None:
            recipient = leg.recipients[0]
            refused = self._reenvelope(leg, recipient, facts)
            if refused is not None:
                return [(recipient, refused)]
            data = self._personal_data(personal, recipient, data, facts)
        evidence = leg.session.data(data)
        return [(recipient, evidence) for recipient in leg.recipients]

    def _reenvelope(self, leg: _Leg, recipient: str, facts: MessageFacts) -> Evidence | None:
        """The VERP path signed at RCPT knew no campaign or meta; now the headers do."""
        return_path = self._return_path(recipient, facts)
        if return_path == leg.return_path:
            return None
        for step in (
            leg.session.reset,
            lambda: leg.session.mail(return_path, self.options),
            lambda: leg.session.rcpt(recipient),
        ):
            evidence = step()
            if not evidence.accepted:
                return evidence
        leg.return_path = return_path
        return None

    def _return_path(self, recipient: str, facts: MessageFacts) -> str:
        personal = self.policy.personalization
        if personal is None or personal.verp_domain is None:
            return self.sender
        claims = Claims(recipient, facts.campaign_id, facts.meta)
        try:
            return signed_address(personal.keyring, claims, personal.verp_domain, "bounce")
        except TokenError as exc:
            # Too long or unsignable: the message still goes, bounces just map back less.
            log.warning("no VERP return path", extra={"reason": exc.reason})
            return self.sender

    @staticmethod
    def _personal_data(
        personal: Personalization, recipient: str, data: bytes, facts: MessageFacts
    ) -> bytes:
        base = personal.unsubscribe_base_url
        if base is None or facts.unsubscribe_decision() is not UnsubscribeDecision.ADD:
            return data
        claims = Claims(recipient, facts.campaign_id, facts.meta)
        return with_unsubscribe_headers(data, unsubscribe_url(base, sign(personal.keyring, claims)))


class GatewayRelay:
    """Turns a transaction's upstream outcomes into published results and client replies."""

    def __init__(
        self,
        policy: RelayPolicy,
        publisher: ResultPublisher,
        metrics: GatewayMetrics,
        *,
        recent: RecentlyRelayed | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self._publisher = publisher
        self._metrics = metrics
        self._recent = recent or RecentlyRelayed()
        # Delivered and published, the reply perhaps lost (the client hung up before it): a
        # retry of the very same bytes within minutes is that, not a new send.
        self._answered = RecentlyRelayed(max_entries=50_000, max_age_s=900.0)
        self._clock = clock

    def begin(
        self, sender: str, options: Sequence[str], spare: RelaySession | None = None
    ) -> Transaction:
        return Transaction(self.policy, sender, options, spare)

    def rcpt(self, transaction: Transaction, recipient: str) -> str:
        """Relay one RCPT; a refused recipient's result is published before the reply."""
        with transaction.lock:
            return self._rcpt(transaction, recipient)

    def data(self, transaction: Transaction, data: bytes) -> str:
        """Relay DATA (unless this transaction was relayed before), publish, then reply."""
        with transaction.lock:
            return self._data(transaction, data)

    def _rcpt(self, transaction: Transaction, recipient: str) -> str:
        try:
            check_publishable(self.policy.relay.host, [recipient], {})
        except InvalidEventError as exc:
            return BAD_ADDRESS.format(reason=exc.field)
        started = time.perf_counter()
        evidence = transaction.rcpt(recipient)
        self._metrics.relay_seconds.labels("RCPT").observe(time.perf_counter() - started)
        if evidence.accepted:
            return replies.client_reply(evidence)
        event_id = _event_id("rcpt", transaction.id, recipient)
        outcome = self._outcome(recipient, evidence, {"event_id": event_id})
        if not self._published([outcome.record]):
            return replies.NOT_PUBLISHED
        self._count_recipients([outcome])
        return replies.client_reply(evidence)

    def _data(self, transaction: Transaction, data: bytes) -> str:
        digest = transaction_digest(transaction.sender, transaction.recipients, data)
        kept = self._recent.find(digest, self._clock())
        if kept is not None:
            return self._republish(transaction, digest, kept)
        answered = self._answered.find(digest, self._clock())
        if answered is not None:
            transaction.abandon()
            self._metrics.repeats.inc()
            return answered.reply
        facts = message_facts(data)
        extra = {
            "message_id": facts.message_id,
            "campaign_id": facts.campaign_id,
            "meta": facts.meta,
        }
        try:
            check_publishable(self.policy.relay.host, transaction.recipients, extra)
        except InvalidEventError as exc:
            transaction.abandon()
            return BAD_MESSAGE.format(reason=exc.field)
        started = time.perf_counter()
        delivered = transaction.deliver(data, facts)
        self._metrics.relay_seconds.labels("DATA").observe(time.perf_counter() - started)
        outcomes = [
            self._outcome(
                rcpt, evidence, {**extra, "event_id": _event_id("data", digest, rcpt, evidence)}
            )
            for rcpt, evidence in delivered
        ]
        reply = replies.data_reply([evidence for _, evidence in delivered])
        self._count_message(outcomes, len(data))
        if not self._published([outcome.record for outcome in outcomes]):
            self._recent.keep(
                digest, Unpublished(tuple(o.record for o in outcomes), reply, self._clock())
            )
            self._metrics.unpublished.inc()
            return replies.NOT_PUBLISHED
        self._remember_answered(digest, outcomes, reply)
        return reply

    def _remember_answered(self, digest: str, outcomes: list[SendOutcome], reply: str) -> None:
        if any(outcome.delivered for outcome in outcomes):  # else a retry must be relayed
            self._answered.keep(digest, Unpublished((), reply, self._clock()))

    def _republish(self, transaction: Transaction, digest: str, kept: Unpublished) -> str:
        transaction.abandon()
        if not self._published(list(kept.records)):
            return replies.NOT_PUBLISHED
        self._recent.forget(digest)
        self._metrics.replayed.inc()
        log.info("smtp-gateway: retried transaction not relayed again; kept results published")
        reply = replies.ALREADY_RELAYED if kept.reply.startswith("2") else kept.reply
        if reply.startswith("2"):
            self._answered.keep(digest, Unpublished((), reply, self._clock()))
        return reply

    def _outcome(
        self, recipient: str, evidence: Evidence, extra: dict[str, str | None]
    ) -> SendOutcome:
        now_ms = int(self._clock() * 1000)
        outcome = outcome_of(self.policy.relay.host, recipient, evidence, extra, now_ms)
        log_outcome(outcome)
        return outcome

    def _published(self, records: list[dict[str, Any]]) -> bool:
        try:
            self._publisher.publish(records, self.policy.publish_timeout_s)
        except PublishError as exc:
            log.warning(
                "smtp-gateway: results not published; answering 451", extra={"reason": str(exc)}
            )
            return False
        return True

    def _count_message(self, outcomes: list[SendOutcome], size: int) -> None:
        delivered = sum(outcome.delivered for outcome in outcomes)
        first_code = outcomes[0].record["smtp_code"] if outcomes else None
        self._metrics.messages.labels(upstream_result(250 if delivered else first_code)).inc()
        # Bytes sent upstream: one copy per leg that took the message.
        copies = delivered if self.policy.personalization is not None else min(delivered, 1)
        self._metrics.bytes.inc(size * copies)
        self._count_recipients(outcomes)

    def _count_recipients(self, outcomes: list[SendOutcome]) -> None:
        for outcome in outcomes:
            result = upstream_result(outcome.record["smtp_code"])
            error_class = outcome.classification.error_class or "none"
            self._metrics.recipients.labels(result, error_class).inc()


def _event_id(*parts: object) -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, "|".join(str(part) for part in parts)))
