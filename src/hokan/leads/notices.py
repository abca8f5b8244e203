"""The nightly job's notices (design document 000 §11): success, limit reached, error.

::

    from hokan.leads import notices

    notices.notify_success(records=120, remaining_calls=2_480, remaining_cost_usd=Decimal("124.00"))
    notices.notify_limit_reached(cost_limit_usd=Decimal("150"), call_limit=3000,
                                 spent_usd=Decimal("150.02"), calls=2_731)
    try:
        ...
    except LLMError as exc:
        notices.notify_error(company="株式会社サンプル", error=exc)  # trace taken from exc

Each function renders a Japanese title and body from its template in ``templates/notices/``
next to this module (``success.txt``, ``limit_reached.txt``, ``error.txt``: the first line is
the title, the rest the body; ``str.format`` fields) and hands it to ``hokan.core.notify``
(the transport: the ``hokan.notify`` log at INFO / WARNING / ERROR, and every apprise URL of
``HOKAN_NOTIFY_URLS``). They return True when every configured target accepted the message,
False otherwise, and never raise (a template bug included): the job carries on.
"""

from __future__ import annotations

import logging
import traceback as tb
from decimal import Decimal
from pathlib import Path

from hokan.core import notify
from hokan.core.notify import shorten, shorten_trace

__all__ = ["notify_error", "notify_limit_reached", "notify_success"]

logger = logging.getLogger("hokan.notify")  # the notices' own lines go where the transport logs

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "notices"
MAX_TRACE_CHARS = notify.MAX_TRACE_CHARS
MAX_ERROR_CHARS = 300  # exception messages can embed whole LLM answers
MAX_COMPANY_CHARS = 100


def _notify(kind: str, context: dict[str, object], *, level: int, notify_type: str) -> bool:
    return notify.send_template(TEMPLATE_DIR / f"{kind}.txt", context, kind=kind, level=level, notify_type=notify_type)


def _usd(amount: Decimal) -> str:
    """USD for display with cents: Decimal("124") -> "124.00", Decimal("1234.5") -> "1,234.50"."""
    return f"{Decimal(amount):,.2f}"


def _usd_limit(amount: Decimal) -> str:
    """A configured USD limit as the operator wrote it: 150 -> "150", 150.5 -> "150.5"."""
    amount = Decimal(amount)
    if amount == amount.to_integral_value():
        return f"{amount.to_integral_value():,}"
    return f"{amount.normalize():,f}"


def notify_success(
    *,
    records: int,
    remaining_calls: int,
    remaining_cost_usd: Decimal,
    filled: dict[str, int] | None = None,
    run_id: str = "",
) -> bool:
    """成功通知 (document 000 §11): records done, calls and estimated cost left this month.

    records: leads processed by the run; remaining_calls: paid calls left under the monthly
    call limit; remaining_cost_usd: USD left under the monthly cost limit (shown with cents);
    filled: optional {field label: number of values filled}, shown as given (pass Japanese
    labels such as "資本金"); run_id: optional id of the run, shown when given.
    Returns True when every configured target accepted it; never raises.
    """
    filled_section = ""
    if filled:
        lines = "\n".join(f"  ・{name}: {count:,}件" for name, count in filled.items())
        filled_section = f"\n補完した項目:\n{lines}\n"
    context = {
        "records": records,
        "remaining_calls": remaining_calls,
        "remaining_cost_usd": _usd(remaining_cost_usd),
        "filled_section": filled_section,
        "run_section": f"\n実行ID: {run_id}\n" if run_id else "",
    }
    return _notify("success", context, level=logging.INFO, notify_type="success")


def notify_limit_reached(*, cost_limit_usd: Decimal, call_limit: int, spent_usd: Decimal, calls: int) -> bool:
    """警告通知 (document 000 §11): 「月額{cost_limit}USDまたは{call_limit:,}件超過」.

    cost_limit_usd / call_limit: the configured monthly limits (POWERPLEXY_MONTHLY_COST_LIMIT_USD,
    POWERPLEXY_MONTHLY_CALL_LIMIT) — pass the real values, the text quotes them; spent_usd and
    calls: this month's usage. Returns True when every configured target accepted it; never raises.
    """
    context = {
        "cost_limit_usd": _usd_limit(cost_limit_usd),
        "call_limit": call_limit,
        "spent_usd": _usd(spent_usd),
        "calls": calls,
    }
    return _notify("limit_reached", context, level=logging.WARNING, notify_type="warning")


def notify_error(*, company: str, error: BaseException | str, traceback_text: str | None = None) -> bool:
    """エラー通知 (document 000 §11): the company being enriched, the error and its stack trace.

    error: the exception (its trace is formatted from ``__traceback__`` unless
    ``traceback_text`` is given) or a message. The notice carries the error message cut to
    MAX_ERROR_CHARS and the trace cut to about MAX_TRACE_CHARS (head and tail, see
    ``shorten_trace``); the log gets the whole trace. Returns True when every configured
    target accepted it; never raises.
    """
    if isinstance(error, BaseException):
        message = f"{type(error).__name__}: {error}"
        if traceback_text is None and error.__traceback__ is not None:
            traceback_text = "".join(tb.format_exception(error))
    else:
        message = str(error)
    full_trace = (traceback_text or "").rstrip()
    context = {
        "company": shorten(company, MAX_COMPANY_CHARS) or "（不明）",
        "error": shorten(message, MAX_ERROR_CHARS),
        "traceback": shorten_trace(full_trace) if full_trace else "（なし）",
    }
    if len(full_trace) > MAX_TRACE_CHARS:
        logger.error("エラー通知の全スタックトレース (%s):\n%s", company, full_trace)
    return _notify("error", context, level=logging.ERROR, notify_type="failure")
