"""After the response (design document 004 §9): PDF, e-mails (SMTP / Resend), Notion."""

from __future__ import annotations

import base64
import email
import io
import re
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from hokan.estimate.followups import quotation_pdf, run_followups
from hokan.estimate.generate import generate_estimate
from hokan.estimate.models import Estimate, EstimateSession
from hokan.estimate.answers import clean_answers
from tests.fakes.notion_server import FakeNotionServer
from tests.fakes.resend_server import FakeResendServer

pytestmark = pytest.mark.django_db


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).replace(" ", "")


def completed(answers, settings, mode="off") -> Estimate:
    settings.ESTIMATE_FOLLOWUPS = mode
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    return generate_estimate(session.pk)


class _Sink:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield sink
    controller.stop()


def test_it_renders_a_japanese_quotation_with_the_totals(answers, settings):
    estimate = completed(answers, settings)
    text = pdf_text(quotation_pdf(estimate))
    assert "概算お見積書" in text
    assert "株式会社テスト製作所" in text and "田中太郎様" in text
    assert estimate.raw_json["project_name"] in text
    assert f"¥{estimate.total_standard:,}" in text and f"¥{estimate.total_hybrid:,}" in text
    for feature in estimate.raw_json["features"]:
        assert f"¥{feature['standard_price']:,}" in text and f"¥{feature['hybrid_price']:,}" in text
    assert "有効期限" in text and "発行日より30日間" in text
    assert "±20%" in text or "±30%" in text
    assert "CloudNature" in text


def test_it_numbers_every_page_and_repeats_the_quotation_number_after_page_1(answers, settings):
    """Issue 9 §6: page 2 had neither a page number nor the quotation number."""
    from hokan.estimate.pdf import quotation_number

    many = ["order_management", "inventory_management", "sales_analysis", "customer_management",
            "approval_workflow", "csv_import", "notification", "dashboard", "report_output", "ai_chatbot",
            "payment", "multi_tenant", "shift_management", "pdf_export"]
    estimate = completed({**answers, "8": many}, settings)
    pages = [page.extract_text().replace(" ", "") for page in PdfReader(io.BytesIO(quotation_pdf(estimate))).pages]
    assert len(pages) >= 2
    from django.utils import timezone

    # The issue date is the Tokyo date of completion (UTC's is the day before until 09:00 JST).
    number = quotation_number(estimate.pk, timezone.localdate(estimate.completed_at))
    for i, text in enumerate(pages, start=1):
        assert f"{i}/{len(pages)}" in text, (i, text[-200:])
        assert f"見積番号:{number}" in text
        assert "株式会社テスト製作所田中太郎様" in text  # the footer names the addressee on every page
    assert all("概算お見積書（続き）" in text for text in pages[1:])
    assert "概算お見積書（続き）" not in pages[0]


def test_it_mails_the_customer_and_the_operator_over_smtp_with_the_pdf(
        answers, settings, smtp, django_capture_on_commit_callbacks):
    settings.NOTIFY_EMAIL = "ops@cloudnature.example"
    with django_capture_on_commit_callbacks(execute=True):
        estimate = completed(answers, settings, mode="sync")  # runs after commit, in the request

    customer, operator = sorted(smtp.messages, key=lambda m: m["To"] != "tanaka@example.co.jp")
    assert customer["Subject"].strip() == "【CloudNature】概算お見積もりが完成しました"
    assert operator["Subject"].strip() == "【CloudNature】新しいお見積もり依頼がありました"
    assert operator["To"] == "ops@cloudnature.example"
    for message in (customer, operator):
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_filename() == "概算お見積書.pdf"
        assert f"¥{estimate.total_standard:,}" in pdf_text(attachment.get_content())
    body = operator.get_body(preferencelist=("plain",)).get_content()
    for part in ("田中太郎", "株式会社テスト製作所", "tanaka@example.co.jp", estimate.raw_json["project_name"], "製造業"):
        assert part in body
    estimate.refresh_from_db()
    assert estimate.followups == {"notion": "skipped:not_configured", "pdf": "ok", "customer_mail": "ok",
                                  "operator_mail": "ok"}


def test_it_sends_through_resend_when_its_key_is_set(answers, settings):
    with FakeResendServer(api_key="re_test") as resend:
        settings.RESEND_API_KEY, settings.RESEND_API_BASE_URL = "re_test", resend.base_url
        settings.NOTIFY_EMAIL = "ops@cloudnature.example"
        estimate = completed(answers, settings)
        outcome = run_followups(estimate.pk)

    assert outcome["customer_mail"] == outcome["operator_mail"] == "ok"
    customer = next(m for m in resend.emails if m["to"] == ["tanaka@example.co.jp"])
    assert customer["from"] == settings.EMAIL_FROM
    assert customer["subject"] == "【CloudNature】概算お見積もりが完成しました"
    (attachment,) = customer["attachments"]
    assert attachment["filename"] == "概算お見積書.pdf"
    assert "概算お見積書" in pdf_text(base64.b64decode(attachment["content"]))
    assert all(headers["authorization"] == "Bearer re_test" for _path, headers in resend.requests)


def test_it_sends_the_mail_without_attachment_when_the_pdf_fails(answers, settings, smtp, monkeypatch):
    from hokan.estimate import pdf

    # The font lookup is the PDF's edge with the machine: make it find nothing.
    monkeypatch.setattr(pdf, "FONT_DIRS", ())
    pdf._register_fonts.cache_clear()
    try:
        estimate = completed(answers, settings)
        outcome = run_followups(estimate.pk)
    finally:
        pdf._register_fonts.cache_clear()
    assert outcome["pdf"] == "failed:PdfError"
    assert outcome["customer_mail"] == "ok"
    (message,) = smtp.messages
    assert list(message.iter_attachments()) == []
    assert "後ほど担当者よりお送りいたします" in message.get_body(preferencelist=("plain",)).get_content()


def test_it_logs_a_mail_failure_without_touching_the_estimate(answers, settings):
    with FakeResendServer(api_key="re_test") as resend:
        resend.fail_next(2, status=500)
        settings.RESEND_API_KEY, settings.RESEND_API_BASE_URL = "re_test", resend.base_url
        settings.NOTIFY_EMAIL = "ops@cloudnature.example"
        estimate = completed(answers, settings)
        outcome = run_followups(estimate.pk)
    assert outcome["customer_mail"].startswith("failed:") and outcome["operator_mail"].startswith("failed:")
    estimate.refresh_from_db()
    assert estimate.status == "completed" and estimate.raw_json


def test_it_saves_the_notion_page_and_honours_429(answers, settings):
    with FakeNotionServer(api_key="secret_test") as notion:
        notion.rate_limit_next(1, retry_after="0")
        settings.NOTION_API_KEY, settings.NOTION_DATABASE_ID = "secret_test", "db-123"
        settings.NOTION_API_BASE_URL = notion.base_url
        estimate = completed(answers, settings)
        outcome = run_followups(estimate.pk)

    assert outcome["notion"] == "ok"
    assert len(notion.requests) == 2
    sent = notion.requests[-1]
    assert sent.path == "/v1/pages" and sent.headers["notion-version"] == "2022-06-28"
    assert sent.json["parent"] == {"database_id": "db-123"}
    props = sent.json["properties"]
    assert props["名前"]["title"][0]["text"]["content"] == "田中太郎"
    assert props["会社名"]["rich_text"][0]["text"]["content"] == "株式会社テスト製作所"
    assert props["メールアドレス"] == {"email": "tanaka@example.co.jp"}
    assert props["種別"] == {"select": {"name": "お見積もり"}}
    assert props["ステータス"] == {"status": {"name": "未対応"}}


def test_it_gives_up_on_notion_after_repeated_429(answers, settings):
    with FakeNotionServer(api_key="secret_test") as notion:
        notion.rate_limit_next(5, retry_after="0")
        settings.NOTION_API_KEY, settings.NOTION_DATABASE_ID = "secret_test", "db-123"
        settings.NOTION_API_BASE_URL = notion.base_url
        estimate = completed(answers, settings)
        outcome = run_followups(estimate.pk)
    assert outcome["notion"].startswith("failed:")
    assert len(notion.requests) == 3
    assert outcome["pdf"] == "ok"


def test_it_skips_notion_when_half_configured(answers, settings):
    settings.NOTION_API_KEY = "secret_test"
    estimate = completed(answers, settings)
    assert run_followups(estimate.pk)["notion"] == "skipped:not_configured"


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_followups_in_a_thread_without_a_broker(answers, settings):
    import time

    settings.ESTIMATE_FOLLOWUPS = "thread"
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    estimate = generate_estimate(session.pk)
    for _ in range(600):  # the thread runs after commit; poll its saved outcome (up to 30 s on a busy machine)
        estimate.refresh_from_db()
        if estimate.followups:
            break
        time.sleep(0.05)
    assert estimate.followups["pdf"] == "ok"


def test_it_queues_the_followups_on_the_celery_broker(answers, settings, redis_url,
                                                      django_capture_on_commit_callbacks):
    import json as _json

    import redis

    from hokan.celery import app as celery_app
    from hokan.core.tasks import run_job_chunk
    from hokan.estimate.followup_jobs import followups_job_key
    from hokan.core.models import Job

    settings.CELERY_BROKER_URL = redis_url
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = redis_url
    try:
        with django_capture_on_commit_callbacks(execute=True):
            estimate = completed(answers, settings, mode="thread")
    finally:
        celery_app.conf.broker_url = previous
    queued = redis.Redis.from_url(redis_url).lrange("celery", 0, -1)
    (message,) = [_json.loads(m) for m in queued]
    job = Job.objects.get(key=followups_job_key(estimate.pk))  # stored with the estimate: never lost
    assert message["headers"]["task"] == "core.run_job_chunk"
    assert str(job.public_id) in message["headers"]["argsrepr"]
    assert estimate.followups == {}  # nothing ran in the web process
    run_job_chunk(str(job.public_id))  # what the worker runs
    estimate.refresh_from_db()
    job.refresh_from_db()
    assert estimate.followups["pdf"] == "ok" and job.status == "completed"


@pytest.mark.parametrize(("contact", "first_line"), [
    ({"name": "田中太郎", "company": "株式会社テスト"}, "株式会社テスト\n田中太郎 様"),
    ({"name": "", "company": "株式会社テスト"}, "株式会社テスト 御中"),
    ({"name": "田中太郎", "company": ""}, "田中太郎 様"),
    ({"name": "", "company": ""}, "お客様"),
])
def test_it_addresses_the_customer_like_a_japanese_letter(contact, first_line):
    from hokan.estimate.mail import customer_mail

    mail = customer_mail("t@example.jp", contact, {"project_name": "x", "total_cost": {"standard": 1, "hybrid": 1}},
                         attachment=None)
    assert mail.text.startswith(first_line + "\n\n")


@pytest.mark.parametrize(("frontend_url", "link"), [
    ("https://estimate.cloudnature.example/", "AI見積もりのページ: https://estimate.cloudnature.example/"),
    ("http://localhost:3001", None),  # the development default never reaches a customer
    ("http://127.0.0.1:3001", None),
    ("javascript:alert(1)", None),
    ("", None),
])
def test_it_links_the_frontend_in_the_customer_mail_only_when_it_is_public(settings, frontend_url, link):
    from hokan.estimate.mail import customer_mail

    settings.FRONTEND_URL = frontend_url
    mail = customer_mail("t@example.jp", {"name": "田中太郎", "company": ""},
                         {"project_name": "x", "total_cost": {"standard": 1, "hybrid": 1}}, attachment=None)
    if link:
        assert link in mail.text and link in mail.html
        assert mail.text.rstrip().endswith(f"{link}\n\n{settings.ESTIMATE_ISSUER_NAME}")
    else:
        assert "AI見積もりのページ" not in mail.text


def test_it_shows_the_engine_prices_never_the_llm_s_in_the_response_pdf_and_mails(
        client, gemini, answers, settings, smtp, django_capture_on_commit_callbacks):
    """The LLM changes the prices (and states its own amounts in the texts) twice — in the text
    and in the audit: the stored result, the API response, the PDF and both mails carry the
    engine's amounts only (§8.1 enforced twice, §11.2)."""
    import json

    from hokan.estimate import pricing
    from hokan.estimate.sanitizer import sanitize
    from tests.estimate.conftest import audit_answer, estimate_answer
    from tests.fakes.gemini_server import GeminiReply

    settings.ESTIMATE_FOLLOWUPS = "sync"
    settings.NOTIFY_EMAIL = "ops@cloudnature.example"
    calc = pricing.calculate(sanitize(clean_answers(answers)))
    text = estimate_answer(calc, price_delta=123_000)
    text["total_cost"]["message"] = f"総額{text['total_cost']['standard']:,}円、ハイブリッドなら約9,876万円です。"
    gemini.enqueue(GeminiReply.json(text))

    def audit_reply(body):
        audited = audit_answer(json.loads(body["contents"][0]["parts"][0]["text"])["estimate"], price_delta=-77_000)
        audited["summary"] += "費用はわずか42万円です。"
        return GeminiReply.json(audited)

    gemini.responder = audit_reply
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/estimate/generate", data={"session_id": str(session.pk)},
                               content_type="application/json")
    assert response.status_code == 200, response.json()
    body = response.json()["estimate"]
    stored = Estimate.objects.get()
    assert stored.audit_status == "audited" and stored.text_source == "gemini"

    engine_prices = [(f["standard_price"], f["hybrid_price"]) for f in calc["features"]]
    llm_prices = {p + delta for f in calc["features"] for p in (f["standard_price"], f["hybrid_price"])
                  for delta in (123_000, -77_000)}
    for result in (stored.raw_json, body):  # the stored result AND what the client receives
        assert [(f["standard_price"], f["hybrid_price"]) for f in result["features"]] == engine_prices
        assert (result["total_cost"]["standard"], result["total_cost"]["hybrid"]) == (calc["total_standard"],
                                                                                      calc["total_hybrid"])
        rendered = json.dumps(result, ensure_ascii=False)
        assert "9,876万円" not in rendered and "42万円" not in rendered
        assert f"{text['total_cost']['standard']:,}" not in rendered
        assert pricing.format_price(calc["total_standard"]) in result["total_cost"]["message"]

    pdf = pdf_text(quotation_pdf(stored))
    for standard, hybrid in engine_prices:
        assert f"¥{standard:,}" in pdf and f"¥{hybrid:,}" in pdf
    assert f"¥{calc['total_standard']:,}" in pdf and f"¥{calc['total_hybrid']:,}" in pdf
    for wrong in llm_prices:
        assert f"¥{wrong:,}" not in pdf and f"{wrong:,}円" not in pdf
    assert "9,876万円" not in pdf and "42万円" not in pdf

    assert len(smtp.messages) == 2
    for message in smtp.messages:
        mail_text = message.get_body(preferencelist=("plain",)).get_content()
        assert pricing.format_price(calc["total_standard"]) in mail_text
        assert pricing.format_price(calc["total_hybrid"]) in mail_text
        stated = set(re.findall(r"\d[\d,]*万円", mail_text))
        assert stated == {pricing.format_price(calc["total_standard"]), pricing.format_price(calc["total_hybrid"])}
        (attachment,) = list(message.iter_attachments())
        assert f"¥{calc['total_standard']:,}" in pdf_text(attachment.get_content())
