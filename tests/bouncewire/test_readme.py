"""The README's Python example runs as written, against the real broker."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bouncewire.kafka_client import TopicNames
from bouncewire.schemas import Codec, SchemaStore
from tests.consumers.pipeline_harness import read_all

README = Path(__file__).resolve().parents[2] / "README.md"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_one_python_example_on_the_producers_public_api() -> None:
    (snippet,) = python_snippets()
    assert "from bouncewire.producers import" in snippet
    assert '"127.0.0.1:9092"' in snippet and "TopicNames()" in snippet


@pytest.mark.integration
def test_the_readme_example_publishes_what_it_says(
    kafka_bootstrap: str, make_topics: Callable[..., list[str]],
    unique_name: Callable[[str], str],
) -> None:
    topics = TopicNames(unique_name("sr"), unique_name("un"), unique_name("dlq"))
    make_topics(topics.send_results, topics.unsubscribes, partitions=1)
    (snippet,) = python_snippets()
    # Only where it runs changes: this session's broker and this test's topics.
    runnable = snippet.replace('"127.0.0.1:9092"', repr(kafka_bootstrap)).replace(
        "TopicNames()", f"TopicNames({topics.send_results!r}, {topics.unsubscribes!r})")
    exec(compile(runnable, str(README), "exec"), {})  # noqa: S102 - our own README's example
    codec = Codec(SchemaStore.load())
    (send_result,) = read_all(kafka_bootstrap, topics.send_results, 1)
    (unsubscribe,) = read_all(kafka_bootstrap, topics.unsubscribes, 1)
    sent = codec.decode(send_result.value())
    assert (sent.kind, sent.record["email"], sent.record["smtp_code"]) == (
        "send_result", "ann@example.com", 550)
    unsub = codec.decode(unsubscribe.value())
    assert (unsub.kind, unsub.record["source"]) == ("unsubscribe", "one_click")
