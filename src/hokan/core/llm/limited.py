"""An LLM client whose every HTTP attempt passes the provider's shared limiter.

``hokan.core.ratelimit`` knows nothing of LLMs; this wrapper applies a ``Limiter`` to a client
(composition, STYLE §2: "budget, cache and rate limiting wrap the client"). It sits innermost,
next to the provider client (ARCHITECTURE: cache → budget.reserve → rate limit → provider)::

    client = limited_client(get_client())          # llm_rate_limiter(provider) from the settings
    client.complete_json(request)                  # each attempt: block? slot? pace → send → report

Per attempt, not per call: the provider clients run their attempts in
``hokan.core.llm.retry.RetryPolicy.call``, which passes each through
``hokan.core.ratelimit.run_attempt``; this wrapper sets the gate it calls (a context variable,
so threads and asyncio tasks each have their own). So a retry after a 429 or a 5xx takes a
slot like the first request, and each attempt's outcome is reported where it happened:

- 429 (``LLMTransientError`` with status 429) → the key is blocked for its ``retry_after_s``
  for every caller in every process, and the concurrency limit is cut;
- a timeout → the concurrency limit is cut;
- an answer (valid or not: ``LLMOutputError`` is a paid answer) → the limit grows;
- anything else (5xx, refused connection, 4xx) → the slot is freed, nothing changes.

A wrapped client that does not run its attempts through ``RetryPolicy`` (a test double, an
offline client) is gated once per call instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hokan.core import ratelimit
from hokan.core.llm import retry
from hokan.core.llm.client import Completion, JsonRequest
from hokan.core.ratelimit import Concurrency, Limiter, attempt_gate, llm_rate_limiter

T = TypeVar("T")


class RateLimitedClient:
    """An ``LLMClient`` that takes a slot of ``limiter`` for every request it sends.

    client: the provider client (or a wrapper of it); limiter: its ``Limiter``;
    max_wait_s: the longest wait for one slot in seconds (None = as long as needed; a call's
    deadline, when it has one, caps it further).
    """

    def __init__(self, client: Any, limiter: Limiter, *, max_wait_s: float | None = None) -> None:
        self.client = client
        self.limiter = limiter
        self.max_wait_s = max_wait_s

    @property
    def provider(self) -> str:
        return str(self.client.provider)

    @property
    def model(self) -> str:
        return str(self.client.model)

    @property
    def available(self) -> bool:
        return bool(self.client.available)

    @property
    def profile(self) -> str:
        return str(getattr(self.client, "profile", ""))

    @property
    def scope(self) -> str:
        return str(getattr(self.client, "scope", ""))

    def complete_json(self, request: JsonRequest, **options: Any) -> Completion:
        """``client.complete_json(request, **options)``, each attempt through the limiter.

        Raises:
            RateLimited: no slot within ``max_wait_s`` (or the deadline); that attempt was
                not sent.
            whatever ``client.complete_json`` raises.
        """
        completion: Completion = self._call(self.client.complete_json, request, **options)
        return completion

    def embed(self, texts: list[str], **options: Any) -> Any:
        """``client.embed(texts, **options)``, each attempt through the limiter (as ``complete_json``)."""
        return self._call(self.client.embed, texts, **options)

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not _runs_attempts_through_gate(self.client):
            with self.limiter.slot(max_wait_s=self.max_wait_s):
                return method(*args, **kwargs)
        token = attempt_gate.set(self._gate)
        try:
            return method(*args, **kwargs)
        finally:
            attempt_gate.reset(token)

    def _gate(self, send: Callable[[], T], seconds_left: float | None) -> T:
        wait = self.max_wait_s
        if seconds_left is not None:
            wait = seconds_left if wait is None else min(wait, seconds_left)
        with self.limiter.slot(max_wait_s=wait):
            return send()

    def __repr__(self) -> str:
        return f"RateLimitedClient({self.client!r}, {self.limiter!r})"


def _runs_attempts_through_gate(client: Any) -> bool:
    """Whether ``client`` (or a client it wraps, as ``.client`` / ``.inner``) sends through a
    ``RetryPolicy`` whose loop calls ``ratelimit.run_attempt`` for each attempt."""
    if getattr(retry, "run_attempt", None) is not ratelimit.run_attempt:
        return False
    for _ in range(5):
        if client is None:
            return False
        if isinstance(getattr(client, "retry_policy", None), retry.RetryPolicy):
            return True
        client = getattr(client, "client", None) or getattr(client, "inner", None)
    return False


def limited_client(client: Any, *, max_wait_s: float | None = None, concurrency: Concurrency | None = None) -> Any:
    """``client`` behind ``llm_rate_limiter(client.provider)`` (settings: rate, burst, concurrency
    bounds), or ``client`` itself when it makes no calls (offline) or is limited already.

    concurrency: other AIMD bounds than the settings' (e.g. a scoring job's RunConfig).
    """
    if not client.available or isinstance(client, RateLimitedClient):
        return client
    return RateLimitedClient(client, llm_rate_limiter(client.provider, concurrency=concurrency), max_wait_s=max_wait_s)
