"""Reliability tests start real processes against PostgreSQL (the PostgreSQL + Redis leg of .ci/run) and break
them; each brings its own Redis server (tests/reliability/harness.py). The in-process `app` fixture is the test's
own view of the same database: it empties it, creates staff, and checks what the processes left."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from core.settings import Settings
from tests.conftest import TEST_DATABASE_URL, with_overrides
from tests.reliability.harness import SECRET_KEY

ON_POSTGRES = bool(TEST_DATABASE_URL and urlparse(TEST_DATABASE_URL).scheme.startswith("postgres"))


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="reliability tests need CRM_TEST_DATABASE_URL (PostgreSQL)")
    for item in items:
        if "tests/reliability/" in str(item.fspath) and not ON_POSTGRES:
            item.add_marker(skip)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Tokens made here must be accepted by the crm processes, which get this key.
    return with_overrides(settings, secret_key=SECRET_KEY)
