"""Locating (and if need be installing) the SRE kit's external tools for the deploy tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
INSTALL_TOOLS = DEPLOY / "scripts" / "install-tools.sh"
INSTALL_TIMEOUT_S = 600


def _can_install() -> bool:
    return os.geteuid() == 0 or shutil.which("sudo") is not None


def require_tool(name: str, package: str = "prometheus") -> str:
    """Path of `name`; installs it with deploy/scripts/install-tools.sh when it is missing.

    Skips (with the reason) only when the tool is missing and cannot be installed here.
    """
    found = shutil.which(name) or _cached_bin(name)
    if found:
        return found
    if not _can_install() and package == "prometheus":
        pytest.skip(f"{name} missing and apt-get needs root: run {INSTALL_TOOLS} as root")
    run = subprocess.run([str(INSTALL_TOOLS), package], capture_output=True, text=True,
                         timeout=INSTALL_TIMEOUT_S, check=False)
    found = shutil.which(name) or _cached_bin(name)
    if not found:
        pytest.skip(f"{name} missing and {INSTALL_TOOLS.name} {package} could not install it "
                    f"(exit {run.returncode}): {run.stderr.strip()[-300:]}")
    return found


def _cached_bin(name: str) -> str | None:
    path = REPO_ROOT / ".cache" / "bin" / name
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None
