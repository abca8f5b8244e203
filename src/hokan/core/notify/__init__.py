"""Notifications of the nightly job (design document 000 §11): success, limit reached, error.

::

    from hokan.core import notify

    notify.notify_success(records=120, remaining_calls=2_480, remaining_cost_usd=Decimal("124.00"))
    notify.notify_limit_reached(cost_limit_usd=Decimal("150"), call_limit=3000,
                                spent_usd=Decimal("150.02"), calls=2_731)
    try:
        ...
    except LLMError as exc:
        notify.notify_error(company="株式会社サンプル", error=exc)  # trace taken from exc

Each function renders a Japanese title and body from a template file next to this module
(``success.txt``, ``limit_reached.txt``, ``error.txt``: the first line is the title, the
rest the body; ``str.format`` fields), logs them on the ``hokan.notify`` logger (INFO, WARNING,
ERROR; the settings send that logger to the console), and sends them through apprise to every
URL in ``settings.HOKAN_NOTIFY_URLS`` (comma- or space-separated apprise URLs: Slack
``https://hooks.slack.com/services/…`` or ``slack://…``, mail ``mailto://`` (plain SMTP) /
``mailtos://`` (TLS), JSON webhooks ``json://`` / ``jsons://``, any apprise URL). With no URL
the log and the console are the only output.

They return True when every configured target accepted the message (also when none is
configured), False otherwise, and NEVER raise: a failed notification (unparseable or refused
URL, target down, timeout, even a template bug) is logged with its reason and the job carries
on. Secrets in URLs are never logged (apprise's privacy form of the URL, or just its scheme).
Each target gets ``settings.HOKAN_NOTIFY_TIMEOUT_S`` seconds to connect and to answer (unless
its URL sets apprise's own ``cto=`` / ``rto=``), and one call is cut off after three times that.

SSRF guard. apprise opens its own connections (requests for HTTP, smtplib for mail), so they
cannot go through ``hokan.core.web``'s fetcher. The project rule "every fetch of a URL goes
through the SSRF guard" is kept as far as it can be from outside apprise:

- before a URL is handed to apprise, the host apprise will connect to *as written in the URL*
  (the URL host for self-hosted services such as ``json://``, ``xml://``, ``mmost://``; the SMTP
  server for mail, i.e. ``smtp=`` or the host or apprise's provider table) is checked with
  ``hokan.core.web.check_url``: it must resolve to public addresses only, unless it is listed
  in ``HOKAN_FETCH_ALLOW_HOSTS`` (tests list 127.0.0.1). A refused URL is logged and skipped;
- apprise is told not to follow HTTP redirects (``AppriseAsset(http_redirects=False)``), so a
  checked host cannot send us on to an internal one.

Limits, accepted because these URLs come from the operator's environment, never from users:
the check is a pre-flight one (apprise resolves the name again when it connects, so DNS
rebinding between the two is not prevented); services whose host is fixed inside apprise
(``slack://``, ``discord://`` … hard-coded public API hosts) are not checked, since nothing in
the URL chooses where they connect; hosts a service names in its answers (e.g. Slack's file
upload URLs) are not checked. A plugin whose URL "host" is not a host (``ntfy://topic`` means
the ntfy.sh cloud) is checked anyway and refused when that name does not resolve publicly:
write the server explicitly (``ntfys://ntfy.sh/topic``).
"""

from __future__ import annotations

import logging
import traceback as tb
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from apprise import Apprise, AppriseAsset, NotifyFormat
from apprise.plugins.email import NotifyEmail
from apprise.utils.parse import parse_urls
from django.conf import settings

from hokan.core.errors import FetchBlocked
from hokan.core.web.ssrf import check_url

__all__ = ["notify_error", "notify_limit_reached", "notify_success", "parse_notify_urls"]

logger = logging.getLogger("hokan.notify")

TEMPLATE_DIR = Path(__file__).resolve().parent

# Slack's Block Kit section text holds at most 3,000 characters (api.slack.com/reference/
# block-kit/blocks#section; apprise's slack://…?blocks=yes puts the whole body in one), and a
# chat message is no place for a 200-frame trace: the notice carries the head and the tail of
# the trace (the innermost frames and the exception), the log always has all of it.
MAX_TRACE_CHARS = 2_000
MAX_ERROR_CHARS = 300  # exception messages can embed whole LLM answers
MAX_COMPANY_CHARS = 100


@dataclass(frozen=True)
class Message:
    """A rendered notification: ``title`` (one line) and ``body`` (plain text, Japanese)."""

    kind: str
    title: str
    body: str


def render(kind: str, context: dict[str, object]) -> Message:
    """Render template ``<kind>.txt`` with ``context`` (``str.format`` fields).

    Raises:
        ValueError: the template lacks a title line or a body (names the path).
        KeyError: the template names a field missing from ``context``.
    """
    path = TEMPLATE_DIR / f"{kind}.txt"
    title, _, body = path.read_text(encoding="utf-8").partition("\n")
    if not title.strip() or not body.strip():
        raise ValueError(f"{path}: expected a title line, then the body")
    return Message(kind, title.strip().format_map(context), body.format_map(context).rstrip() + "\n")


def _usd(amount: Decimal) -> str:
    """USD for display with cents: Decimal("124") -> "124.00", Decimal("1234.5") -> "1,234.50"."""
    return f"{Decimal(amount):,.2f}"


def _usd_limit(amount: Decimal) -> str:
    """A configured USD limit as the operator wrote it: 150 -> "150", 150.5 -> "150.5"."""
    amount = Decimal(amount)
    if amount == amount.to_integral_value():
        return f"{amount.to_integral_value():,}"
    return f"{amount.normalize():,f}"


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marking the cut with 「…」."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shorten_trace(text: str, limit: int = MAX_TRACE_CHARS) -> str:
    """A stack trace cut to about ``limit`` characters: the first third and the last two thirds
    (the innermost frames and the exception line), whole lines, with a 「（中略: N行）」 line."""
    text = text.rstrip()
    if len(text) <= limit:
        return text
    lines = text.splitlines()
    head: list[str] = []
    tail: list[str] = []
    budget_head, budget_tail = limit // 3, limit - limit // 3
    for line in lines:
        if sum(len(x) + 1 for x in head) + len(line) + 1 > budget_head:
            break
        head.append(line)
    for line in reversed(lines[len(head) :]):
        if sum(len(x) + 1 for x in tail) + len(line) + 1 > budget_tail:
            break
        tail.insert(0, line)
    if not tail:  # one enormous last line
        tail = [lines[-1][-budget_tail:]]
    omitted = len(lines) - len(head) - len(tail)
    return "\n".join([*head, f"（中略: {omitted}行。全文はログを参照）", *tail])


def parse_notify_urls(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split a HOKAN_NOTIFY_URLS value into apprise URLs.

    Commas and whitespace separate URLs, but a comma inside a URL's own list (``to=a@x,b@x``)
    stays: apprise's ``parse_urls`` starts a new URL only where a ``scheme://`` begins.
    A list or tuple (settings overridden in code) is taken as already split.
    """
    if isinstance(value, (list, tuple)):
        return [u.strip() for u in value if u and u.strip()]
    return [u for u in parse_urls(value or "") if u]


def _network_target(plugin: object) -> tuple[str, int] | None:
    """(host, port) apprise will connect to as chosen by the URL, or None when the plugin's
    service host is fixed inside apprise (Slack, Discord, …) or it opens no connection."""
    secure = bool(getattr(plugin, "secure", False))
    if isinstance(plugin, NotifyEmail):
        return plugin.smtp_host, int(plugin.port or (465 if secure else 25))
    tokens = getattr(plugin, "template_tokens", {}) or {}
    host = getattr(plugin, "host", None)
    if "host" not in tokens or not host:
        return None
    return str(host), int(getattr(plugin, "port", None) or (443 if secure else 80))


def _check_target(plugin: object, label: str) -> bool:
    """True when the plugin may connect (SSRF guard, see the module docstring); logs refusals."""
    target = _network_target(plugin)
    if target is None:
        return True
    host, port = target
    bare = host.strip("[]")
    url_host = f"[{bare}]" if ":" in bare else bare
    try:
        check_url(f"http://{url_host}:{port}/", allow_hosts=settings.HOKAN_FETCH_ALLOW_HOSTS)
    except FetchBlocked as exc:
        logger.warning("通知先 %s への送信を拒否しました (%s): %s", label, exc.reason, exc)
        return False
    return True


def _deliver(message: Message, notify_type: str) -> bool:
    """Send ``message`` to every URL of HOKAN_NOTIFY_URLS; True when all accepted it."""
    urls = parse_notify_urls(settings.HOKAN_NOTIFY_URLS)
    # No redirects (SSRF, see above); keep apprise's delivery bookkeeping in memory, never on disk.
    asset = AppriseAsset(app_id="hokan", app_desc="hokan 補完バッチ", http_redirects=False, storage_mode="memory")
    delivered = 0
    for url in urls:
        try:
            delivered += _deliver_one(url, message, notify_type, asset)
        except Exception:  # noqa: BLE001 - one broken target must not keep the others from their notice
            logger.exception("通知 %s の送信中に予期しないエラーが発生しました (%s://…)", message.kind, urlsplit(url).scheme)
    return delivered == len(urls)


def _deliver_one(url: str, message: Message, notify_type: str, asset: AppriseAsset) -> bool:
    plugin = Apprise.instantiate(url, asset=asset)
    if plugin is None:
        logger.warning("通知先URLを解釈できません (%s://…)。HOKAN_NOTIFY_URLS を確認してください", urlsplit(url).scheme)
        return False
    label = plugin.url(privacy=True)
    if not _check_target(plugin, label):
        return False
    timeout_s = float(settings.HOKAN_NOTIFY_TIMEOUT_S)
    query = urlsplit(url).query
    if "cto=" not in query:
        plugin.socket_connect_timeout = timeout_s
    if "rto=" not in query:
        plugin.socket_read_timeout = timeout_s
    sender = Apprise(asset=asset)
    sender.add(plugin)
    result = sender.notify(
        body=message.body,
        title=message.title,
        notify_type=notify_type,
        body_format=NotifyFormat.TEXT,
        timeout=3 * timeout_s,
    )
    if not result:
        logger.warning("通知 %s を %s に送信できませんでした", message.kind, label)
        return False
    logger.debug("通知 %s を %s に送信しました", message.kind, label)
    return True


def _notify(kind: str, context: dict[str, object], *, level: int, notify_type: str) -> bool:
    try:
        message = render(kind, context)
        logger.log(level, "%s\n%s", message.title, message.body)
        return _deliver(message, notify_type)
    except Exception:  # noqa: BLE001 - a notification must never fail the job (issue 3 §5)
        logger.exception("通知 %s の送信中に予期しないエラーが発生しました", kind)
        return False


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
        "company": _shorten(company, MAX_COMPANY_CHARS) or "（不明）",
        "error": _shorten(message, MAX_ERROR_CHARS),
        "traceback": shorten_trace(full_trace) if full_trace else "（なし）",
    }
    if len(full_trace) > MAX_TRACE_CHARS:
        logger.error("エラー通知の全スタックトレース (%s):\n%s", company, full_trace)
    return _notify("error", context, level=logging.ERROR, notify_type="failure")
