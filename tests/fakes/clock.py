"""A fake clock for tests that must not wait on the wall clock: seconds that move only when
someone sleeps through it (limiters, backoffs, polls take ``clock`` and ``clock.sleep``)."""

from __future__ import annotations


class FakeClock:
    """``clock()`` → the current fake seconds; ``clock.sleep(s)`` records ``s`` and moves on."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
