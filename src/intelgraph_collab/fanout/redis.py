"""The Redis fan-out (redis-py asyncio): one pub/sub channel per graph.

Each message is this node's id (32 hex characters), a kind byte and a body:
`R` records (one commit, a JSON array encoded once), `P` presence (a JSON
PresenceEntry), `L` presence leave (the client id); on the nodes channel,
`H` heartbeat and `G` node gone (a graceful close).

Presence crosses nodes with expiry: each node keeps its clients' entries in
a hash per graph (field `node_id:client_id`) and its own key `node:<id>`
alive with a TTL, refreshed with a heartbeat every third of it. A node not
heard from for `presence_ttl` is dead: receivers drop its clients (a
`presence_leave` to their sessions), readers of the hash skip its fields.

The receiving link is a pub/sub connection with redis-py's own retries
off, so a broken link surfaces here: the listener reconnects with backoff,
resubscribes, tells every subscriber to back-fill from the store
(`on_resync`: messages may be lost), re-announces this node's presence (the
broker may have restarted empty) and re-reads the other nodes'.
Publishing goes through one FIFO drained by one task, so per-graph order
holds, and `publish` never waits for Redis; what cannot be sent is retried
(receivers drop what they already have, by seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..sync.records import OpRecord
from .base import FanOut, PresenceEntry, Subscriber

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
_records_decoder = msgspec.json.Decoder(list[OpRecord])
_entry_decoder = msgspec.json.Decoder(PresenceEntry)
_NODE_ID_LENGTH = 32
_LINK_ERRORS = (RedisError, OSError)

Command = Callable[[Any], object]
"""Adds commands to a redis-py pipeline."""


def split_prefix(url: str, default: str) -> tuple[str, str]:
    """`redis://host/0?prefix=p:` -> (`redis://host/0`, `p:`): keys and channels
    of several deployments (or test runs) can share one Redis."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((value for key, value in query if key == "prefix"), default)
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Consume a finished background task's outcome (it is logged nowhere else)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("redis fan-out: %s ended with %r", task.get_name(), task.exception())


class RedisFanOut(FanOut):
    def __init__(
        self,
        url: str,
        *,
        presence_ttl: float = 15.0,
        prefix: str = "intelgraph-collab:",
        max_backlog: int = 10_000,
    ) -> None:
        self.url, self.prefix = split_prefix(url, prefix)
        self.node_id = uuid.uuid4().hex
        self.presence_ttl = presence_ttl
        self.max_backlog = max_backlog
        self._node = self.node_id.encode()
        self._ttl_ms = max(1, int(presence_ttl * 1000))
        self._nodes_channel = f"{self.prefix}nodes"
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._mine: dict[str, dict[str, PresenceEntry]] = {}
        """This node's clients' presence, per graph."""
        self._remote: dict[str, dict[str, tuple[str, PresenceEntry]]] = {}
        """graph_id -> client_id -> (node_id, entry) of other nodes' clients."""
        self._heard: dict[str, float] = {}
        """node_id -> when it was last heard from (monotonic)."""
        self._outbox: deque[Command] = deque()
        self._outbox_ready = asyncio.Event()
        self._sent = asyncio.Event()
        self._pubsub: PubSub | None = None
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._linked = asyncio.Event()
        self._relinked = False
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._redis: aioredis.Redis | None = None

    # -- names ------------------------------------------------------------

    def _channel(self, graph_id: str) -> str:
        return f"{self.prefix}graph:{graph_id}"

    def _presence_key(self, graph_id: str) -> str:
        return f"{self.prefix}presence:{graph_id}"

    def _node_key(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    @property
    def _r(self) -> aioredis.Redis:
        assert self._redis is not None, "fan-out not open"
        return self._redis

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        self._redis = aioredis.Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=3.0,
            socket_timeout=5.0,
            health_check_interval=5,
            client_name=f"collab-{self.node_id}",
        )
        await self._r.ping()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name="redis-fanout-listen"),
            loop.create_task(self._publish_loop(), name="redis-fanout-publish"),
            loop.create_task(self._heartbeat_loop(), name="redis-fanout-heartbeat"),
        ]
        self._beat()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._linked.wait(), 5.0)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for graph_id, entries in list(self._mine.items()):
            for client_id in list(entries):
                self.clear_presence(graph_id, client_id)
        node_key, channel = self._node_key(self.node_id), self._nodes_channel
        gone = self._node + b"G"
        self._queue(lambda pipe: (pipe.delete(node_key), pipe.publish(channel, gone)))
        # Every step is bounded: a close must never hang on a broken link
        # (nor on a redis-py call that does not give way to cancellation).
        deadline = asyncio.get_running_loop().time() + 2.0
        while self._outbox and (left := deadline - asyncio.get_running_loop().time()) > 0:
            self._sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sent.wait(), left)
        tasks: list[asyncio.Task[Any]] = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
            task.add_done_callback(_retrieve)
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        if self._redis is not None:
            closing = asyncio.get_running_loop().create_task(self._redis.aclose())
            closing.add_done_callback(_retrieve)
            await asyncio.wait([closing], timeout=2.0)

    # -- publishing -------------------------------------------------------

    def publish(self, graph_id: str, records: Sequence[OpRecord]) -> None:
        channel, payload = self._channel(graph_id), self._node + b"R" + _encoder.encode(records)
        self._queue(lambda pipe: pipe.publish(channel, payload))

    def set_presence(self, graph_id: str, entry: PresenceEntry) -> None:
        self._mine.setdefault(graph_id, {})[entry.client_id] = entry
        self._queue(self._announce(graph_id, entry))

    def _announce(self, graph_id: str, entry: PresenceEntry) -> Command:
        key, ttl = self._presence_key(graph_id), self._ttl_ms
        field = f"{self.node_id}:{entry.client_id}"
        body = _encoder.encode(entry)
        channel, payload = self._channel(graph_id), self._node + b"P" + body

        def command(pipe: Any) -> None:
            pipe.hset(key, field, body)
            pipe.pexpire(key, ttl * 4)
            pipe.publish(channel, payload)

        return command

    def clear_presence(self, graph_id: str, client_id: str) -> None:
        entries = self._mine.get(graph_id, {})
        if entries.pop(client_id, None) is None:
            return
        if not entries:
            self._mine.pop(graph_id, None)
        key, field = self._presence_key(graph_id), f"{self.node_id}:{client_id}"
        channel, payload = self._channel(graph_id), self._node + b"L" + client_id.encode()
        self._queue(lambda pipe: (pipe.hdel(key, field), pipe.publish(channel, payload)))

    def _queue(self, command: Command) -> None:
        self._outbox.append(command)
        self._outbox_ready.set()

    async def _send(self, commands: list[Command]) -> None:
        if not commands:
            return
        async with self._r.pipeline(transaction=False) as pipe:
            for command in commands:
                command(pipe)
            await pipe.execute()

    async def _publish_loop(self) -> None:
        backoff = 0.05
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                batch = [self._outbox[i] for i in range(min(len(self._outbox), 256))]
                try:
                    await self._send(batch)
                except _LINK_ERRORS as exc:
                    level = logging.WARNING if backoff == 0.05 else logging.DEBUG  # once per outage
                    log.log(level, "redis fan-out: publish failed (%r); retrying", exc)
                    while len(self._outbox) > self.max_backlog:  # oldest first: receivers back-fill
                        self._outbox.popleft()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                for _ in batch:  # only this task removes: the batch is still at the front
                    self._outbox.popleft()
                self._sent.set()

    # -- presence upkeep --------------------------------------------------

    def _beat(self) -> None:
        node_key, ttl, channel = self._node_key(self.node_id), self._ttl_ms, self._nodes_channel
        beat = self._node + b"H"
        keys = [self._presence_key(graph_id) for graph_id in self._mine]

        def command(pipe: Any) -> None:
            pipe.set(node_key, b"1", px=ttl)
            pipe.publish(channel, beat)
            for key in keys:
                pipe.pexpire(key, ttl * 4)

        self._queue(command)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.presence_ttl / 3)
            self._beat()
            now = time.monotonic()
            for node_id, heard in list(self._heard.items()):
                if now - heard > self.presence_ttl:
                    self._node_gone(node_id)

    def _node_gone(self, node_id: str) -> None:
        self._heard.pop(node_id, None)
        for graph_id, clients in self._remote.items():
            for client_id, (owner, _) in list(clients.items()):
                if owner == node_id:
                    del clients[client_id]
                    for subscriber in list(self._subscribers.get(graph_id, ())):
                        subscriber.on_presence_leave(client_id)

    async def presence(self, graph_id: str) -> list[PresenceEntry]:
        try:
            return await self._read_presence(graph_id)
        except _LINK_ERRORS as exc:
            log.warning("redis fan-out: presence of %s unreadable (%r)", graph_id, exc)
            return []

    async def _read_presence(self, graph_id: str) -> list[PresenceEntry]:
        key = self._presence_key(graph_id)
        raw = cast(dict[bytes, bytes], await self._r.hgetall(key))
        owners = {field: field.decode().partition(":") for field in raw}
        nodes = sorted({node for node, _, _ in owners.values() if node != self.node_id})
        alive: dict[str, bytes | None] = {}
        if nodes:
            found_keys = await self._r.mget([self._node_key(node) for node in nodes])
            alive = dict(zip(nodes, cast(list[bytes | None], found_keys), strict=True))
        dead = [field for field, (node, _, _) in owners.items() if alive.get(node, b"") is None]
        if dead:
            await self._r.hdel(key, *dead)
        now = time.monotonic()
        found: list[PresenceEntry] = []
        clients = self._remote.setdefault(graph_id, {})
        for field, body in raw.items():
            node, _, client_id = owners[field]
            if node == self.node_id or alive.get(node) is None:
                continue
            try:
                entry = _entry_decoder.decode(body)
            except msgspec.DecodeError:
                continue
            self._heard.setdefault(node, now)
            clients[client_id] = (node, entry)
            found.append(entry)
        return found

    async def _after_relink(self) -> None:
        """The broker may have restarted empty, and presence changed meanwhile."""
        self._beat()
        for graph_id, entries in list(self._mine.items()):
            for entry in list(entries.values()):
                self._queue(self._announce(graph_id, entry))
        for graph_id in list(self._subscribers):
            known = self._remote.get(graph_id, {})
            before = {client_id: entry for client_id, (_, entry) in known.items()}
            try:
                found = await self._read_presence(graph_id)
            except _LINK_ERRORS:
                return  # the listener relinks again and calls us again
            for entry in found:
                if before.get(entry.client_id) != entry:
                    for subscriber in list(self._subscribers.get(graph_id, ())):
                        subscriber.on_presence(entry)

    # -- receiving --------------------------------------------------------

    async def subscribe(self, graph_id: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.setdefault(graph_id, [])
        subscribers.append(subscriber)
        pubsub = self._pubsub
        if len(subscribers) > 1 or pubsub is None:
            return  # already subscribed, or the link is down: relinking subscribes and resyncs
        channel = self._channel(graph_id)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm[channel] = waiter
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(waiter), 5.0)
        except (*_LINK_ERRORS, TimeoutError) as exc:  # the listener relinks and resyncs
            log.warning("redis fan-out: subscribe to %s unconfirmed (%r)", graph_id, exc)
        finally:
            self._confirm.pop(channel, None)

    async def unsubscribe(self, graph_id: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(graph_id, [])
        if subscriber in subscribers:
            subscribers.remove(subscriber)
        if subscribers:
            return
        self._subscribers.pop(graph_id, None)
        self._remote.pop(graph_id, None)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(*_LINK_ERRORS):
                await pubsub.unsubscribe(self._channel(graph_id))

    async def _listen(self) -> None:
        backoff = 0.05
        while not self._closing:
            pubsub = self._r.pubsub()
            try:
                self._pubsub = pubsub
                channels = [self._nodes_channel, *(self._channel(g) for g in self._subscribers)]
                await pubsub.subscribe(*channels)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        backoff = 0.05
                        try:
                            self._dispatch(message)
                        except Exception:  # a subscriber's bug must not end the link
                            log.exception("redis fan-out: dispatching a message failed")
            except _LINK_ERRORS as exc:
                if self._closing:
                    return
                level = logging.DEBUG if self._relinked else logging.WARNING  # once per outage
                log.log(level, "redis fan-out: link down (%r); reconnecting", exc)
                self._relinked = True
            finally:
                self._pubsub = None
                with contextlib.suppress(*_LINK_ERRORS, RuntimeError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if not isinstance(message.get("channel"), bytes):
            return  # a health-check pong
        channel = message["channel"].decode()
        if message["type"] == "subscribe":
            self._confirmed(channel)
            return
        if message["type"] != "message":
            return
        data: bytes = message["data"]
        node_id = data[:_NODE_ID_LENGTH].decode(errors="replace")
        if node_id == self.node_id:
            return
        self._heard[node_id] = time.monotonic()
        kind, body = data[_NODE_ID_LENGTH : _NODE_ID_LENGTH + 1], data[_NODE_ID_LENGTH + 1 :]
        if channel == self._nodes_channel:
            if kind == b"G":
                self._node_gone(node_id)
            return
        graph_id = channel.removeprefix(f"{self.prefix}graph:")
        subscribers = list(self._subscribers.get(graph_id, ()))
        if not subscribers:
            return
        try:
            if kind == b"R":
                records = _records_decoder.decode(body)
                for subscriber in subscribers:
                    subscriber.on_records(records)
            elif kind == b"P":
                entry = _entry_decoder.decode(body)
                self._remote.setdefault(graph_id, {})[entry.client_id] = (node_id, entry)
                for subscriber in subscribers:
                    subscriber.on_presence(entry)
            elif kind == b"L":
                client_id = body.decode()
                clients = self._remote.get(graph_id, {})
                if clients.get(client_id, ("",))[0] == node_id:
                    del clients[client_id]
                    for subscriber in subscribers:
                        subscriber.on_presence_leave(client_id)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            log.warning("redis fan-out: undecodable message on %s: %r", channel, exc)

    def _confirmed(self, channel: str) -> None:
        waiter = self._confirm.get(channel)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif channel == self._nodes_channel:
            self._linked.set()
            if self._relinked:
                self._relinked = False
                log.warning("redis fan-out: link back; back-filling from the store")
                task = asyncio.get_running_loop().create_task(self._after_relink())
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        else:  # resubscribed after a relink (or late): what was published meanwhile is lost
            graph_id = channel.removeprefix(f"{self.prefix}graph:")
            for subscriber in list(self._subscribers.get(graph_id, ())):
                subscriber.on_resync()
