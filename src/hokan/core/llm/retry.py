"""The one retry layer of hokan's paid and remote calls (STYLE.md §2: "retries in exactly one layer").

``RetryPolicy.call(attempt, ...)`` runs ``attempt`` until it succeeds, a non-retried error is
raised, the retries are used up, or the overall **deadline** would pass. Users: the LLM clients
(``openai_compat``, ``gemini``; only ``LLMTransientError`` is retried), the estimate adapters
(their single loop also retries invalid answers), and the Notion client (its own transient
error type). Waits:

- the server's requested delay (``retry_after_s`` of the error: Retry-After, ``retry-after-ms``,
  Gemini's ``RetryInfo.retryDelay``) when it gave one;
- else, for HTTP 429, ``rate_limit_wait_s`` (document 000 §12: 「API429時は 10分スリープ再試行」;
  None = back off like a 5xx);
- else exponential backoff with jitter (``backoff_initial_s`` doubling up to ``backoff_max_s``);
- errors that carry no status (an invalid answer of a retried type other than a transient
  error) are asked again at once: the provider is up.

A requested delay longer than ``max_wait_s``: ``long_wait="raise"`` (default) does not sleep
through it, the error is raised at once with its ``retry_after_s`` so that a Celery task can
schedule the retry instead of holding a worker; ``long_wait="cap"`` waits ``max_wait_s`` and
tries again (request paths with a short cap). ``max_retries=0`` turns retrying off.

Deadline (``Deadline``, monotonic seconds): no attempt starts after it, no wait is slept that
would end past it, and every socket operation of the attempt is cut at it
(``hokan.core.web.http.socket_deadline``; the attempt also gets the seconds left, to cap its
own timeout). When it stops the calls, ``LLMDeadlineExceeded`` (an ``LLMTransientError``) is
raised, chained to the last error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from hokan.core.errors import LLMDeadlineExceeded, LLMTransientError
from hokan.core.ratelimit import run_attempt
from hokan.core.web.http import socket_deadline

T = TypeVar("T")
log = logging.getLogger("hokan.core.llm")


@dataclass(frozen=True)
class Deadline:
    """An overall deadline: ``at`` in ``clock()`` seconds (default ``time.monotonic``).

    ``seconds`` is the length it was made with (for messages), None when made from ``at``.
    """

    at: float
    seconds: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock() + seconds, seconds, clock)

    @classmethod
    def of(
        cls,
        *,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
        default_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline | None:
        """The earliest of ``deadline`` (a Deadline, or ``clock()`` seconds), ``deadline_s`` and
        ``default_s`` (a client's own limit) from now; None when none is given."""
        found: list[Deadline] = []
        if isinstance(deadline, Deadline):
            found.append(deadline)
        elif deadline is not None:
            found.append(cls(float(deadline), None, clock))
        for seconds in (deadline_s, default_s):
            if seconds is not None:
                found.append(cls.after(seconds, clock=clock))
        return min(found, key=lambda d: d.remaining()) if found else None

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self.clock()

    def describe(self) -> str:
        return f"{self.seconds:g}秒" if self.seconds is not None else "期限"


def capped_timeout(timeout_s: float, left: float | None) -> float:
    """A request timeout (seconds): ``timeout_s`` cut to ``left``, the seconds before the
    deadline (None = no deadline); never below 1 ms."""
    return timeout_s if left is None else max(0.001, min(timeout_s, left))


@dataclass(frozen=True)
class RetryPolicy:
    """Retry settings of one caller. Times in seconds; max_retries counts retries, not attempts.

    retry_on: the exception types retried (default ``LLMTransientError``; never
        ``LLMDeadlineExceeded``). long_wait: "raise" | "cap" (module docstring).
    rate_limit_wait_s: the wait after a 429 without a requested delay; None = backoff.
    """

    max_retries: int = 3
    rate_limit_wait_s: float | None = 600.0
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 60.0
    max_wait_s: float = 900.0
    long_wait: Literal["raise", "cap"] = "raise"
    retry_on: tuple[type[BaseException], ...] = (LLMTransientError,)

    def call(
        self,
        attempt: Callable[[float | None], T],
        *,
        provider: str,
        sleep: Callable[[float], None] = time.sleep,
        deadline: Deadline | None = None,
    ) -> tuple[T, int]:
        """Run ``attempt(seconds_left)`` until it succeeds or the policy gives up.

        attempt: called with the seconds left before ``deadline`` (None without one); it
            should cap its own request timeout with it. provider: a name for logs and errors.
        Returns (result, attempts made).

        Raises:
            LLMDeadlineExceeded: the deadline passed, or the next wait would end past it
                (chained to the last error; ``retry_after_s`` kept).
            The last error of a ``retry_on`` type when the retries are used up (or, with
            long_wait="raise", when asked to wait > max_wait_s); any other error at once.
        """
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_initial_s, max=self.backoff_max_s, jitter=self.backoff_initial_s
        )
        waits: dict[int, float] = {}
        out_of_time = False
        attempts = 0

        def requested(state: RetryCallState) -> float | None:
            exc = state.outcome.exception() if state.outcome else None
            return getattr(exc, "retry_after_s", None)

        def wait(state: RetryCallState) -> float:
            if state.attempt_number not in waits:  # computed once: the stop check sees the same wait
                exc = state.outcome.exception() if state.outcome else None
                delay = requested(state)
                status = getattr(exc, "status_code", None)
                if delay is None and status == 429 and self.rate_limit_wait_s is not None:
                    delay = self.rate_limit_wait_s
                if delay is None:
                    delay = float(backoff(state)) if isinstance(exc, LLMTransientError) or status else 0.0
                if self.long_wait == "cap":
                    delay = min(delay, self.max_wait_s)
                waits[state.attempt_number] = delay
            return waits[state.attempt_number]

        def asked_to_wait_too_long(state: RetryCallState) -> bool:
            delay = requested(state)
            return self.long_wait == "raise" and delay is not None and delay > self.max_wait_s

        def past_deadline(state: RetryCallState) -> bool:
            nonlocal out_of_time
            if deadline is not None and wait(state) >= deadline.remaining():
                out_of_time = True
            return out_of_time

        def give_up(state: RetryCallState) -> bool:
            # In this order: the retries used up, a wait too long to sleep through, the deadline.
            return (state.attempt_number >= self.max_retries + 1 or asked_to_wait_too_long(state)
                    or past_deadline(state))

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, self.retry_on) and not isinstance(exc, LLMDeadlineExceeded)

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0
            log.warning("%s: retry %d after %.1fs: %s", provider, state.attempt_number, delay, exc)

        def counted() -> T:
            nonlocal attempts, out_of_time
            if deadline is None:
                attempts += 1
                return run_attempt(lambda: attempt(None))  # through the limiter's gate, if any
            left = deadline.remaining()
            if left <= 0:
                out_of_time = True
                raise self._deadline_error(provider, deadline, attempts, None)
            attempts += 1
            with socket_deadline(time.monotonic() + left):
                return run_attempt(lambda: attempt(left), left)

        retrying = Retrying(
            stop=give_up,
            wait=wait,
            retry=retry_if_exception(retryable),
            sleep=sleep,
            reraise=True,
            before_sleep=log_retry,
        )
        try:
            return retrying(counted), attempts
        except LLMDeadlineExceeded:
            raise
        except self.retry_on as exc:
            if out_of_time or (deadline is not None and deadline.remaining() <= 0):
                raise self._deadline_error(provider, deadline, attempts, exc) from exc
            raise

    @staticmethod
    def _deadline_error(
        provider: str, deadline: Deadline | None, attempts: int, last: BaseException | None
    ) -> LLMDeadlineExceeded:
        assert deadline is not None
        reason = f": {last}" if last is not None else ""
        return LLMDeadlineExceeded(
            f"{provider}: 制限時間({deadline.describe()})内に応答を得られませんでした({attempts}回試行){reason}",
            provider=provider,
            deadline_s=deadline.seconds,
            attempts=attempts,
            retry_after_s=getattr(last, "retry_after_s", None),
            status_code=getattr(last, "status_code", None),
        )
