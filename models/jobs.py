from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(Model):
    id = fields.IntField(primary_key=True)
    # A kind registered by its domain (services.jobs.register_kind); stored as its name.
    kind = fields.CharField(max_length=32)
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.QUEUED, db_index=True)
    params = fields.JSONField(default=dict)
    total = fields.IntField(null=True)
    processed = fields.IntField(default=0)
    failed = fields.IntField(default=0)
    result = fields.JSONField(null=True)
    # [{"row": int | None, "field": str | None, "message": str}], capped; `failed` counts them all.
    errors = fields.JSONField(default=list)
    attempts = fields.IntField(default=0)
    # Input items already committed; a re-delivered job resumes after it (0: start from scratch).
    checkpoint = fields.IntField(default=0)
    # While a delivery runs the job: the worker running it ("host:pid"; unset when the delivery ends) and its
    # heartbeat, refreshed every CRM_JOB_HEARTBEAT_SECONDS; a RUNNING job whose heartbeat is older than
    # CRM_JOB_HEARTBEAT_TIMEOUT_SECONDS lost its worker and is delivered again (services.jobs.lost). A job that
    # went out as batches has neither (its batches have their own).
    worker = fields.CharField(max_length=128, null=True)
    heartbeat_at = fields.DatetimeField(null=True)
    # Deliveries whose worker stopped before they ended (SIGKILL, out of memory, a host lost): at
    # CRM_JOB_MAX_WORKER_STOPS the job is FAILED instead of being delivered again (a poison message).
    worker_stops = fields.IntField(default=0)
    created_by = fields.ForeignKeyField("models.Staff", related_name="jobs", null=True, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job"


class UploadChunk(Model):
    # An uploaded file kept in the database in order, so that a worker on any host can stream it.
    id = fields.BigIntField(primary_key=True)
    job = fields.ForeignKeyField("models.Job", related_name="upload_chunks", on_delete=fields.CASCADE)
    seq = fields.IntField()
    data = fields.BinaryField()

    class Meta:
        table = "upload_chunk"
        unique_together = (("job", "seq"),)


class JobBatch(Model):
    # One slice of a job that several workers share (e.g. a full portrait recompute): the job's progress counts
    # the batches whose `done_at` is set, and a re-delivered batch that is not done is simply run again.
    id = fields.BigIntField(primary_key=True)
    job = fields.ForeignKeyField("models.Job", related_name="batches", on_delete=fields.CASCADE)
    seq = fields.IntField()
    params = fields.JSONField(default=dict)
    done_at = fields.DatetimeField(null=True)
    # As on Job: each delivery that took the batch counts; the worker running it and its heartbeat; the
    # deliveries whose worker stopped before they ended (at CRM_JOB_MAX_WORKER_STOPS the job is FAILED).
    deliveries = fields.IntField(default=0)
    worker = fields.CharField(max_length=128, null=True)
    heartbeat_at = fields.DatetimeField(null=True)
    worker_stops = fields.IntField(default=0)

    class Meta:
        table = "job_batch"
        unique_together = (("job", "seq"),)
