"""One rate limiter for hokan: shared by every process, paced, and adaptive.

Every outbound API with a quota (LLM providers, gBizINFO) and every inbound API limit (per API
key, per client IP) is a ``Limiter`` on a **key** ("llm:perplexity", "gbizinfo:<token digest>",
"api:key:7", "estimate:ip:203.0.113.5"). Whoever uses the same key — threads, processes, Celery
workers on several machines — shares one state, kept in Redis when ``REDIS_URL`` is set and
else in the database (``RateLimitState``, one row per key). Never per process: two web workers
share one limit instead of doubling it.

What a key's state enforces, in this order, on every ``acquire``:

1. **Retry-After** (``blocked_until``): a 429 reported with Retry-After N seconds blocks the key
   for N seconds for every caller; no request is admitted inside the window. A caller that had
   a slot inside the window when the block came gives it up and queues again after it.
2. **Adaptive concurrency** (AIMD, ``Concurrency``): at most ``floor(limit)`` requests of the key
   in flight (leases, across processes). A 429 or a timeout multiplies the limit by
   ``decrease`` (0.5), at most once per round: a failure of a request admitted before the last
   cut does not cut again, as TCP cuts once per window. A success adds ``increase / limit``
   (+1 per round of successful requests). Always within ``minimum``..``maximum``; back at
   ``maximum`` after ``idle_reset_s`` without use. A lease not reported within ``lease_s``
   (its holder was killed) stops counting. Callers refused for concurrency **queue in order
   across processes** (a ticket each in the key's state, ``queue``): a freed slot goes to the
   oldest ticket, not to whichever thread of the releasing process wakes first — without it,
   a process with many threads kept every slot and a second process's job starved until the
   first had finished. A ticket not renewed within ``ticket_ttl_s`` (its holder died or gave
   up) stops counting.
3. **The rate** (``Rate(limit, period_s, burst)``), paced by GCRA (the generic cell rate
   algorithm, ITU-T I.371; a leaky bucket that stores one "theoretical arrival time"): one
   request per ``period_s / limit`` seconds (60/min → one a second), up to ``burst`` at once
   after a quiet spell. A caller is given the next free slot and sleeps until it — callers
   queue in order instead of polling. With ``burst > 1`` a log of the last ``limit``
   admissions also keeps the exact guarantee: **in any window of ``period_s`` seconds at most
   ``limit`` requests are admitted** (half-open windows; with ``burst == 1`` GCRA alone
   guarantees it). ``Rate.window(limit, period_s)`` (burst = limit) is a plain sliding window,
   right for API courtesy limits where a client may send its minute's quota at once.

Usage (an outbound call, each HTTP attempt)::

    limiter = Limiter("llm:perplexity", rate=Rate.per_minute(60), concurrency=Concurrency(maximum=16))
    with limiter.slot() as permit:      # waits for the block, a concurrency slot, a rate slot
        response = send()               # an exception is classified (429 / timeout / other)
    # or explicitly: permit = limiter.acquire(max_wait_s=30); ...; permit.report(Outcome.SUCCESS)

``acquire(max_wait_s=None)`` sleeps as long as needed; with ``max_wait_s`` it raises
``RateLimited(key, retry_after_s)`` instead of waiting longer (0 = answer at once: API limits).
``acquire_async`` / ``aslot`` are the same for asyncio. The LLM client wrapper is
``hokan.core.llm.limited.RateLimitedClient``; ``llm_rate_limiter(provider)`` builds the
provider's limiter from the settings.

Backends (``Store``): ``RedisStore`` (one JSON value per key, changed in a WATCH/MULTI
transaction; times from the Redis server's clock, so machines share one clock),
``DatabaseStore`` (one row per key, changed by a conditional ``UPDATE … WHERE version = v``:
atomic on SQLite and PostgreSQL at any isolation level; times from ``time.time()``, so
machines sharing a database need synchronised clocks; call it outside ``transaction.atomic``,
or other processes see the changes only at commit) and ``MemoryStore`` (this process only,
never chosen by ``store_from_settings``: for pure tests and explicit single-process use). All
three run the same rules (``admit`` / ``release`` below) on the same ``KeyState``.

Libraries considered: ``limits`` and ``pyrate-limiter`` keep sliding windows in Redis (and
pyrate-limiter in its own SQLite/PostgreSQL connections), but neither paces with an exact
window, shares a Retry-After block, or adapts concurrency, and neither uses Django's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hokan.core.errors import FetchTimeout, LLMOutputError, RateLimited

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], float]
Ttl = Callable[["KeyState", float], float]  # (state, now) → seconds the state must be kept


# --- what a limit is ------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period_s`` seconds, paced one per ``interval_s``, ``burst`` at once.

    Raises:
        ValueError: limit < 1, period_s <= 0, or burst outside 1..limit.
    """

    limit: int
    period_s: float = 60.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period_s <= 0 or not 1 <= self.burst <= self.limit:
            raise ValueError(f"invalid rate: {self.limit}/{self.period_s}s burst {self.burst}")

    @classmethod
    def per_minute(cls, limit: int, *, burst: int = 1) -> "Rate":
        return cls(limit, 60.0, burst)

    @classmethod
    def every(cls, interval_s: float) -> "Rate":
        """One request per ``interval_s`` seconds, no burst (gBizINFO's pace)."""
        return cls(1, interval_s, 1)

    @classmethod
    def window(cls, limit: int, period_s: float = 60.0) -> "Rate":
        """A sliding window: ``limit`` per ``period_s``, all of them at once if the client wants."""
        return cls(limit, period_s, limit)

    @property
    def interval_s(self) -> float:
        """Seconds between two paced requests (GCRA's emission interval)."""
        return self.period_s / self.limit

    @property
    def tolerance_s(self) -> float:
        """How far ahead of the pace a request may be (GCRA's tau): (burst - 1) intervals."""
        return (self.burst - 1) * self.interval_s


@dataclass(frozen=True)
class Concurrency:
    """AIMD bounds of the requests in flight for one key (see the module docstring).

    minimum / maximum: bounds of the limit (requests); increase: added per round of successes;
    decrease: factor applied on a 429 or timeout; lease_s: seconds after which an unreported
    request stops counting (its holder died); idle_reset_s: seconds without use after which the
    limit starts again at ``maximum``.

    Raises:
        ValueError: bounds out of order, decrease outside (0, 1), non-positive times.
    """

    minimum: int = 1
    maximum: int = 16
    increase: float = 1.0
    decrease: float = 0.5
    lease_s: float = 300.0
    idle_reset_s: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError(f"invalid concurrency bounds: {self.minimum}..{self.maximum}")
        if not 0 < self.decrease < 1 or self.increase <= 0 or self.lease_s <= 0 or self.idle_reset_s <= 0:
            raise ValueError("invalid concurrency parameters")


class Outcome(enum.Enum):
    """What became of an admitted request; it drives AIMD and the shared block."""

    SUCCESS = "success"  # the provider answered (even with an answer we cannot use): grow
    RATE_LIMITED = "rate_limited"  # 429: cut, and block the key for the Retry-After
    TIMEOUT = "timeout"  # no answer in time (read timeout, 408): cut
    ERROR = "error"  # 5xx, connection error, other 4xx, cancelled, not sent: no change


# --- the state of one key and its rules (pure: no IO, the time is passed in) ---------------
@dataclass
class KeyState:
    """The shared state of one key. Times in seconds on the store's clock.

    tat: GCRA's theoretical arrival time; last_at: the latest slot given (slots never go back);
    log: admission times of the last period (kept when burst > 1); blocked_until: end of the
    Retry-After block; limit: the AIMD concurrency limit (None = not set: ``maximum``);
    cut_at: when it was last cut; leases: lease id → [admitted_at, expires_at]; queue: the
    tickets of callers waiting for a concurrency slot, oldest first, as [ticket id, renewed_at];
    touched_at: the last change.
    """

    tat: float = 0.0
    last_at: float = 0.0
    log: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    limit: float | None = None
    cut_at: float = 0.0
    leases: dict[str, list[float]] = field(default_factory=dict)
    queue: list[list[Any]] = field(default_factory=list)
    touched_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {"tat": self.tat, "last": self.last_at, "log": self.log, "blocked": self.blocked_until,
             "limit": self.limit, "cut": self.cut_at, "leases": self.leases, "queue": self.queue,
             "touched": self.touched_at},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> "KeyState":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            tat=data["tat"], last_at=data["last"], log=list(data["log"]), blocked_until=data["blocked"],
            limit=data["limit"], cut_at=data["cut"], leases=dict(data["leases"]),
            queue=[list(ticket) for ticket in data.get("queue", [])], touched_at=data["touched"],
        )


@dataclass(frozen=True)
class Decision:
    """The answer of ``admit``. Admitted: send at ``at`` (>= now). Refused: ``reason`` is
    "blocked", "concurrency" or "rate", and ``wait_s`` how long until a try is worth it
    (0.0 for "concurrency": unknown, the caller polls); ``ahead``: for "concurrency", the
    tickets queued before the caller's (0: it is next)."""

    admitted: bool
    now: float
    at: float = 0.0
    wait_s: float = 0.0
    reason: str = ""
    ahead: int = 0


TICKET_TTL_S = 3.0
"""Seconds a queued ticket counts without being renewed (its holder polls at most every
``Limiter.max_poll_s``, 0.5 s by default, and renews it every ``TICKET_RENEW_S``)."""
TICKET_RENEW_S = 1.0


def concurrency_cap(state: KeyState, concurrency: Concurrency) -> int:
    """The number of requests that may be in flight now: floor of the AIMD limit, in bounds."""
    limit = concurrency.maximum if state.limit is None else state.limit
    return max(concurrency.minimum, min(concurrency.maximum, math.floor(limit)))


def admit(
    state: KeyState, now: float, *, rate: Rate | None, concurrency: Concurrency | None,
    lease_id: str, max_wait_s: float | None, ticket_ttl_s: float = TICKET_TTL_S,
) -> tuple[Decision, bool]:
    """Admit one request now or later, or refuse it: (decision, whether ``state`` changed).

    ``lease_id`` is also the caller's ticket in the concurrency queue: a caller refused for
    concurrency asks again with the same id and keeps its place (renewed at most every
    ``TICKET_RENEW_S``; gone after ``ticket_ttl_s`` without a renewal). With ``free`` slots,
    only the first ``free`` tickets, or a newcomer when fewer are queued, are admitted. A
    refusal changes nothing else (expired leases and tickets are dropped). ``max_wait_s``:
    refuse instead of giving a rate slot further away than this (None = any slot); 0 never
    queues (an answer at once).
    """
    changed = False
    ahead = 0
    if concurrency is not None:
        expired = [lid for lid, (_, expires_at) in state.leases.items() if expires_at <= now]
        for lid in expired:
            del state.leases[lid]
        changed = bool(expired)
        if state.limit is not None and not state.leases and now - state.touched_at > concurrency.idle_reset_s:
            state.limit, changed = None, True
        live = [ticket for ticket in state.queue if ticket[1] > now - ticket_ttl_s]
        if len(live) != len(state.queue):
            state.queue, changed = live, True
        ahead = next((i for i, ticket in enumerate(state.queue) if ticket[0] == lease_id), len(state.queue))
    if state.blocked_until > now:
        return Decision(False, now, wait_s=state.blocked_until - now, reason="blocked"), changed
    if concurrency is not None:
        free = concurrency_cap(state, concurrency) - len(state.leases)
        if free <= ahead:  # full, or the free slots belong to older tickets
            if max_wait_s is None or max_wait_s > 0:
                if ahead == len(state.queue):
                    state.queue.append([lease_id, now])
                    changed = True
                elif now - state.queue[ahead][1] >= TICKET_RENEW_S:
                    state.queue[ahead][1] = now
                    changed = True
            return Decision(False, now, reason="concurrency", ahead=ahead), changed
        if ahead < len(state.queue):
            del state.queue[ahead]
            changed = True
    at = now
    if rate is not None:
        at = max(now, state.tat - rate.tolerance_s, state.last_at)
        log_ = state.log
        if rate.burst > 1:
            log_ = [t for t in state.log if t > now - rate.period_s]
            if len(log_) >= rate.limit:
                at = max(at, log_[-rate.limit] + rate.period_s)
        if max_wait_s is not None and at - now > max_wait_s:
            return Decision(False, now, wait_s=at - now, reason="rate"), changed
        state.tat = max(state.tat, at) + rate.interval_s
        state.last_at = at
        if rate.burst > 1:
            state.log = (log_ + [at])[-rate.limit:]
    if concurrency is not None:
        state.leases[lease_id] = [at, at + concurrency.lease_s]
    state.touched_at = now
    return Decision(True, now, at=at), True


def release(
    state: KeyState, now: float, *, lease_id: str, outcome: Outcome, retry_after_s: float | None,
    rate: Rate | None, concurrency: Concurrency | None,
) -> bool:
    """Apply the outcome of an admitted request (see the module docstring), or withdraw the
    ticket of a caller that stopped waiting; whether ``state`` changed."""
    lease = state.leases.pop(lease_id, None)
    changed = lease is not None
    tickets = [ticket for ticket in state.queue if ticket[0] != lease_id]
    if len(tickets) != len(state.queue):  # a waiter gave up (cancelled, out of time)
        state.queue, changed = tickets, True
    if concurrency is not None:
        current = float(concurrency.maximum if state.limit is None else state.limit)
        current = max(float(concurrency.minimum), min(float(concurrency.maximum), current))
        new = current
        if outcome is Outcome.SUCCESS:
            new = min(float(concurrency.maximum), current + concurrency.increase / current)
        elif outcome in (Outcome.RATE_LIMITED, Outcome.TIMEOUT) and lease is not None and lease[0] >= state.cut_at:
            new = max(float(concurrency.minimum), current * concurrency.decrease)
            state.cut_at = now
            changed = True
        if new != state.limit and not (state.limit is None and new == concurrency.maximum):
            state.limit, changed = new, True
    if outcome is Outcome.RATE_LIMITED and retry_after_s is not None and retry_after_s > 0:
        until = now + retry_after_s
        if until > state.blocked_until:
            state.blocked_until = until
            if rate is not None:  # after the block: one request, then the pace (no burst)
                state.tat = max(state.tat, until + rate.tolerance_s)
            changed = True
    if changed:
        state.touched_at = now
    return changed


# --- stores ---------------------------------------------------------------------------------
class Store(Protocol):
    """Where key states live. ``update`` runs ``change(state, now)`` atomically for one key:
    ``change`` returns (result, changed) and the state is written only when changed, to be kept
    ``ttl(state, now)`` seconds; it may run more than once (optimistic concurrency), so it must
    be pure."""

    def update(self, key: str, change: Callable[[KeyState, float], tuple[T, bool]], *,
               ttl: Ttl, clock: Clock | None) -> T: ...

    def read(self, key: str, *, clock: Clock | None) -> tuple[KeyState, float]: ...


class MemoryStore:
    """Key states in this process's memory (thread-safe): NOT shared between processes."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float]] = {}  # key → (state JSON, expires at)
        self._lock = threading.Lock()

    def update(self, key: str, change: Callable[[KeyState, float], tuple[T, bool]], *,
               ttl: Ttl, clock: Clock | None) -> T:
        with self._lock:
            now = (clock or time.time)()
            state = KeyState.from_json(self._live(key, now))
            result, changed = change(state, now)
            if changed:
                self._values[key] = (state.to_json(), now + ttl(state, now))
            return result

    def read(self, key: str, *, clock: Clock | None) -> tuple[KeyState, float]:
        with self._lock:
            now = (clock or time.time)()
            return KeyState.from_json(self._live(key, now)), now

    def _live(self, key: str, now: float) -> str | None:
        raw, expires_at = self._values.get(key, ("", 0.0))
        return raw if expires_at > now else None


class RedisStore:
    """Key states in Redis: ``ratelimit:state:{key}``, a JSON string with a TTL.

    redis_client: a ``redis.Redis`` (default ``hokan.core.redis_conn.get_redis()``). Without an
    injected clock, ``now`` is the Redis server's ``TIME``.
    """

    prefix = "ratelimit:state:"

    def __init__(self, redis_client: Any = None) -> None:
        if redis_client is None:
            from hokan.core.redis_conn import get_redis

            redis_client = get_redis()
        self.redis = redis_client

    def update(self, key: str, change: Callable[[KeyState, float], tuple[T, bool]], *,
               ttl: Ttl, clock: Clock | None) -> T:
        name = self.prefix + key

        def transaction(pipe: Any) -> T:
            raw = pipe.get(name)  # WATCHed: executed at once, before MULTI
            now = clock() if clock is not None else _server_time(pipe)
            state = KeyState.from_json(raw)
            result, changed = change(state, now)
            if changed:
                pipe.multi()
                pipe.set(name, state.to_json(), px=max(1, int(ttl(state, now) * 1000)))
            return result

        return self.redis.transaction(transaction, name, value_from_callable=True)  # type: ignore[no-any-return]

    def read(self, key: str, *, clock: Clock | None) -> tuple[KeyState, float]:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.prefix + key)
            pipe.time()
            raw, (seconds, micros) = pipe.execute()
        now = clock() if clock is not None else seconds + micros / 1_000_000
        return KeyState.from_json(raw), now


def _server_time(client: Any) -> float:
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1_000_000


class DatabaseStore:
    """Key states in the database, one ``RateLimitState`` row per key.

    A change is ``UPDATE … SET state=…, version=v+1 WHERE key=… AND version=v``: exactly one of
    two racing writers changes the row, the other reads again (on PostgreSQL under READ
    COMMITTED the second UPDATE waits for the first and then finds the version changed; SQLite
    serialises writers). Rows unused past their ``expires_at`` are deleted every
    ``SWEEP_EVERY`` writes of a process. using: the database alias.
    """

    SWEEP_EVERY = 256
    MAX_TRIES = 200

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._writes = 0

    def update(self, key: str, change: Callable[[KeyState, float], tuple[T, bool]], *,
               ttl: Ttl, clock: Clock | None) -> T:
        from hokan.core.models import RateLimitState

        rows = RateLimitState.objects.using(self.using)
        for attempt in range(self.MAX_TRIES):
            found = rows.filter(key=key).values_list("state", "version").first()
            if found is None:
                rows.bulk_create([RateLimitState(key=key)], ignore_conflicts=True)
                continue
            raw, version = found
            now = (clock or time.time)()
            state = KeyState.from_json(raw)
            result, changed = change(state, now)
            if not changed:
                return result
            if rows.filter(key=key, version=version).update(
                state=state.to_json(), version=version + 1, expires_at=now + ttl(state, now)
            ):
                self._writes += 1
                if self._writes % self.SWEEP_EVERY == 0:
                    rows.filter(expires_at__lt=now).delete()
                return result
            time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))  # another writer won: read again
        raise RuntimeError(f"rate limit state {key!r}: too many concurrent writers")

    def read(self, key: str, *, clock: Clock | None) -> tuple[KeyState, float]:
        from hokan.core.models import RateLimitState

        raw = RateLimitState.objects.using(self.using).filter(key=key).values_list("state", flat=True).first()
        return KeyState.from_json(raw), (clock or time.time)()


def store_from_settings() -> Store:
    """``RedisStore`` when ``REDIS_URL`` is set, else ``DatabaseStore`` — never per process."""
    from django.conf import settings

    if settings.REDIS_URL:
        return RedisStore()
    return DatabaseStore()


# --- one gate for every attempt of a retried call -----------------------------------------------
Gate = Callable[[Callable[[], Any], "float | None"], Any]
attempt_gate: contextvars.ContextVar[Gate | None] = contextvars.ContextVar("hokan_attempt_gate", default=None)
"""The gate of the current call, set by a wrapper around it (``hokan.core.llm.limited.RateLimitedClient``):
a retry loop runs each attempt through ``run_attempt``, so every attempt, retries included,
takes its own slot (issue: the client's retries bypassed the shared limiter)."""


def run_attempt(send: Callable[[], T], seconds_left: float | None = None) -> T:
    """Run one attempt (one HTTP request) through the current ``attempt_gate``, or directly
    when none is set. Retry loops call it once per attempt (``hokan.core.llm.retry``).

    seconds_left: the seconds before the call's deadline (None = none); the gate waits no
    longer than that for a slot.

    Raises:
        RateLimited: the gate found no slot in time; nothing was sent.
        whatever ``send`` raises (the gate has reported it to the limiter).
    """
    gate = attempt_gate.get()
    return send() if gate is None else gate(send, seconds_left)


# --- the limiter ----------------------------------------------------------------------------
# Threads of one process take turns on a key's state (a lock per stripe of keys), so optimistic
# retries only happen between processes; a release in this process wakes its threads waiting
# for a concurrency slot (a condition per stripe; other processes are polled). Striped, not
# one per key: a web worker sees an unbounded number of keys (one per client IP).
_STRIPES = 64
_key_locks = [threading.Lock() for _ in range(_STRIPES)]
_key_releases = [threading.Condition() for _ in range(_STRIPES)]


def _lock_for(key: str) -> threading.Lock:
    return _key_locks[hash(key) % _STRIPES]


def _releases_for(key: str) -> threading.Condition:
    return _key_releases[hash(key) % _STRIPES]


@dataclass
class Permit:
    """An admitted request. Report what became of it once (``report``); ``slot()`` does it.

    admitted_at: the slot, on the store's clock (seconds); waited_s: seconds spent waiting.
    """

    limiter: "Limiter"
    lease_id: str
    admitted_at: float
    waited_s: float
    reported: bool = False

    def report(self, outcome: Outcome, *, retry_after_s: float | None = None) -> None:
        self.limiter.report(self, outcome, retry_after_s=retry_after_s)


@dataclass(frozen=True)
class LimiterStatus:
    """A key's state now: requests in flight, the concurrency limit (None without AIMD),
    seconds left of a Retry-After block, seconds until the next rate slot."""

    key: str
    in_flight: int
    concurrency_limit: int | None
    blocked_for_s: float
    next_slot_in_s: float


class Limiter:
    """The limits of one key (see the module docstring).

    key: the key's name; rate / concurrency: None turns that part off (a Limiter with neither
    still shares Retry-After blocks); store: default ``store_from_settings()`` at first use;
    clock: the time in seconds (default: the store's clock); sleep: called with the seconds to
    wait (default ``time.sleep``, and waits for a concurrency slot wake on a release in this
    process); poll_s / max_poll_s: how often a caller waiting for a concurrency slot looks
    again (doubling from ``poll_s``).
    """

    def __init__(
        self,
        key: str,
        *,
        rate: Rate | None = None,
        concurrency: Concurrency | None = None,
        store: Store | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_s: float = 0.05,
        max_poll_s: float = 0.5,
    ) -> None:
        self.key = key
        self.rate = rate
        self.concurrency = concurrency
        self._store = store
        self.clock = clock
        self._sleep = sleep
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s

    def __repr__(self) -> str:
        return f"Limiter({self.key!r}, rate={self.rate}, concurrency={self.concurrency})"

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = store_from_settings()
        return self._store

    def _ttl(self, state: KeyState, now: float) -> float:
        """Seconds ``state`` still matters after ``now``: its queue of reserved slots and a
        period after it, its block, its leases and the AIMD memory (plus a minute's margin)."""
        ttl = max(1.0, state.blocked_until - now)
        if self.rate is not None:
            ttl = max(ttl, state.tat - now + self.rate.period_s, state.last_at - now + self.rate.period_s)
        if self.concurrency is not None:
            ttl = max(ttl, self.concurrency.lease_s, self.concurrency.idle_reset_s)
        return ttl + 60.0

    # --- acquiring ------------------------------------------------------------------------
    def acquire(self, *, max_wait_s: float | None = None) -> Permit:
        """Wait (sleep) for the block, a concurrency slot and a rate slot; the permit.

        Raises:
            RateLimited: no slot within ``max_wait_s`` seconds (``retry_after_s``: when a try
                is worth it); nothing was admitted.
            redis.RedisError, django.db.DatabaseError: the store is unreachable.
        """
        steps = self._steps(max_wait_s)
        step = _advance(steps)
        while not isinstance(step, Permit):
            wait_s, reason, pending = step
            try:
                self._wait(wait_s, reason)
            except BaseException:
                if pending:
                    self._release(pending, Outcome.ERROR, None)
                raise
            step = _advance(steps)
        return step

    async def acquire_async(self, *, max_wait_s: float | None = None) -> Permit:
        """``acquire`` for asyncio: sleeps with ``asyncio.sleep``, store calls in a thread."""
        steps = self._steps(max_wait_s)
        step = await asyncio.to_thread(_advance, steps)
        while not isinstance(step, Permit):
            wait_s, _, pending = step
            try:
                await asyncio.sleep(wait_s)
            except BaseException:  # cancelled while holding a slot: give it back
                if pending:
                    await asyncio.to_thread(self._release, pending, Outcome.ERROR, None)
                raise
            step = await asyncio.to_thread(_advance, steps)
        return step

    @contextlib.contextmanager
    def slot(self, *, max_wait_s: float | None = None) -> Iterator[Permit]:
        """``acquire``, run the block, report: SUCCESS, or ``classify_outcome`` of its exception
        (re-raised). A permit the block reported itself is not reported again."""
        permit = self.acquire(max_wait_s=max_wait_s)
        try:
            yield permit
        except BaseException as exc:
            if not permit.reported:
                outcome, retry_after_s = classify_outcome(exc)
                self.report(permit, outcome, retry_after_s=retry_after_s)
            raise
        if not permit.reported:
            self.report(permit, Outcome.SUCCESS)

    @contextlib.asynccontextmanager
    async def aslot(self, *, max_wait_s: float | None = None) -> AsyncIterator[Permit]:
        """``slot`` for asyncio."""
        permit = await self.acquire_async(max_wait_s=max_wait_s)
        try:
            yield permit
        except BaseException as exc:
            if not permit.reported:
                outcome, retry_after_s = classify_outcome(exc)
                await asyncio.to_thread(self.report, permit, outcome, retry_after_s=retry_after_s)
            raise
        if not permit.reported:
            await asyncio.to_thread(self.report, permit, Outcome.SUCCESS)

    # --- reporting ------------------------------------------------------------------------
    def report(self, permit: Permit, outcome: Outcome, *, retry_after_s: float | None = None) -> None:
        """What became of ``permit``'s request (once; later reports are ignored).

        RATE_LIMITED with ``retry_after_s`` blocks the key for every caller; RATE_LIMITED and
        TIMEOUT cut the concurrency limit, SUCCESS grows it; every outcome frees the slot.
        """
        if permit.reported:
            return
        permit.reported = True
        self._release(permit.lease_id, outcome, retry_after_s)

    def status(self) -> LimiterStatus:
        """The key's state now (for progress lines: in flight, limit, block)."""
        state, now = self.store.read(self.key, clock=self.clock)
        live = [lid for lid, (_, expires_at) in state.leases.items() if expires_at > now]
        next_slot = 0.0
        if self.rate is not None:
            next_slot = max(0.0, state.tat - self.rate.tolerance_s - now, state.last_at - now)
        return LimiterStatus(
            key=self.key,
            in_flight=len(live),
            concurrency_limit=concurrency_cap(state, self.concurrency) if self.concurrency else None,
            blocked_for_s=max(0.0, state.blocked_until - now),
            next_slot_in_s=next_slot,
        )

    # --- internals ------------------------------------------------------------------------
    def _update(self, change: Callable[[KeyState, float], tuple[T, bool]]) -> T:
        with _lock_for(self.key):
            return self.store.update(self.key, change, ttl=self._ttl, clock=self.clock)

    def _release(self, lease_id: str, outcome: Outcome, retry_after_s: float | None) -> None:
        blocks = outcome is Outcome.RATE_LIMITED and retry_after_s is not None and retry_after_s > 0
        if self.concurrency is None and not blocks:
            return  # nothing to free or change
        self._update(lambda state, now: (None, release(
            state, now, lease_id=lease_id, outcome=outcome, retry_after_s=retry_after_s,
            rate=self.rate, concurrency=self.concurrency,
        )))
        condition = _releases_for(self.key)
        with condition:
            condition.notify_all()

    def _steps(self, max_wait_s: float | None) -> Generator[tuple[float, str, str], None, Permit]:
        """The acquire loop, shared by the sync and async drivers: yields (seconds to wait,
        reason, lease id held meanwhile or "") and returns the permit."""
        waited = 0.0
        poll = self.poll_s
        ticket = ""  # our place in the concurrency queue, kept while we wait there
        ticket_ttl_s = max(TICKET_TTL_S, 4 * self.max_poll_s)
        while True:
            lease_id = ticket or uuid.uuid4().hex
            remaining = None if max_wait_s is None else max(0.0, max_wait_s - waited)
            decision = self._update(lambda state, now: admit(
                state, now, rate=self.rate, concurrency=self.concurrency, lease_id=lease_id, max_wait_s=remaining,
                ticket_ttl_s=ticket_ttl_s,
            ))
            if decision.admitted:
                ticket = ""
                delay = decision.at - decision.now
                if delay > 0:
                    yield delay, "rate", lease_id if self.concurrency else ""
                    waited += delay
                    state, _ = self.store.read(self.key, clock=self.clock)
                    if state.blocked_until > decision.at:  # blocked while we waited: queue again
                        self._release(lease_id, Outcome.ERROR, None)
                        continue
                return Permit(self, lease_id, decision.at, waited)
            if decision.reason == "concurrency":
                ticket = lease_id
                wait = self.poll_s if decision.ahead == 0 else poll  # next in line: look often
                poll = min(poll * 2, self.max_poll_s)
                if remaining is not None:
                    if remaining <= 0:
                        self._withdraw(ticket)
                        raise self._refused(self.poll_s)
                    wait = min(wait, remaining)
            else:
                self._withdraw(ticket)  # blocked or rate: no longer in the concurrency queue
                ticket = ""
                wait = decision.wait_s
                if remaining is not None and wait > remaining:
                    raise self._refused(wait)
            yield wait, decision.reason, ticket  # a waiter cancelled meanwhile withdraws its ticket
            waited += wait

    def _withdraw(self, ticket: str) -> None:
        if ticket:
            self._update(lambda state, now: (None, release(
                state, now, lease_id=ticket, outcome=Outcome.ERROR, retry_after_s=None,
                rate=self.rate, concurrency=self.concurrency,
            )))

    def _wait(self, seconds: float, reason: str) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif reason == "concurrency":
            condition = _releases_for(self.key)
            with condition:
                condition.wait(timeout=seconds)
        else:
            time.sleep(seconds)

    def _refused(self, wait_s: float) -> RateLimited:
        return RateLimited(
            f"レート制限のため、{wait_s:.1f}秒以内には送信できません: {self.key}",
            key=self.key,
            retry_after_s=wait_s,
        )


def _advance(steps: Generator[tuple[float, str, str], None, Permit]) -> tuple[float, str, str] | Permit:
    """The next step of ``Limiter._steps``: a wait, or the permit (StopIteration must not
    cross ``asyncio.to_thread``)."""
    try:
        return next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def classify_outcome(exc: BaseException) -> tuple[Outcome, float | None]:
    """The ``Outcome`` of a request that raised ``exc``, and the Retry-After it carried.

    HTTP 429 (an error with ``status_code == 429``, e.g. ``LLMTransientError``) → RATE_LIMITED
    with its ``retry_after_s``; 408 or a timeout → TIMEOUT; ``LLMOutputError`` → SUCCESS (the
    provider answered, we could not use it); anything else → ERROR.
    """
    if isinstance(exc, LLMOutputError):
        return Outcome.SUCCESS, None
    status = getattr(exc, "status_code", None)
    if status == 429:
        retry_after = getattr(exc, "retry_after_s", None)
        return Outcome.RATE_LIMITED, float(retry_after) if retry_after is not None else None
    if status == 408 or _is_timeout(exc):
        return Outcome.TIMEOUT, None
    return Outcome.ERROR, None


def _is_timeout(exc: BaseException) -> bool:
    # The LLM clients raise LLMTransientError(status_code=None) for both timeouts and refused
    # connections; only the chained cause tells them apart. The class-name test covers
    # httpx.TimeoutException and openai.APITimeoutError without importing either here —
    # narrow on purpose: only names containing "Timeout".
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, (TimeoutError, FetchTimeout)) or "Timeout" in type(seen).__name__:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --- the limiters of the settings -----------------------------------------------------------
def llm_rate_limiter(provider: str, *, concurrency: Concurrency | None = None, key: str | None = None) -> Limiter:
    """The provider's limiter, named ``llm:{provider}`` (or ``key``), from the settings:

    - rate: ``HOKAN_LLM_RATE_LIMIT_PER_MIN`` requests per 60 s for all processes together
      (document 000 §6: 60; 0 = no rate limit), paced with ``HOKAN_LLM_RATE_LIMIT_BURST``;
    - concurrency: ``HOKAN_LLM_CONCURRENCY_MIN`` .. ``HOKAN_LLM_CONCURRENCY_MAX`` requests in
      flight (AIMD), a lease lasting twice ``HOKAN_LLM_TIMEOUT_S`` plus 30 s;
    - Retry-After blocks shared by every caller of the provider.

    concurrency: other bounds (a scoring job's ``RunConfig``) instead of the settings' ones.

    Raises:
        ImproperlyConfigured: the concurrency settings are out of order (or below 1).
    """
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    per_min = int(settings.HOKAN_LLM_RATE_LIMIT_PER_MIN)
    rate = Rate.per_minute(per_min, burst=max(1, min(int(settings.HOKAN_LLM_RATE_LIMIT_BURST), per_min))) \
        if per_min > 0 else None
    if concurrency is None:
        minimum, maximum = int(settings.HOKAN_LLM_CONCURRENCY_MIN), int(settings.HOKAN_LLM_CONCURRENCY_MAX)
        if not 1 <= minimum <= maximum:
            raise ImproperlyConfigured(
                f"HOKAN_LLM_CONCURRENCY_MIN ({minimum}) は 1 以上、HOKAN_LLM_CONCURRENCY_MAX ({maximum}) 以下にしてください"
            )
        concurrency = Concurrency(
            minimum=minimum, maximum=maximum, lease_s=max(60.0, 2 * float(settings.HOKAN_LLM_TIMEOUT_S) + 30.0)
        )
    return Limiter(key or f"llm:{provider}", rate=rate, concurrency=concurrency)
