"""npm packages installed once into a cache directory, for tests that run Node.js scripts against the API."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def npm_install(npm: str, cache: Path, packages: list[str], what: str) -> None:
    """`npm install` of `packages` into `cache`; skips the test (naming `what`) when the registry refuses."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "package.json").write_text('{"private": true}')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", *packages], cwd=cache, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        pytest.skip(f"could not install {what}: {done.stderr[-500:]}")
