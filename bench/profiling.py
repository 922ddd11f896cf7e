"""Profile the consumer and the producer CLI with pyinstrument; rank functions by self time.

The consumer runs as `pyinstrument -m bouncewire.cli consume` (its main thread is the poll
loop; the sender threads only POST) until the sink has every callback, then gets SIGTERM and
drains as usual. The producer CLI runs over a JSON lines file. Each writes a pyinstrument
session, an HTML tree and the top-N self-time table into bench-results/.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import BenchEnv, Sink, bouncewire
from bench.consumer_bench import ConsumerRun


def _pyinstrument(session: Path, argv: list[str]) -> list[str]:
    """`argv` is a `python -m module args` line; run the module under pyinstrument."""
    python, _m, module, *args = argv
    return [python, "-m", "pyinstrument", "-r", "session", "-o", str(session), "-m", module,
            *args]


def hot_spots(session_path: Path, top: int = 15) -> list[dict[str, Any]]:
    """Functions by self time (summed over every call path), as a share of the total."""
    from pyinstrument.renderers import HTMLRenderer
    from pyinstrument.session import Session

    session = Session.load(str(session_path))
    session_path.with_suffix(".html").write_text(HTMLRenderer().render(session))
    root = session.root_frame()
    if root is None:
        return []
    selfs: Counter[str] = Counter()
    stack = [root]
    while stack:
        frame = stack.pop()
        own = frame.time - sum(child.time for child in frame.children)
        where = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        selfs[where] += own
        stack.extend(frame.children)
    total = root.time or 1.0
    return [{"function": name, "self_seconds": round(t, 3), "share": round(t / total, 4)}
            for name, t in selfs.most_common(top)]


def profile_consumer(env: BenchEnv, sink: Sink, topic: str, callbacks: int) -> list[dict[str, Any]]:
    session = env.out / "profile-consumer.pyisession"
    sink.reset()
    run = ConsumerRun(env, sink, topic)
    argv = _pyinstrument(session, run.argv())
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,  # noqa: S603
                            stderr=env.log_file("profile_consumer.log"))
    try:
        sink.wait_for_events(callbacks, timeout=600)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return hot_spots(session)


def profile_producer(env: BenchEnv, topic: str, lines: Path) -> list[dict[str, Any]]:
    session = env.out / "profile-producer-cli.pyisession"
    argv = _pyinstrument(session, bouncewire(
        "produce", "send-results", str(lines), "--bootstrap-servers", env.bootstrap,
        "--send-results-topic", topic, "--log-level", "warning"))
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,  # noqa: S603
                   stderr=env.log_file("profile_producer.log"))
    return hot_spots(session)
