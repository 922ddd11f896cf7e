"""Profile the consumer and the producer CLI with pyinstrument; rank functions by self time.

The consumer runs as `pyinstrument -m bouncewire.cli consume` (its main thread is the poll
loop; the sender threads only POST) until the sink has every callback, then gets SIGTERM and
drains as usual. The producer CLI runs over a JSON lines file. Each writes a pyinstrument
session, an HTML tree and the top-N self-time table into bench-results/.
"""

# ruff: noqa: S603 -- the bench starts its own helper processes with fixed argv lists

from __future__ import annotations

import signal
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import BenchEnv, Sink, produce_cli
from bench.consumer_bench import ConsumerRun


def _pyinstrument(session: Path, argv: list[str]) -> list[str]:
    """`argv` is a `python -m module args` line; run the module under pyinstrument."""
    python, _m, module, *args = argv
    return [python, "-m", "pyinstrument", "-r", "session", "-o", str(session), "-m", module, *args]


def hot_spots(session_path: Path, top: int = 15) -> dict[str, list[dict[str, Any]]]:
    """Functions and files by self time (summed over every call path), as shares of the
    main thread's total."""
    from pyinstrument.renderers import HTMLRenderer
    from pyinstrument.session import Session

    session = Session.load(str(session_path))
    session_path.with_suffix(".html").write_text(HTMLRenderer().render(session))
    root = session.root_frame()
    if root is None:
        return {"functions": [], "files": []}
    selfs: defaultdict[str, float] = defaultdict(float)
    files: defaultdict[str, float] = defaultdict(float)
    stack = [(root, "?")]
    while stack:
        frame, parent = stack.pop()
        # pyinstrument files a function's own time under a synthetic "[self]" child.
        where = (
            parent
            if frame.is_synthetic
            else (f"{frame.function} ({frame.file_path_short}:{frame.line_no})")
        )
        own = frame.time - sum(child.time for child in frame.children)
        selfs[where] += own
        files[where.rpartition("(")[2].partition(":")[0]] += own
        stack.extend((child, where) for child in frame.children)
    total = root.time or 1.0
    return {
        kind: [
            {"name": name, "self_seconds": round(t, 3), "share": round(t / total, 4)}
            for name, t in sorted(times.items(), key=lambda kv: -kv[1])[:top]
        ]
        for kind, times in (("functions", selfs), ("files", files))
    }


def profile_consumer(
    env: BenchEnv, sink: Sink, topic: str, callbacks: int
) -> dict[str, list[dict[str, Any]]]:
    session = env.out / "profile-consumer.pyisession"
    sink.reset()
    run = ConsumerRun(env, sink, topic)
    argv = _pyinstrument(session, run.argv())
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=env.log_file("profile_consumer.log"),
    )
    try:
        sink.wait_for_events(callbacks, timeout=600)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return hot_spots(session)


def profile_producer(env: BenchEnv, topic: str, lines: Path) -> dict[str, list[dict[str, Any]]]:
    session = env.out / "profile-producer-cli.pyisession"
    argv = _pyinstrument(session, produce_cli(env, topic, lines))
    subprocess.run(
        argv,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=env.log_file("profile_producer.log"),
    )
    return hot_spots(session)
