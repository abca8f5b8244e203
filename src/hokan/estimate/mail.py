"""Estimate e-mails (design document 004 §9.2-§9.3): Resend's API, else SMTP when configured.

Transport: ``RESEND_API_KEY`` set → ``POST {RESEND_API_BASE_URL}/emails`` (Resend's real
shape: ``{"from", "to": [...], "subject", "html", "text", "attachments": [{"filename",
"content": base64}]}``, ``Authorization: Bearer``); else ``EMAIL_HOST`` set → SMTP through
Django's mail backend; else nothing is sent (``MailNotConfigured``).

The Resend request goes through ``hokan.core.web.http.guarded_client`` (SSRF check at connect
time with ``HOKAN_FETCH_ALLOW_HOSTS``, 20 s timeouts, answer cap): a ``RESEND_API_BASE_URL``
on a private address is refused before anything is sent (``MailError``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from hokan.core.errors import FetchError, FetchTimeout, HokanError, TransientError
from hokan.core.web.http import guarded_client, parse_retry_after
from hokan.estimate.pricing import format_price

CUSTOMER_SUBJECT = "【CloudNature】概算お見積もりが完成しました"
OPERATOR_SUBJECT = "【CloudNature】新しいお見積もり依頼がありました"
PDF_FILENAME = "概算お見積書.pdf"
RESEND_TIMEOUT_S = 20.0  # each of connect / read / write


class MailError(HokanError):
    """Sending failed. ``status_code``: the Resend HTTP status, or None (SMTP / network)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class MailNotConfigured(MailError):
    """Neither RESEND_API_KEY nor EMAIL_HOST is set."""


class MailUnavailable(MailError, TransientError):
    """Resend answered 429 or 5xx, or did not answer (timeout, connection error): worth sending
    again later. retry_after_s: Resend's Retry-After in seconds, or None."""

    def __init__(self, message: str, *, status_code: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Mail:
    to: list[str]
    subject: str
    text: str
    html: str
    attachment: bytes | None = None


def mail_configured() -> bool:
    return bool(settings.RESEND_API_KEY or settings.EMAIL_HOST)


def send(mail: Mail) -> str:
    """Send through Resend or SMTP; returns "resend" or "smtp".

    Raises:
        MailError: the provider refused, the connection failed or was refused by the SSRF
            guard; MailUnavailable (a TransientError) for Resend's 429 / 5xx, a timeout or a
            connection error; MailNotConfigured when neither transport is set.
    """
    if settings.RESEND_API_KEY:
        _send_resend(mail)
        return "resend"
    if settings.EMAIL_HOST:
        _send_smtp(mail)
        return "smtp"
    raise MailNotConfigured("メール送信が設定されていません（RESEND_API_KEY / EMAIL_HOST）")


def _send_resend(mail: Mail) -> None:
    payload: dict[str, Any] = {"from": settings.EMAIL_FROM, "to": mail.to, "subject": mail.subject,
                               "html": mail.html, "text": mail.text}
    if mail.attachment is not None:
        payload["attachments"] = [{"filename": PDF_FILENAME, "content": base64.b64encode(mail.attachment).decode()}]
    url = settings.RESEND_API_BASE_URL.rstrip("/") + "/emails"
    try:
        with guarded_client(timeout_s=RESEND_TIMEOUT_S,
                            headers={"Authorization": f"Bearer {settings.RESEND_API_KEY}"}) as http:
            response = http.post(url, json=payload)
    except (httpx.HTTPError, FetchError) as exc:
        error = MailUnavailable if isinstance(exc, (httpx.TransportError, FetchTimeout)) else MailError
        raise error(f"Resend に接続できませんでした: {exc}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise MailUnavailable(f"Resend が一時的に使えません: HTTP {response.status_code}: {response.text[:200]}",
                              status_code=response.status_code, retry_after_s=parse_retry_after(response.headers))
    if response.status_code >= 300:
        raise MailError(f"Resend がエラーを返しました: HTTP {response.status_code}: {response.text[:200]}",
                        status_code=response.status_code)


def _send_smtp(mail: Mail) -> None:
    message = EmailMultiAlternatives(mail.subject, mail.text, settings.EMAIL_FROM, mail.to,
                                     connection=get_connection("django.core.mail.backends.smtp.EmailBackend",
                                                               timeout=20))
    message.attach_alternative(mail.html, "text/html")
    if mail.attachment is not None:
        message.attach(PDF_FILENAME, mail.attachment, "application/pdf")
    try:
        message.send()
    except OSError as exc:
        raise MailError(f"SMTP での送信に失敗しました: {exc}") from exc


def _html(paragraphs: list[str]) -> str:
    body = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f'<div style="font-family: sans-serif; line-height: 1.7;">{body}</div>'


def frontend_link() -> str:
    """``FRONTEND_URL`` for the customer mail (document 004 §10), or "" while it is unset, not
    http(s), or points at this machine (``http://localhost:3001`` is the development default: a customer
    must never get a link to localhost)."""
    url = str(getattr(settings, "FRONTEND_URL", "") or "").strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or host == "localhost" or host.endswith(".localhost") \
            or host in ("127.0.0.1", "::1"):
        return ""
    return url


def customer_mail(to: str, contact: dict[str, str], estimate: dict[str, Any], *, attachment: bytes | None) -> Mail:
    """§9.2: the customer's mail (the PDF attached when there is one; ``frontend_link`` above
    the signature when there is one)."""
    total = estimate.get("total_cost") or {}
    company, name = contact.get("company", ""), contact.get("name", "")
    if company and name:
        addressee = f"{company}\n{name} 様"
    elif company or name:
        addressee = f"{company} 御中" if company else f"{name} 様"
    else:
        addressee = "お客様"
    lines = [
        addressee,
        "このたびはCloudNatureのAI見積もりをご利用いただき、誠にありがとうございます。\n概算お見積もりが完成しましたのでお知らせいたします。",
        f"件名: {estimate.get('project_name', '')}\n"
        f"標準開発: 約{format_price(total.get('standard', 0))}（税別）\n"
        f"ハイブリッド開発: 約{format_price(total.get('hybrid', 0))}（税別）",
        ("詳細は添付の「概算お見積書.pdf」をご確認ください。" if attachment is not None
         else "お見積書のPDFは、後ほど担当者よりお送りいたします。"),
        "本見積もりはご回答内容をもとにした概算です。より正確なお見積もりのため、担当者よりご連絡を差し上げます。\nご不明な点がございましたら、お気軽にお問い合わせください。",
        settings.ESTIMATE_ISSUER_NAME,
    ]
    link = frontend_link()
    if link:
        lines.insert(-1, f"AI見積もりのページ: {link}")
    return Mail(to=[to], subject=CUSTOMER_SUBJECT, text="\n\n".join(lines), html=_html(lines), attachment=attachment)


def operator_mail(to: str, contact: dict[str, str], estimate: dict[str, Any], industry_label: str, *,
                  attachment: bytes | None) -> Mail:
    """§9.3: the operator's notice: name, company, e-mail, project, amounts, industry."""
    total = estimate.get("total_cost") or {}
    lines = [
        "新しいお見積もり依頼がありました。",
        f"顧客名: {contact.get('name') or '（未入力）'}\n"
        f"会社名: {contact.get('company') or '（未入力）'}\n"
        f"メール: {contact.get('email') or '（未入力）'}\n"
        f"プロジェクト名: {estimate.get('project_name', '')}\n"
        f"概算金額: 標準開発 {format_price(total.get('standard', 0))} / ハイブリッド開発 {format_price(total.get('hybrid', 0))}\n"
        f"業種: {industry_label}",
    ]
    return Mail(to=[to], subject=OPERATOR_SUBJECT, text="\n\n".join(lines), html=_html(lines), attachment=attachment)
