"""bouncewire as users get it: `python -m build` (sdist, a wheel from the sdist, and a wheel from
the tree), the wheel installed into a fresh virtual environment, the CLI run from there with
no checkout on the path: --version, classify, and produce → consume on the real broker.

The source tree keeps producers/, consumers/, schemas/ and kafka_client/ at its top and links
them under bouncewire/; these tests prove the links survive the sdist and that only
`bouncewire` lands in site-packages, with every module, .avsc and py.typed of the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from bouncewire.kafka_client import TopicNames
from bouncewire.receiver import CallbackReceiver
from reliability.support import wait_until
from tests.consumers.pipeline_harness import topics_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("producers", "consumers", "schemas", "kafka_client")
VERSION = version("bouncewire")
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".cache", ".kafka", "__pycache__", "*.egg-info", "build", "dist",
    "bench-results", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
)
BUILD_TIMEOUT_S = 120
INSTALL_TIMEOUT_S = 180


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel_from_sdist: Path
    wheel_from_tree: Path


def run(argv: list[str | Path], *, timeout: float, **kwargs: object) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def checkout_package_files() -> set[str]:
    """What the wheel must hold: every file under bouncewire/ (modules, .avsc, py.typed, any
    data file added later), with the links to the top-level folders followed (as an import
    would). A data file package-data does not declare fails the tests that use this."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(ROOT / "bouncewire", followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found.update(str((Path(folder) / name).relative_to(ROOT)) for name in files
                     if not name.startswith(".") and not name.endswith(".pyc"))
    return found


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """Built from a copy of the checkout (links kept as links), so the checkout stays clean."""
    base = tmp_path_factory.mktemp("dists")
    source = base / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCES)
    assert (source / "bouncewire" / "producers").is_symlink()
    # Without options: the sdist, then the wheel built from the unpacked sdist (as pip does).
    run([sys.executable, "-m", "build", "--outdir", base / "sdist", source],
        timeout=BUILD_TIMEOUT_S)
    run([sys.executable, "-m", "build", "--wheel", "--outdir", base / "tree", source],
        timeout=BUILD_TIMEOUT_S)
    (sdist,) = (base / "sdist").glob("bouncewire-*.tar.gz")
    (wheel_from_sdist,) = (base / "sdist").glob("bouncewire-*.whl")
    (wheel_from_tree,) = (base / "tree").glob("bouncewire-*.whl")
    return Dists(sdist, wheel_from_sdist, wheel_from_tree)


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if not n.endswith("/")}


def test_the_wheels_hold_only_bouncewire_with_every_module_schema_and_marker(
    dists: Dists,
) -> None:
    expected = checkout_package_files()
    assert {f"bouncewire/{p}/py.typed" for p in PARTS} <= expected
    assert {"bouncewire/schemas/avsc/send_result/v1.avsc", "bouncewire/py.typed"} <= expected
    for wheel in (dists.wheel_from_tree, dists.wheel_from_sdist):
        files = wheel_files(wheel)
        assert {f.split("/")[0] for f in files} == {"bouncewire", f"bouncewire-{VERSION}.dist-info"}
        assert expected - files == set(), wheel.name
    assert wheel_files(dists.wheel_from_tree) == wheel_files(dists.wheel_from_sdist)


def test_the_sdist_carries_the_linked_parts_as_files(dists: Dists) -> None:
    prefix = f"bouncewire-{VERSION}/"
    with tarfile.open(dists.sdist) as archive:
        members = {m.name.removeprefix(prefix): m for m in archive.getmembers()}
    for path in checkout_package_files():
        assert path in members and members[path].isfile(), path
    assert not [m.name for m in members.values() if m.issym() or m.islnk()]


@pytest.fixture(scope="module")
def venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel built from the sdist (dependencies pinned as the
    checkout's, so pip takes them from its cache)."""
    home = tmp_path_factory.mktemp("venv") / "env"
    run([sys.executable, "-m", "venv", home], timeout=60)
    run([home / "bin" / "python", "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt",
         dists.wheel_from_sdist], timeout=INSTALL_TIMEOUT_S, env=clean_env(home))
    return home


def clean_env(home: Path) -> dict[str, str]:
    """No PYTHONPATH, no BOUNCEWIRE_* settings; the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith("BOUNCEWIRE_")}
    env["PATH"] = f"{home / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


@pytest.fixture
def installed(venv: Path, tmp_path: Path) -> Callable[..., str]:
    """Run a program of the venv from an empty directory, away from the checkout."""

    def call(program: str, *args: str, stdin: str = "", timeout: float = 60) -> str:
        return run([venv / "bin" / program, *args], timeout=timeout, input=stdin,
                   cwd=tmp_path, env=clean_env(venv))

    return call


def test_only_bouncewire_is_importable_and_it_is_the_installed_one(
    installed: Callable[..., str], venv: Path
) -> None:
    probe = (
        "import importlib.util, json, bouncewire.producers, bouncewire.consumers.pipeline\n"
        "print(json.dumps({'file': bouncewire.__file__, 'top': "
        f"{{n: importlib.util.find_spec(n) is not None for n in {PARTS!r}}}}}))"
    )
    found = json.loads(installed("python", "-c", probe))
    assert Path(found["file"]).is_relative_to(venv)
    assert not Path(found["file"]).is_relative_to(ROOT)
    assert found["top"] == dict.fromkeys(PARTS, False)


def test_version_and_classify_from_the_installed_cli(installed: Callable[..., str]) -> None:
    assert installed("bouncewire", "--version").strip() == f"bouncewire {VERSION}"
    line = {"email": "gone@example.com", "smtp_code": 550, "enhanced_code": "5.1.1",
            "smtp_message": "550 5.1.1 user unknown"}
    verdict = json.loads(installed("bouncewire", "classify", stdin=json.dumps(line) + "\n"))
    assert (verdict["bounce"], verdict["error_class"]) == ("hard", "invalid_email_id")


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as stand_in:
        yield stand_in


def test_produce_then_consume_from_the_installed_cli(
    installed: Callable[..., str], venv: Path, tmp_path: Path, kafka_bootstrap: str,
    unique_name: Callable[[str], str], receiver: CallbackReceiver,
) -> None:
    topics = topics_for(kafka_bootstrap, unique_name, partitions=1)
    flags = kafka_flags(kafka_bootstrap, topics)
    results = "".join(json.dumps({"email": f"gone{i}@example.com", "smtp_code": 550,
                                  "enhanced_code": "5.1.1"}) + "\n" for i in range(3))
    installed("bouncewire", "produce", "send-results", *flags, stdin=results)
    installed("bouncewire", "produce", "unsubscribes", *flags,
              stdin=json.dumps({"email": "bye@example.com", "source": "one_click"}) + "\n")
    consume = subprocess.Popen(
        [venv / "bin" / "bouncewire", "consume", *flags, "--group-id", f"g-{uuid.uuid4().hex}",
         "--bounce-callback-url", receiver.url, "--unsubscribe-callback-url", receiver.url,
         "--linger-ms", "100"],
        cwd=tmp_path, env=clean_env(venv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(delivered(receiver)) == 4, 60)
        consume.send_signal(signal.SIGTERM)
        assert consume.wait(30) == 0
    finally:
        if consume.poll() is None:
            consume.kill()
            consume.wait(10)
        assert consume.stderr is not None
        consume.stderr.close()
    assert delivered(receiver) == {("hardbounce", f"gone{i}@example.com") for i in range(3)} | {
        ("unsubscribe", "bye@example.com")}


def kafka_flags(bootstrap: str, topics: TopicNames) -> list[str]:
    return ["--bootstrap-servers", bootstrap, "--send-results-topic", topics.send_results,
            "--unsubscribes-topic", topics.unsubscribes, "--dlq-topic", topics.dlq]


def delivered(receiver: CallbackReceiver) -> set[tuple[str, str]]:
    return {(e.event, e.email) for post in receiver.received for e in post.processed_events}
