"""Errors raised while turning input into events and publishing them.

    ProducerError
    ├── InvalidEventError   -- an input record is wrong (.field, .problem); nothing was published
    └── PublishError        -- the cluster did not acknowledge what was handed to it

Messages name the field and the rule it broke, never the email address itself.
"""

from __future__ import annotations


class ProducerError(Exception):
    """Root of the producer errors."""


class InvalidEventError(ProducerError):
    """An input record breaks the contract; `field` names where, `problem` says how."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class PublishError(ProducerError):
    """Records were handed to Kafka but not acknowledged."""
