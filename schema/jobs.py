from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from core import domains
from models.jobs import Job as JobModel, JobStatus as JobStatusEnum
from schema.base import Node, UserError, registered_enum, to_global_id
from schema.staff import Staff, load_staff
from services import jobs as job_service
from services.access import Caller

# Kinds of the API contract whose domains have not landed yet; each goes when its domain registers it.
CONTRACT_KINDS_NOT_BUILT: tuple[str, ...] = ()


domains.modules("tasks")  # every domain's job kinds
JobKind = registered_enum("JobKind", job_service.kinds(), CONTRACT_KINDS_NOT_BUILT)
JobStatus = strawberry.enum(JobStatusEnum, name="JobStatus")


@strawberry.type
class JobError:
    row: int | None = strawberry.field(description="1-based input row or item, where the error concerns one.")
    field: str | None
    message: str


@strawberry.type(description="Long work run by a worker: an import, a recompute, a campaign, a report or an export.")
class Job(Node):
    id: strawberry.ID
    kind: JobKind
    status: JobStatus
    progress: float = strawberry.field(description="0 to 1.")
    total: int | None
    processed: int
    failed: int
    stored_result: strawberry.Private[dict | None]
    errors: list[JobError]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    created_by_id: strawberry.Private[int | None]
    model: strawberry.Private[JobModel]

    @strawberry.field(
        description="What the job produced; a file (csv) only while its creator may still start such jobs."
    )
    async def result(self, info: Info) -> JSON | None:
        if not self.stored_result or "csv" not in self.stored_result:
            return self.stored_result
        creator = await info.context.loaders.staff.load(self.created_by_id) if self.created_by_id else None
        if job_service.file_allowed_to(self.model, creator):
            return self.stored_result
        return {k: v for k, v in self.stored_result.items() if k != "csv"}

    @strawberry.field
    async def created_by(self, info: Info) -> Staff | None:
        return await load_staff(info, self.created_by_id)

    @classmethod
    async def resolve_nodes(cls, caller: Caller, pks: list[int]) -> dict[int, Job]:
        return await cls.nodes_in(job_service.visible(caller), pks)

    @classmethod
    def from_model(cls, m: JobModel) -> Job:
        return cls(
            id=to_global_id("Job", m.id),
            kind=JobKind(m.kind),
            status=m.status,
            progress=job_service.progress_of(m),
            total=m.total,
            processed=m.processed,
            failed=m.failed,
            stored_result=m.result,
            model=m,
            errors=[JobError(row=e.get("row"), field=e.get("field"), message=e["message"]) for e in m.errors],
            created_at=m.created_at,
            started_at=m.started_at,
            finished_at=m.finished_at,
            created_by_id=m.created_by_id,
        )


@strawberry.type
class JobPayload:
    job: Job | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
