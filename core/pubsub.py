"""Publish/subscribe for live updates (job progress, complaint changes).

In-process when no Redis is configured (the embedded worker runs on the API's own event loop);
Redis pub/sub otherwise, so that a worker on another host reaches every API process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

QUEUE_SIZE = 256
CONNECT_TIMEOUT = 2.0  # seconds to open a connection to Redis: a host that accepts nothing fails this fast
log = logging.getLogger(__name__)


def broker_unreachable(error: BaseException | None) -> bool:
    """Whether an error means Redis (the broker, pub/sub) is out of reach: Redis's connection errors and timeouts,
    Dramatiq's broker connection errors (raised from them), a socket error; itself or what it was raised from."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, RedisConnectionError | RedisTimeoutError | ConnectionError | TimeoutError):
            return True
        # dramatiq.errors.BrokerConnectionError, by name: core and services import no Dramatiq.
        if any(c.__name__ == "BrokerConnectionError" for c in type(error).__mro__):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


class InProcessPubSub:
    def __init__(self) -> None:
        self._queues: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = defaultdict(set)

    async def publish(self, channel: str, message: dict) -> None:
        for loop, queue in list(self._queues.get(channel, ())):
            # Thread-safe, in case a publisher runs on another loop; a full queue drops the oldest hint.
            loop.call_soon_threadsafe(_offer, queue, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict]]:
        entry = (asyncio.get_running_loop(), asyncio.Queue(QUEUE_SIZE))
        self._queues[channel].add(entry)
        try:
            yield _drain(entry[1])
        finally:
            self._queues[channel].discard(entry)
            if not self._queues[channel]:
                del self._queues[channel]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._queues.clear()


def _offer(queue: asyncio.Queue, message: dict) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


async def _drain(queue: asyncio.Queue) -> AsyncIterator[dict]:
    while True:
        yield await queue.get()


class RedisPubSub:
    """Live updates are hints (a client reads the row again): a publication Redis cannot take is dropped with one
    WARNING line, never an error of the mutation or job that made it."""

    def __init__(self, url: str, prefix: str = "crm:") -> None:
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
        self._prefix = prefix

    async def publish(self, channel: str, message: dict) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT * 2):
                await self._redis.publish(self._prefix + channel, json.dumps(message))
        except Exception as error:
            if not broker_unreachable(error):
                raise
            log.warning("live update to %s dropped: Redis unreachable (%s)", channel, type(error).__name__)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._prefix + channel)
        try:
            yield self._messages(pubsub)
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    @staticmethod
    async def _messages(pubsub) -> AsyncIterator[dict]:
        async for item in pubsub.listen():
            if item.get("type") == "message":
                yield json.loads(item["data"])

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def make_pubsub(redis_url: str | None) -> InProcessPubSub | RedisPubSub:
    return InProcessPubSub() if redis_url is None else RedisPubSub(redis_url)
