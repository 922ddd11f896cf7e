"""`python -m reliability.tight_consume consume ...`: the real `bouncewire` CLI with group
timeouts tightened for the fault suite.

A SIGKILLed member is only replaced after session.timeout.ms (30 s by default); 6 s keeps
five kill/restart rounds inside minutes. max.poll.interval.ms drops to 10 s so that a
callback outage of minutes would evict a consumer that stopped polling: the outage scenario
proves it does not. Nothing else differs from `bouncewire consume`.
"""

from __future__ import annotations

import sys

from bouncewire import cli
from bouncewire.kafka_client import _consumer
from reliability.harness import TIGHT_GROUP


def main() -> int:
    _consumer.CONSUMER_DEFAULTS = {**_consumer.CONSUMER_DEFAULTS, **TIGHT_GROUP}
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
