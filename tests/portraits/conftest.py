"""Fixtures of the portrait tests: the clock, pinned at NOW for every test; the computations made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services import clock, portraits
from tests.portraits.helpers import NOW


@pytest.fixture(autouse=True)
def _pinned_clock() -> Iterator[None]:
    clock.reset()
    with clock.freeze(NOW):
        yield
    clock.reset()


@pytest.fixture
def computed(monkeypatch) -> list[list[int]]:
    """The id lists handed to portraits.compute, which still computes."""
    calls: list[list[int]] = []
    original = portraits.compute

    async def counting(customer_ids):
        calls.append(sorted(customer_ids))
        return await original(customer_ids)

    monkeypatch.setattr(portraits, "compute", counting)
    return calls
