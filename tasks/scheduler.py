"""Periodic work: the scheduler only sends messages; workers do the work. Run exactly one.

Each domain declares its periodic actors in its tasks module (`actor(schedule=...)`)."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tasks.broker import TaskQueue, schedules


def build_scheduler(queue: TaskQueue) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    for actor_name, trigger in schedules(queue.settings):
        scheduler.add_job(queue.send, trigger, args=[actor_name], id=actor_name, coalesce=True, max_instances=1)
    return scheduler
