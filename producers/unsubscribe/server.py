"""Run the unsubscribe app under uvicorn, with logging left to bouncewire's JSON setup."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn
from starlette.applications import Starlette


class _Server(uvicorn.Server):
    """SIGTERM / SIGINT stop the server gracefully and the command then returns 0.

    uvicorn's own handler records the signal and re-raises it once shut down, which ends the
    process *by* the signal; a bouncewire command reports a requested stop as a clean exit.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for open connections
        else:
            self.should_exit = True


def server_for(app: Starlette, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for `app`: `.run()` blocks until SIGINT/SIGTERM (or `.should_exit`)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # The access log would print every path, and every path holds a token.
        access_log=False,
        log_config=None,
        server_header=False,
        lifespan="on",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=15,
    )
    # uvicorn's h11 protocol logs access lines whenever "uvicorn.access" has a handler, even
    # with access_log=False; a disabled logger drops them whatever handlers get attached.
    logging.getLogger("uvicorn.access").disabled = True
    return _Server(config)


def run_server(app: Starlette, host: str, port: int) -> None:
    server_for(app, host, port).run()
