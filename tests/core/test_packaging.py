"""The packaging configuration: a flat layout said out loud, so that `pip install -e .` prints no setuptools
warning (with the flat layout implied, setuptools installs an import hook and warns about folders named like
the packages), and every package and module of the service installed."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_the_packages_sit_at_the_root():
    assert CONFIG["package-dir"] == {"": "."}


def test_every_package_and_module_of_the_service_is_installed():
    patterns = CONFIG["packages"]["find"]["include"]
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "scripts"}
    assert packages, "no packages found"
    for name in sorted(packages):
        assert any(fnmatch(name, pattern) for pattern in patterns), name
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert set(CONFIG["py-modules"]) == modules, modules
    # Data files next to the code: the keyword rules and the survey page's templates.
    assert "data/*.json" in CONFIG["package-data"]["services"]
