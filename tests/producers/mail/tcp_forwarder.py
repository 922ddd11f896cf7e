"""A loopback TCP forwarder: a port that "comes back" when started, for broker-outage tests.

Kafka clients bootstrap through it and then talk to the broker's advertised address, so a
client pointed at a forwarder not yet started sees no broker at all, and one whose forwarder
starts sees the broker come back.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with closing(source), closing(target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass


@contextmanager
def forwarding(port: int, target: tuple[str, int]) -> Iterator[None]:
    listener = socket.create_server(("127.0.0.1", port))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        listener.close()
        thread.join(5)
