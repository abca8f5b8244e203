"""hokan.leads.notices: the nightly job's notices (document 000 §11) as they arrive at real local
targets (an SMTP server, an HTTP receiver, a Slack-format webhook) through hokan.core.notify.

Nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from hokan.core import notify
from hokan.leads import notices

SLACK_URL = "slack://T000/B000/XXXX"


pytestmark = pytest.mark.usefixtures("notify_settings")  # tests/fakes/fixtures.py


def _raise_in_enrichment() -> BaseException:
    def call_provider():
        raise ValueError("Powerplexy が 500 を返しました")

    try:
        call_provider()
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


# --- mail -----------------------------------------------------------------------------------
def test_it_mails_the_success_notice(settings, smtp_server):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url(to="ops@example.com")

    ok = notices.notify_success(
        records=1234,
        remaining_calls=2480,
        remaining_cost_usd=Decimal("124"),
        filled={"資本金": 12, "代表者名": 7},
        run_id="run-42",
    )

    assert ok is True
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.subject == "【hokan】AI補完完了: 1,234件"
    assert "実行件数: 1,234件" in mail.text
    assert "残リクエスト数: 2,480件" in mail.text
    assert "推定残コスト: 124.00 USD" in mail.text
    assert "資本金: 12件" in mail.text and "代表者名: 7件" in mail.text
    assert "実行ID: run-42" in mail.text


def test_it_mails_the_limit_warning_with_the_configured_limits(settings, smtp_server):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()

    ok = notices.notify_limit_reached(
        cost_limit_usd=Decimal("80"), call_limit=1200, spent_usd=Decimal("80.014"), calls=1187
    )

    assert ok is True
    [mail] = smtp_server.messages
    assert "月額80USDまたは1,200件超過" in mail.subject
    assert "月額80USDまたは1,200件超過" in mail.text
    assert "今月の利用額: 80.01 USD（上限 80 USD）" in mail.text
    assert "今月の呼び出し数: 1,187件（上限 1,200件）" in mail.text
    assert "150" not in mail.text and "3,000" not in mail.text


def test_it_quotes_the_document_limits_as_written():
    message = notify.render(
        notices.TEMPLATE_DIR / "limit_reached.txt",
        {"cost_limit_usd": "150", "call_limit": 3000, "spent_usd": "150.00", "calls": 2999},
    )
    assert "月額150USDまたは3,000件超過" in message.title


def test_it_mails_the_error_with_company_and_stack_trace(settings, smtp_server):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()

    ok = notices.notify_error(company="株式会社テスト商事", error=_raise_in_enrichment())

    assert ok is True
    [mail] = smtp_server.messages
    assert "株式会社テスト商事" in mail.subject
    assert "対象企業: 株式会社テスト商事" in mail.text
    assert "エラー: ValueError: Powerplexy が 500 を返しました" in mail.text
    assert "Traceback (most recent call last):" in mail.text
    assert "in call_provider" in mail.text


def test_it_sends_an_error_given_as_text_without_trace(settings, smtp_server):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()

    assert notices.notify_error(company="有限会社サンプル", error="HTTP 429 が続きました") is True

    [mail] = smtp_server.messages
    assert "エラー: HTTP 429 が続きました" in mail.text
    assert "スタックトレース:\n（なし）" in mail.text


def test_it_shortens_a_long_trace_and_logs_all_of_it(settings, smtp_server, notify_log):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()
    frames = "".join(f'  File "/app/mod{i}.py", line {i}, in f{i}\n    step_{i}()\n' for i in range(400))
    trace = f"Traceback (most recent call last):\n{frames}RuntimeError: 最後の行\n"

    ok = notices.notify_error(company="株式会社長い", error="RuntimeError: 最後の行", traceback_text=trace)

    assert ok is True
    [mail] = smtp_server.messages
    assert len(mail.text) < notices.MAX_TRACE_CHARS + 500
    assert "Traceback (most recent call last):" in mail.text
    assert "RuntimeError: 最後の行" in mail.text.splitlines()[-1]
    assert "（中略:" in mail.text
    assert "step_200()" in notify_log.text  # the log has the whole trace


# --- chat targets -------------------------------------------------------------------------
def test_it_posts_the_slack_webhook_format(settings, slack_webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = SLACK_URL

    ok = notices.notify_limit_reached(cost_limit_usd=Decimal("150"), call_limit=3000, spent_usd=Decimal("150"), calls=3000)

    assert ok is True
    [request] = slack_webhook_receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    [attachment] = request.json["attachments"]
    assert "月額150USDまたは3,000件超過" in attachment["title"]
    assert "今月の呼び出し数: 3,000件（上限 3,000件）" in attachment["text"]


def test_it_accepts_the_slack_webhook_url_as_slack_shows_it(settings, slack_webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = "https://hooks.slack.com/services/T000/B000/XXXX"

    assert notices.notify_error(company="株式会社A&B", error=_raise_in_enrichment()) is True

    [request] = slack_webhook_receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    text = request.json["attachments"][0]["text"]
    assert "対象企業: 株式会社A&amp;B" in text  # Slack's own escaping of & < > (apprise does it)
    assert "in call_provider" in text


# --- no target ---------------------------------------------------------------------------------
def test_it_only_logs_without_urls(notify_log):
    ok = notices.notify_success(records=5, remaining_calls=2995, remaining_cost_usd=Decimal("149.75"))

    assert ok is True
    [record] = [r for r in notify_log.records if r.name == "hokan.notify"]
    assert record.levelno == logging.INFO
    assert "【hokan】AI補完完了: 5件" in record.getMessage()
    assert "推定残コスト: 149.75 USD" in record.getMessage()


def test_it_logs_limit_and_error_notices_at_their_levels(notify_log):
    notices.notify_limit_reached(cost_limit_usd=Decimal("150.5"), call_limit=3000, spent_usd=Decimal("151"), calls=10)
    notices.notify_error(company="株式会社ログ", error="失敗")

    levels = [(r.levelno, r.getMessage().splitlines()[0]) for r in notify_log.records if r.name == "hokan.notify"]
    assert levels == [
        (logging.WARNING, "【hokan】⚠️ Powerplexy API上限到達（月額150.5USDまたは3,000件超過）"),
        (logging.ERROR, "【hokan】❌ AI補完エラー: 株式会社ログ"),
    ]


def test_it_shows_braces_in_a_company_name_verbatim(notify_log):
    assert notices.notify_error(company="株式会社{records}", error="{0} 失敗") is True

    assert "対象企業: 株式会社{records}" in notify_log.text
    assert "エラー: {0} 失敗" in notify_log.text

