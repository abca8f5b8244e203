"""Notifications, transport only (design document 000 §11): a rendered message to every target.

::

    from hokan.core import notify

    message = notify.render(TEMPLATES / "success.txt", {"records": 120}, kind="success")
    notify.send(message, level=logging.INFO, notify_type="success")   # True / False, never raises

Apps own their notices (what is said, the templates): e.g. ``hokan.leads.notices`` for the
nightly job. A template file is a title line, then the body, with ``str.format`` fields.

``send`` logs the message on the ``hokan.notify`` logger (at ``level``; the settings send that
logger to the console) and sends it through apprise to every URL in
``settings.HOKAN_NOTIFY_URLS`` (comma- or space-separated apprise URLs: Slack
``https://hooks.slack.com/services/…`` or ``slack://…``, mail ``mailto://`` (plain SMTP) /
``mailtos://`` (TLS), JSON webhooks ``json://`` / ``jsons://``, any apprise URL). With no URL
the log and the console are the only output. ``notify_type``: apprise's "info", "success",
"warning" or "failure".

It returns True when every configured target accepted the message (also when none is
configured), False otherwise, and NEVER raises: a failed notification (unparseable or refused
URL, target down, timeout) is logged with its reason and the caller carries on; so does
``send_template`` for a template that cannot be rendered. Secrets in URLs are never logged
(apprise's privacy form of the URL, or just its scheme). Each target gets
``settings.HOKAN_NOTIFY_TIMEOUT_S`` seconds to connect and to answer (unless its URL sets
apprise's own ``cto=`` / ``rto=``), and one call is cut off after three times that.

Message size: a chat message is no place for a 200-frame trace, and Slack's Block Kit section
holds at most 3,000 characters (api.slack.com/reference/block-kit/blocks#section; apprise's
``slack://…?blocks=yes`` puts the whole body in one): ``shorten`` and ``shorten_trace`` cut
text for a notice; the log keeps all of it.

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from apprise import Apprise, AppriseAsset, NotifyFormat
from apprise.plugins.email import NotifyEmail
from apprise.utils.parse import parse_urls
from django.conf import settings

from hokan.core.errors import FetchBlocked
from hokan.core.web.ssrf import check_url

__all__ = ["Message", "parse_notify_urls", "render", "send", "send_template", "shorten", "shorten_trace"]

logger = logging.getLogger("hokan.notify")

MAX_TRACE_CHARS = 2_000  # a notice's trace: head and tail (see shorten_trace)


@dataclass(frozen=True)
class Message:
    """A rendered notification: ``kind`` (its name, for the log), ``title`` (one line) and
    ``body`` (plain text, Japanese)."""

    kind: str
    title: str
    body: str


def render(template: Path, context: Mapping[str, object], *, kind: str = "") -> Message:
    """Render a template file (first line: the title; the rest: the body) with ``context``
    (``str.format`` fields). ``kind`` defaults to the file's stem.

    Raises:
        OSError: the file cannot be read.
        ValueError: the template lacks a title line or a body (names the path).
        KeyError: the template names a field missing from ``context``.
    """
    title, _, body = template.read_text(encoding="utf-8").partition("\n")
    if not title.strip() or not body.strip():
        raise ValueError(f"{template}: expected a title line, then the body")
    return Message(kind or template.stem, title.strip().format_map(context), body.format_map(context).rstrip() + "\n")


def shorten(text: str, limit: int) -> str:
    """``text`` stripped and cut to at most ``limit`` characters, marking the cut with 「…」."""
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


def send(message: Message, *, level: int = logging.INFO, notify_type: str = "info") -> bool:
    """Log ``message`` at ``level`` and send it to every URL of HOKAN_NOTIFY_URLS.

    Returns True when every configured target accepted it (also when none is configured);
    never raises (see the module docstring).
    """
    try:
        logger.log(level, "%s\n%s", message.title, message.body)
        return _deliver(message, notify_type)
    except Exception:  # noqa: BLE001 - a notification must never fail the caller (issue 3 §5)
        logger.exception("通知 %s の送信中に予期しないエラーが発生しました", message.kind)
        return False


def send_template(template: Path, context: Mapping[str, object], *, kind: str = "", level: int = logging.INFO,
                  notify_type: str = "info") -> bool:
    """``send(render(template, context, kind=kind), ...)``; a template that cannot be rendered
    is logged and gives False. Never raises."""
    try:
        message = render(template, context, kind=kind)
    except Exception:  # noqa: BLE001 - a template bug must not fail the caller either
        logger.exception("通知 %s を作成できませんでした (%s)", kind or template.stem, template)
        return False
    return send(message, level=level, notify_type=notify_type)
