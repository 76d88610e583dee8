from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from models.jobs import JobStatus
from resolvers.common import caller_of
from schema.base import Connection, api_error, int_pk, unauthenticated
from schema.jobs import Job, JobKind
from schema.permissions import allow, live_caller
from services import access, jobs as job_service
from services.pagination import OrderKey, paginate

NEWEST_FIRST = [OrderKey("id", descending=True)]


async def job(info: Info, id: strawberry.ID) -> Job | None:
    pk = int_pk(id, "Job")
    found = await job_service.visible(await caller_of(info)).get_or_none(id=pk) if pk else None
    return Job.from_model(found) if found else None


async def jobs(
    info: Info,
    kind: JobKind | None = None,
    status: list[JobStatus] | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Job]:
    qs = job_service.visible(await caller_of(info))
    if kind is not None:
        qs = qs.filter(kind=kind.value)
    if status:
        qs = qs.filter(status__in=status)
    page = await paginate(qs, NEWEST_FIRST, first=first, after=after, last=last, before=before)
    return Connection.of(page, Job.from_model)


async def job_progress(info: Info, id: strawberry.ID) -> AsyncGenerator[Job, None]:
    caller = await info.context.recheck()  # the connection may be older than the token's revocation
    if caller.staff is None:
        raise unauthenticated()
    pk = int_pk(id, "Job")
    if pk is None or not await job_service.visible(caller).filter(id=pk).exists():
        # Subscription errors skip the operation-level error hook: the code goes on here.
        raise api_error("NOT_FOUND", "Job not found")
    # Subscribe before reading, so that no update between the read and the subscription is missed.
    async with info.context.pubsub.subscribe(job_service.channel(pk)) as updates:
        current = await job_service.get(caller, pk)
        try:
            yield Job.from_model(current)
        finally:
            await info.context.flush_pii_reads()
        if current.status.finished:
            return
        async for _ in updates:
            # The state first, as near the news as can be; then the token and role of now (a revoked token
            # closes the socket), and the read again if who may see which jobs changed. A job no longer visible
            # ends the subscription.
            current = await job_service.visible(caller).get_or_none(id=pk)
            fresh = await live_caller(info)
            if (fresh.staff.id, fresh.role) != (caller.staff.id, caller.role):
                current = await job_service.visible(fresh).get_or_none(id=pk)
            caller = fresh
            if current is None:
                raise api_error("NOT_FOUND", "Job not found")
            info.context.fresh_loaders()
            try:
                yield Job.from_model(current)
            finally:
                await info.context.flush_pii_reads()
            if current.status.finished:
                return


@strawberry.type
class Query:
    job: Job | None = strawberry.field(resolver=job, extensions=allow(access.ALL_ROLES))
    jobs: Connection[Job] = strawberry.field(resolver=jobs, extensions=allow(access.ALL_ROLES))


@strawberry.type
class Subscription:
    job_progress: Job = strawberry.subscription(
        resolver=job_progress, description="Progress of one job until it finishes."
    )
