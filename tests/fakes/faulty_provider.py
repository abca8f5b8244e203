"""The fake OpenAI/Perplexity server (tests/fakes/openai_server.py) behaving like a busy real
provider: a per-minute limit answered with 429 + Retry-After, a share of HTTP 500s, latency,
429 storms — for fault-injection tests and the concurrency bench.

::

    with FaultyProvider(per_minute=60, error_rate=0.05, latency_s=1.0, seed=7,
                        answer=lambda request: Reply.json({...})) as server:
        ...
        server.answered            # 200 answers sent (what a real provider would bill)
        server.answered_for(name)  # ... for one company (the prompt's 企業名 line)

Rules, per request, in this order (scripted ``enqueue`` replies still come first):

1. an outage (``outage(seconds)``) answers 503 to everything until it ends; a storm
   (``storm(seconds, retry_after_s)``) answers 429 with ``Retry-After`` to everything until it ends;
2. ``per_minute``: a sliding window of the last 60 s of *answered* requests; beyond it, 429
   with ``Retry-After`` = whole seconds until a slot frees (at least 1);
3. ``error_rate``: that share of the remaining requests gets HTTP 500 (a seeded RNG, so a run
   is reproducible);
4. otherwise ``answer(request_json)`` (default: the server's ``default_reply``) after
   ``latency_s``.

``answered`` counts the 200 replies decided, including one whose client died before reading
it (a real provider bills that call too).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tests.fakes.openai_server import FakeOpenAIServer, Reply


def company_in(request_json: Any) -> str:
    """The company named on the prompt's 「企業名:」 line ("" when none)."""
    try:
        prompt = request_json["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    for line in str(prompt).splitlines():
        if line.startswith("企業名"):
            return line.split(":", 1)[-1].strip()
    return ""


class FaultyProvider(FakeOpenAIServer):
    """A ``FakeOpenAIServer`` with the faults of the module docstring. Thread-safe."""

    thread_name = "fake-faulty-provider"

    def __init__(
        self,
        *,
        per_minute: int | None = None,
        error_rate: float = 0.0,
        latency_s: float = 0.0,
        seed: int = 0,
        answer: Callable[[Any], Reply] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.per_minute = per_minute
        self.error_rate = error_rate
        self.latency_s = latency_s
        self.answer = answer
        self._clock = clock
        self._rng = random.Random(seed)
        self._admitted: deque[float] = deque()
        self._storm_until = 0.0
        self._storm_retry_after = 1
        self._storm_pending: float | None = None
        self._outage_until = 0.0
        self._outage_pending: float | None = None
        self._outage_status = 503
        self._fault_lock = threading.Lock()
        self.answered = 0
        self.rate_limited = 0
        self.errors = 0
        self._answered_for: Counter[str] = Counter()
        self._decided: list[tuple[float, int]] = []
        self._current = threading.local()

    def storm(self, seconds: float, *, retry_after_s: int = 1, from_next_request: bool = False) -> None:
        """Answer every request with 429 (Retry-After ``retry_after_s``) for ``seconds`` from now,
        or from the next request that arrives (``from_next_request``)."""
        with self._fault_lock:
            self._storm_retry_after = retry_after_s
            if from_next_request:
                self._storm_pending = seconds
            else:
                self._storm_until = self._clock() + seconds

    def outage(self, seconds: float, *, status: int = 503, from_next_request: bool = True) -> None:
        """Answer every request with HTTP ``status`` for ``seconds`` (from the next request by
        default): a provider that is down."""
        with self._fault_lock:
            self._outage_status = status
            if from_next_request:
                self._outage_pending = seconds
            else:
                self._outage_until = self._clock() + seconds

    def answered_for(self, company: str) -> int:
        with self._fault_lock:
            return self._answered_for[company]

    def answered_companies(self) -> Counter[str]:
        with self._fault_lock:
            return Counter(self._answered_for)

    def record(self, request: Any) -> None:
        super().record(request)
        self._current.request = request  # the handler asks for the reply right after recording

    def _next_reply(self) -> Reply:
        request = getattr(self._current, "request", None)
        reply = self._decide(request)
        with self._fault_lock:
            self._decided.append((getattr(request, "received_at", 0.0), reply.status))
        return reply

    def _decide(self, request: Any) -> Reply:
        body = getattr(request, "json", None)
        if self.pending():
            scripted = super()._next_reply()
            self._count(scripted, body)
            return scripted
        with self._fault_lock:
            now = self._clock()
            if self._storm_pending is not None:
                self._storm_until, self._storm_pending = now + self._storm_pending, None
            if self._outage_pending is not None:
                self._outage_until, self._outage_pending = now + self._outage_pending, None
            if now < self._outage_until:
                self.errors += 1
                return Reply.error(self._outage_status, message="service unavailable (injected outage)")
            if now < self._storm_until:
                self.rate_limited += 1
                return Reply.rate_limited(retry_after=str(self._storm_retry_after))
            if self.per_minute is not None:
                while self._admitted and self._admitted[0] <= now - 60.0:
                    self._admitted.popleft()
                if len(self._admitted) >= self.per_minute:
                    self.rate_limited += 1
                    wait = max(1, int(self._admitted[0] + 60.0 - now + 0.999))
                    return Reply.rate_limited(retry_after=str(wait))
            if self.error_rate and self._rng.random() < self.error_rate:
                self.errors += 1
                return Reply.error(500, message="upstream error (injected)")
            if self.per_minute is not None:
                self._admitted.append(now)
        reply = self.answer(body) if self.answer is not None else self.default_reply
        if self.latency_s and not reply.latency_s:
            reply = replace(reply, latency_s=self.latency_s)
        self._count(reply, body)
        return reply

    def arrivals(self) -> list[tuple[float, Any]]:
        """(arrival time, JSON body) of every request recorded, in order."""
        with self._lock:
            return [(getattr(r, "received_at", 0.0), getattr(r, "json", None)) for r in self.requests]

    def statuses(self) -> list[tuple[float, int]]:
        """(arrival time, HTTP status decided) of every request that reached ``_next_reply``."""
        with self._fault_lock:
            return list(self._decided)

    def _count(self, reply: Reply, body: Any = None) -> None:
        if reply.status == 200 and reply.run_status != "failed":
            with self._fault_lock:
                self.answered += 1
                self._answered_for[company_in(body)] += 1
