"""Periodic work: the scheduler only sends messages; workers do the work. Run exactly one."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tasks.broker import TaskQueue


def schedule(sla_monitor_minutes: int = 5) -> list[tuple[str, object]]:
    return [
        ("requeue_stale_jobs", IntervalTrigger(minutes=1)),
        ("monitor_complaint_sla", IntervalTrigger(minutes=sla_monitor_minutes)),
        ("purge_expired_tokens", CronTrigger(hour=3, minute=17)),
    ]


def build_scheduler(queue: TaskQueue) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    for actor_name, trigger in schedule(queue.settings.sla_monitor_minutes):
        scheduler.add_job(queue.send, trigger, args=[actor_name], id=actor_name, coalesce=True, max_instances=1)
    return scheduler
