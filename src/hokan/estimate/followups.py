"""The after-response work of design document 004 §9.1 (``_send_emails``).

``run_followups(estimate_id)``: contact from step 13 → Notion page → PDF → customer mail
(PDF attached) → operator mail (PDF attached). Each part failing is logged and recorded in
``Estimate.followups`` and never affects the estimate or the other parts; a PDF failure
sends the mails without attachment (§11.1). Outcomes: "ok" | "skipped:<reason>" |
"failed:<reason>".

Who runs it and when (a durable job per estimate, retried when a Notion page or a mail
failed): ``tasks`` (``ESTIMATE_FOLLOWUPS``, Celery, the drainer process of ``drainer``).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.conf import settings
from django.utils import timezone

from hokan.core.errors import HokanError
from hokan.estimate import mail, notion
from hokan.estimate.catalogue import industry_label
from hokan.estimate.models import Estimate
from hokan.estimate.pdf import Issuer, render_quotation
from hokan.estimate.answers import parse_contact

log = logging.getLogger(__name__)


def quotation_pdf(estimate: Estimate) -> bytes:
    """The PDF of a completed estimate (raises PdfError / any reportlab error)."""
    contact = parse_contact(estimate.session.answers.get("step_13"))
    issued = timezone.localdate(estimate.completed_at) if estimate.completed_at else date.today()
    issuer = Issuer(settings.ESTIMATE_ISSUER_NAME, settings.ESTIMATE_ISSUER_ADDRESS, settings.ESTIMATE_ISSUER_CONTACT)
    return render_quotation(estimate.raw_json, contact, estimate_id=estimate.pk, issued_on=issued, issuer=issuer,
                            validity_days=settings.ESTIMATE_VALIDITY_DAYS)


def run_followups(estimate_id: Any) -> dict[str, str]:
    """Run §9.1 for a completed estimate; returns and saves the outcomes. Quiet if gone.

    Safe to run again (a retry, a worker killed mid-way): a part whose outcome is already
    "ok" is not repeated (no second Notion page or mail), and the outcomes are saved after
    each part that has an effect outside, so a crash loses at most the part in progress.
    """
    estimate = Estimate.objects.select_related("session").filter(pk=estimate_id).first()
    if estimate is None or estimate.status != Estimate.Status.COMPLETED:
        return {}
    outcome: dict[str, str] = dict(estimate.followups or {})

    def done(part: str) -> bool:
        return outcome.get(part) == "ok"

    def save() -> None:
        Estimate.objects.filter(pk=estimate.pk).update(followups=outcome)

    contact = parse_contact(estimate.session.answers.get("step_13"))

    if done("notion"):
        pass
    elif not notion.notion_configured():
        log.info("Notion: NOTION_API_KEY / NOTION_DATABASE_ID not set, skipped")
        outcome["notion"] = "skipped:not_configured"
    else:
        try:
            notion.create_page(contact)
            outcome["notion"] = "ok"
        except HokanError as exc:
            log.warning("Notion save failed for estimate %s: %s", estimate.pk, exc)
            outcome["notion"] = f"failed:{exc}"
        save()

    mails_left = mail.mail_configured() and not (done("customer_mail") and done("operator_mail"))
    pdf: bytes | None = None
    if mails_left or not done("pdf"):
        try:
            pdf = quotation_pdf(estimate)
            outcome["pdf"] = "ok"
        except Exception as exc:  # §11.1: a PDF failure only drops the attachment
            log.warning("PDF generation failed for estimate %s", estimate.pk, exc_info=True)
            outcome["pdf"] = f"failed:{type(exc).__name__}"

    if not mail.mail_configured():
        outcome["customer_mail"] = outcome["operator_mail"] = "skipped:not_configured"
    else:
        if done("customer_mail"):
            pass
        elif contact["email"]:
            outcome["customer_mail"] = _send(mail.customer_mail(contact["email"], contact, estimate.raw_json,
                                                                attachment=pdf), estimate.pk)
            save()
        else:
            outcome["customer_mail"] = "skipped:no_email"
        if done("operator_mail"):
            pass
        elif settings.NOTIFY_EMAIL:
            industry = industry_label(estimate.session.answers.get("step_2"))
            outcome["operator_mail"] = _send(mail.operator_mail(settings.NOTIFY_EMAIL, contact, estimate.raw_json,
                                                                industry, attachment=pdf), estimate.pk)
        else:
            outcome["operator_mail"] = "skipped:no_notify_email"

    save()
    return outcome


def _send(message: mail.Mail, estimate_id: Any) -> str:
    try:
        mail.send(message)
        return "ok"
    except mail.MailError as exc:
        log.warning("Mail %r failed for estimate %s: %s", message.subject, estimate_id, exc)
        return f"failed:{exc}"
