"""The task queue: Dramatiq's Redis broker with separate worker processes, or, with no Redis
configured, an in-process broker whose worker threads run actors on the API's own event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread, set_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from core import db, domains, heap
from core.pubsub import InProcessPubSub, RedisPubSub, make_pubsub
from core.settings import Settings, use as use_settings
from services import dispatch
from services.jobs import BrokerSettings

log = logging.getLogger(__name__)

_definitions: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}
# When the scheduler sends each periodic actor: a trigger made from the settings.
Schedule = Callable[[Settings], BaseTrigger]
_schedules: dict[str, Schedule] = {}


def actor(
    *, queue_name: str = "default", schedule: Schedule | None = None, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an actor in its domain's tasks module; it is bound to a broker when a TaskQueue is built.
    With `schedule`, the scheduler sends it periodically (see `every` and `daily`)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if fn.__name__ in _definitions:
            raise ValueError(f"an actor named {fn.__name__} is declared already")
        _definitions[fn.__name__] = (fn, {"queue_name": queue_name, **options})
        if schedule is not None:
            _schedules[fn.__name__] = schedule
        return fn

    return register


def every(*, minutes: int | Callable[[Settings], int] = 0, seconds: int | Callable[[Settings], int] = 0) -> Schedule:
    """Every N minutes (or seconds); N may be read from the settings."""

    def value(n: int | Callable[[Settings], int], settings: Settings) -> int:
        return n(settings) if callable(n) else n

    return lambda settings: IntervalTrigger(minutes=value(minutes, settings), seconds=value(seconds, settings))


def daily(*, hour: int, minute: int) -> Schedule:
    """Once a day at hour:minute UTC."""
    return lambda settings: CronTrigger(hour=hour, minute=minute)


def declare_all() -> None:
    """Import every domain's tasks module, which declares its actors, schedules and job kinds."""
    domains.modules("tasks")


def schedules(settings: Settings) -> list[tuple[str, BaseTrigger]]:
    """(actor name, trigger) of every periodic actor."""
    declare_all()
    return [(name, make(settings)) for name, make in _schedules.items()]


@dataclass
class Runtime:
    """What actors need besides the database, set up on the loop they run on."""

    pubsub: InProcessPubSub | RedisPubSub
    queue: TaskQueue


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the task runtime is not set up: run actors through a TaskQueue worker")
    return _runtime


class BorrowedLoop(EventLoopThread):
    """Dramatiq's event-loop thread, standing for an event loop that already runs (the API's)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:  # no thread of its own
        self.loop = loop
        self.interrupt_check_ival = 0.1
        self.logger = log

    def start(self, *, timeout: float | None = None) -> None:
        return None

    def stop(self) -> None:
        return None


class SharedLoop(AsyncIO):
    """Embedded mode: async actors run on the API's loop, sharing its database pool and pub/sub."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop

    def before_worker_boot(self, broker, worker) -> None:
        set_event_loop_thread(BorrowedLoop(self._loop))

    def after_worker_shutdown(self, broker, worker) -> None:
        set_event_loop_thread(None)


class WorkerLoop(AsyncIO):
    """Worker processes: Tortoise and pub/sub are set up on the worker's own event loop."""

    def __init__(self, settings: Settings, queue: TaskQueue) -> None:
        super().__init__()
        self._settings = settings
        self._queue = queue

    def before_worker_boot(self, broker, worker) -> None:
        super().before_worker_boot(broker, worker)
        get_event_loop_thread().run_coroutine(self._start())

    def after_worker_shutdown(self, broker, worker) -> None:
        get_event_loop_thread().run_coroutine(self._stop())
        super().after_worker_shutdown(broker, worker)

    async def _start(self) -> None:
        global _runtime
        use_settings(self._settings)
        await db.init_orm(self._settings.database_url)
        await db.ensure_migrated()
        _runtime = Runtime(make_pubsub(self._settings.redis_url), self._queue)
        heap.settle()

    async def _stop(self) -> None:
        global _runtime
        if _runtime is not None:
            await _runtime.pubsub.close()
            _runtime = None
        await db.close_orm()


def redis_broker(settings: Settings) -> RedisBroker:
    """Dramatiq's Redis broker, giving a dead worker's messages back as services.jobs.BrokerSettings say."""
    tuning = settings.of(BrokerSettings)
    return RedisBroker(
        url=settings.redis_url,
        heartbeat_timeout=tuning.broker_heartbeat_timeout_ms,
        maintenance_chance=tuning.broker_maintenance_chance,
        dead_message_ttl=tuning.broker_dead_message_ttl_ms,
        # A send runs on the API's event loop: a Redis that hangs instead of refusing must not hold every request.
        # (Workers poll with short commands, so a 5 s reply bound does not cut their fetches short.)
        socket_connect_timeout=2,
        socket_timeout=5,
    )


class TaskQueue:
    """A broker with every declared actor bound to it."""

    def __init__(self, settings: Settings) -> None:
        declare_all()
        self.settings = settings
        self.broker = StubBroker() if settings.embedded_broker else redis_broker(settings)
        self.actors: dict[str, dramatiq.Actor] = {}
        for name, (fn, options) in _definitions.items():
            extra = {k: v for k, v in options.items() if k != "queue_name"}
            self.actors[name] = dramatiq.Actor(
                fn, broker=self.broker, actor_name=name, queue_name=options["queue_name"], priority=0, options=extra
            )
        # Services send their work through services.dispatch, which knows only this method.
        dispatch.bind(self.send)

    def send(self, actor_name: str, *args: Any) -> None:
        self.actors[actor_name].send(*args)

    def embedded_worker(
        self, loop: asyncio.AbstractEventLoop, pubsub: InProcessPubSub | RedisPubSub
    ) -> dramatiq.Worker:
        """Worker threads inside the API process (not started yet)."""
        global _runtime
        self.broker.add_middleware(SharedLoop(loop))
        _runtime = Runtime(pubsub, self)
        return dramatiq.Worker(
            self.broker, worker_threads=self.settings.worker_threads, worker_timeout=self.settings.worker_poll_ms
        )

    def process_worker(self, threads: int) -> dramatiq.Worker:
        """The `crm worker` process's worker (not started yet)."""
        self.broker.add_middleware(WorkerLoop(self.settings, self))
        return dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=1000)

    def close(self) -> None:
        global _runtime
        _runtime = None
        dispatch.bind(None)
        self.broker.close()
