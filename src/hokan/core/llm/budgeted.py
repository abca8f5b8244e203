"""Paid calls under a usage ledger: reserve → call → commit (or release), plus one re-ask.

The ledger (``hokan.core.budget``) is duck-typed here; this module needs only::

    reserve(*, cost_usd: Decimal, calls: int = 1, key: str) -> Reservation   # may raise BudgetExceeded
    commit(reservation, *, cost_usd: Decimal) -> None
    release(reservation) -> None

Accounting rules:

- A call that raised LLMTransientError (after the client's retries), LLMRequestError or
  LLMConfigError produced no answer and no charge: the reservation is released. (A 429/5xx
  is not billed by the providers; a timed-out request might be, but the provider reports
  nothing we could commit.)
- An answer that was received is paid, usable or not: its reported cost is committed. For
  LLMOutputError the cost comes from ``error.usage``.
- When the cost source is "none" (the provider reported no price and the model is missing
  from the price table), the estimate is committed instead of 0, so unknown prices never let
  spending slip past the limit.
- What the caller is told is what the ledger committed: the returned ``Completion.usage``
  (and ``LLMOutputError.usage``) has ``cost_usd`` = the sum committed for the calls it covers,
  in whole micro-dollars as the ledger keeps them. With ``cost_source == "none"`` that
  amount is the reservation estimate (it is not a price the provider quoted). A run summary
  that adds up ``usage.cost_usd`` therefore agrees with the ledger to the micro-dollar
  (issue 7 §3: it used to say $0 while the ledger held $0.05 a call).
- LLMOutputError triggers ONE re-ask with a stricter Japanese instruction appended to the
  user prompt, under a new reservation keyed ``{key}:{attempt}``. A second unusable answer
  is re-raised (its cost committed too).

- Idempotency (one payment per key): when ``reserve`` returns a reservation this call did not
  create (its ``created`` attribute is False: the key was committed or expired — paid
  already — or is still open in another process or was left open by a killed worker),
  nothing is sent and ``AlreadyPaid(key, status)`` is raised. A retried or redelivered task
  therefore never pays twice for the same work; an open reservation of a dead worker is
  settled at its estimate by ``settle_stale`` (we cannot know whether the provider charged),
  and the work waits for a new key (the next day's run). Ledgers whose reservations carry
  no ``created`` attribute are trusted to hand out fresh reservations only.

The committed total therefore equals the sum of the provider-reported costs of every
answer received (the estimate standing in for a cost nobody reported).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from hokan.core.errors import AlreadyPaid, LLMOutputError
from hokan.core.llm.client import Completion, JsonRequest, LLMClient, Usage

# Appended to the user prompt for the re-ask (user-facing prompt text: Japanese).
REASK_INSTRUCTION = (
    "\n\n前回の回答はJSONとして解釈できませんでした。"
    "JSONオブジェクトのみを出力してください。"
    "説明文・前置き・コードブロック(```)は付けず、指定されたスキーマのキーだけを含めてください。"
    "値が不明な項目は null にしてください。"
)


class Ledger(Protocol):
    def reserve(self, *, cost_usd: Decimal, calls: int = 1, key: str) -> Any: ...

    def commit(self, reservation: Any, *, cost_usd: Decimal) -> None: ...

    def release(self, reservation: Any) -> None: ...


def complete_json_budgeted(
    client: LLMClient,
    request: JsonRequest,
    *,
    ledger: Ledger,
    estimate_usd: Decimal,
    key: str,
    timeout_s: float | None = None,
    reask: bool = True,
) -> Completion:
    """``client.complete_json`` with a ledger reservation around every paid call.

    estimate_usd: the amount reserved per call (USD), e.g. POWERPLEXY_COST_PER_CALL_USD.
    key: the idempotency key of this piece of work ("lead:42:2026-11-21"); reservation keys
        are ``{key}:1`` and, for the re-ask, ``{key}:2``.
    reask: False disables the re-ask after an unusable answer.

    Returns the Completion of the usable answer; its ``usage.cost_usd`` is what the ledger
    committed (USD, see the module docstring). When a re-ask happened, ``usage`` is the sum
    of both calls and ``attempts`` counts the HTTP requests of both.

    Raises:
        BudgetExceeded: from ``ledger.reserve`` (nothing was called).
        AlreadyPaid: the reservation key already has a reservation made elsewhere (see the
            module docstring); nothing was called.
        LLMTransientError, LLMRequestError, LLMConfigError: from the client (reservation released).
        LLMOutputError: still no JSON object after the re-ask (or with reask=False);
            ``usage`` on it is the total of the paid attempts, ``cost_usd`` as committed.
    """
    paid = Usage()
    attempts = 0
    current = request
    max_calls = 2 if reask else 1
    for call in range(1, max_calls + 1):
        try:
            completion = paid_call(client, current, ledger=ledger, estimate_usd=estimate_usd, key=f"{key}:{call}",
                                   timeout_s=timeout_s)
        except LLMOutputError as exc:
            paid = paid + exc.usage
            if call == max_calls:
                exc.usage = paid
                raise
            current = dataclasses.replace(request, user=request.user + REASK_INSTRUCTION)
            continue
        attempts += completion.attempts
        if call == 1:
            return completion
        return dataclasses.replace(completion, usage=paid + completion.usage, attempts=attempts + call - 1)
    raise AssertionError("unreachable")  # pragma: no cover


def paid_call(client: LLMClient, request: JsonRequest, *, ledger: Ledger, estimate_usd: Decimal, key: str,
              **call_kwargs: Any) -> Completion:
    """One ``client.complete_json(request, **call_kwargs)`` under one reservation keyed ``key``.

    Returns the Completion with ``usage.cost_usd`` = what the ledger committed.

    Raises:
        BudgetExceeded: from ``ledger.reserve`` (nothing was called).
        AlreadyPaid: ``key`` already has a reservation made elsewhere; nothing was called.
        LLMOutputError: the answer was paid but is no JSON object; its ``usage`` is committed.
        anything else from the client: nothing answered, the reservation is released.
    """
    reservation = ledger.reserve(cost_usd=estimate_usd, calls=1, key=key)
    if getattr(reservation, "created", True) is False:
        status = str(getattr(reservation, "status", ""))
        raise AlreadyPaid(f"{key}: この問い合わせは支払済みまたは処理中です（{status}）", key=key, status=status)
    try:
        completion = client.complete_json(request, **call_kwargs)
    except LLMOutputError as exc:
        usage = _committed(exc.usage if isinstance(exc.usage, Usage) else Usage(calls=1), estimate_usd)
        ledger.commit(reservation, cost_usd=usage.cost_usd)
        exc.usage = usage
        raise
    except BaseException:
        # LLMTransientError / LLMRequestError / LLMConfigError: no answer, no charge.
        # Anything else (a bug, KeyboardInterrupt) has no reported cost either.
        ledger.release(reservation)
        raise
    usage = _committed(completion.usage, estimate_usd)
    ledger.commit(reservation, cost_usd=usage.cost_usd)
    return dataclasses.replace(completion, usage=usage)


class BudgetedClient:
    """An LLMClient whose every ``complete_json`` is a :func:`paid_call` (for callers that run
    their own retry loop, such as the estimate adapter; no re-ask here).

    key: the piece of work ("estimate:<uuid>"); call n is reserved as ``{key}:{n}``, or under
        ``request.idempotency_key`` when the request carries one. Other attributes (provider,
        model, available, profile, scope, embed) are the inner client's.
    """

    def __init__(self, inner: LLMClient, *, ledger: Ledger, estimate_usd: Decimal, key: str) -> None:
        self.inner = inner
        self.ledger = ledger
        self.estimate_usd = estimate_usd
        self.key = key
        self._calls = itertools.count(1)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def complete_json(self, request: JsonRequest, **call_kwargs: Any) -> Completion:
        with self._lock:
            number = next(self._calls)
        key = request.idempotency_key or f"{self.key}:{number}"
        return paid_call(self.inner, request, ledger=self.ledger, estimate_usd=self.estimate_usd, key=key,
                         **call_kwargs)

    def __repr__(self) -> str:
        return f"BudgetedClient({self.inner!r}, key={self.key!r})"


# The ledger keeps whole micro-dollars, rounding half up (hokan.core.budget.to_micro_usd).
_MICRO_USD = Decimal("0.000001")


def _committable(usage: Usage, estimate_usd: Decimal) -> Decimal:
    """The amount to commit for one paid call (USD, whole micro-dollars): the reported or
    table cost, or the estimate when nobody priced the call (cost_source "none")."""
    amount = estimate_usd if usage.cost_source == "none" else usage.cost_usd
    return Decimal(amount).quantize(_MICRO_USD, rounding=ROUND_HALF_UP)


def _committed(usage: Usage, estimate_usd: Decimal) -> Usage:
    """``usage`` with ``cost_usd`` replaced by the amount committed for it."""
    return dataclasses.replace(usage, cost_usd=_committable(usage, estimate_usd))
