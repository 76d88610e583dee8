"""Customer portraits. For now: the hook that every change behind a portrait calls."""

from __future__ import annotations

from collections.abc import Iterable

from models.customers import Customer
from services import clock


async def mark_stale(customer_ids: Iterable[int]) -> None:
    """Data behind these customers' portraits changed: they need a recompute (the first moment is kept)."""
    ids = list(set(customer_ids))
    if ids:
        await Customer.filter(id__in=ids, portrait_stale_since__isnull=True).update(portrait_stale_since=clock.now())
