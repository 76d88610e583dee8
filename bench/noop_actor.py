"""The floor of bench/survey_campaign.py: Dramatiq actors that do nothing, on the same Redis broker.

    CRM_BENCH_REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/dramatiq bench.noop_actor --processes 1 --threads 8

The broker is built like the app's (tasks/broker.TaskQueue: a RedisBroker with Dramatiq's default middleware,
plus AsyncIO for async actors). `noop` is a plain function; `noop_async` is a coroutine run on the worker's
event-loop thread, as every actor of the app is (the app's WorkerLoop is Dramatiq's AsyncIO middleware).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

QUEUE = "bench_noop"

broker = RedisBroker(url=os.environ["CRM_BENCH_REDIS_URL"])
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(n: int) -> None:
    return None


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
async def noop_async(n: int) -> None:
    return None
