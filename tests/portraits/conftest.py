"""Fixtures of the portrait tests: the clock, pinned at NOW for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services import clock
from tests.portraits.helpers import NOW


@pytest.fixture(autouse=True)
def _pinned_clock() -> Iterator[None]:
    clock.reset()
    with clock.freeze(NOW):
        yield
    clock.reset()
