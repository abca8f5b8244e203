"""The one retry layer of the provider clients (STYLE.md §2: "retries in exactly one layer").

Only ``LLMTransientError`` (429, 408, 5xx, timeouts, connection errors) is retried; every
other error is raised at once. Waits:

- the provider's requested delay (``retry_after_s``: Retry-After, ``retry-after-ms``, Gemini's
  ``RetryInfo.retryDelay``) when it gave one;
- else, for HTTP 429, ``rate_limit_wait_s`` (document 000 §12: 「API429時は 10分スリープ再試行」);
- else exponential backoff with jitter (``backoff_initial_s`` doubling up to ``backoff_max_s``).

A requested delay longer than ``max_wait_s`` is not slept through: the error is raised at
once with its ``retry_after_s``, so that a Celery task can schedule the retry instead of
holding a worker. ``max_retries=0`` turns retrying off (Celery code paths).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from hokan.core.errors import LLMTransientError

T = TypeVar("T")
log = logging.getLogger("hokan.core.llm")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry settings of one client. Times in seconds; max_retries counts retries, not attempts."""

    max_retries: int = 3
    rate_limit_wait_s: float = 600.0
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 60.0
    max_wait_s: float = 900.0

    def call(self, attempt: Callable[[], T], *, provider: str, sleep: Callable[[float], None]) -> tuple[T, int]:
        """Run ``attempt`` until it succeeds or the policy gives up: (result, attempts made).

        Raises:
            LLMTransientError: still failing after the retries, or asked to wait > max_wait_s.
            Anything else ``attempt`` raises, unchanged and at once.
        """
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_initial_s, max=self.backoff_max_s, jitter=self.backoff_initial_s
        )

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, LLMTransientError):
                if exc.retry_after_s is not None:
                    return exc.retry_after_s
                if exc.status_code == 429:
                    return self.rate_limit_wait_s
            return float(backoff(state))

        def asked_to_wait_too_long(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return (
                isinstance(exc, LLMTransientError)
                and exc.retry_after_s is not None
                and exc.retry_after_s > self.max_wait_s
            )

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0
            log.warning("%s: retry %d after %.1fs: %s", provider, state.attempt_number, delay, exc)

        attempts = 0

        def counted() -> T:
            nonlocal attempts
            attempts += 1
            return attempt()

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1) | asked_to_wait_too_long,
            wait=wait,
            retry=retry_if_exception_type(LLMTransientError),
            sleep=sleep,
            reraise=True,
            before_sleep=log_retry,
        )
        return retrying(counted), attempts
