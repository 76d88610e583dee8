from __future__ import annotations

from strawberry.types import Info

from services.access import Caller


async def caller_of(info: Info) -> Caller:
    return await info.context.caller()
