from datetime import timedelta

from apscheduler.triggers.interval import IntervalTrigger

from core.settings import Settings
from models.jobs import Job
from models.staff import StaffToken
from services import auth, clock
from tasks import jobs as job_tasks, staff as staff_tasks
from tasks.broker import TaskQueue, schedules
from tasks.scheduler import build_scheduler


def test_the_schedule_sends_known_actors(settings):
    queue = TaskQueue(settings)
    try:
        scheduler = build_scheduler(queue)
        planned = schedules(settings)
        assert {job.id for job in scheduler.get_jobs()} == {name for name, _ in planned}
        assert {name for name, _ in planned} == {
            "requeue_stale_jobs", "monitor_complaint_sla", "purge_expired_tokens", "requeue_lost_notifications",
            "requeue_stalled_batches", "sweep_stale_portraits", "recompute_all_portraits", "requeue_lost_jobs",
        }  # fmt: skip
        assert all(name in queue.actors for name, _ in planned)
        stale = dict(planned)["requeue_stale_jobs"]
        assert isinstance(stale, IntervalTrigger) and stale.interval == timedelta(minutes=1)
        every_seven = Settings.from_env({"CRM_SLA_MONITOR_MINUTES": "7"})
        sla = dict(schedules(every_seven))["monitor_complaint_sla"]
        assert sla.interval == timedelta(minutes=7)
        # The portrait sweep runs in seconds, a fraction of the debounce window (CRM_PORTRAIT_DEBOUNCE_SECONDS).
        assert dict(planned)["sweep_stale_portraits"].interval == timedelta(seconds=2)
        window = Settings.from_env({"CRM_PORTRAIT_DEBOUNCE_SECONDS": "20"})
        assert dict(schedules(window))["sweep_stale_portraits"].interval == timedelta(seconds=10)
    finally:
        queue.close()


async def test_requeue_sends_lost_jobs_again(app, admin):
    member, _ = admin
    lost = await Job.create(kind="AUDIT_EXPORT", created_by=member)
    await Job.filter(id=lost.id).update(created_at=clock.now() - timedelta(minutes=10))
    sent = []
    runtime = app.runtime
    original = runtime.queue.send
    runtime.queue.send = lambda name, *args: sent.append((name, *args))
    try:
        await job_tasks.requeue_stale_jobs()
    finally:
        runtime.queue.send = original
    assert sent == [("run_job", lost.id)]


async def test_expired_tokens_are_purged(admin, settings):
    member, token = admin
    await StaffToken.create(staff=member, token_hash="x" * 64, expires_at=clock.now() - timedelta(days=31))
    await staff_tasks.purge_expired_tokens()
    assert await StaffToken.filter(staff_id=member.id).count() == 1
    assert await auth.authenticate(token, secret_key=settings.secret_key) is not None
