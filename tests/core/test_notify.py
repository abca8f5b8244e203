"""hokan.core.notify against real local targets: an SMTP server (aiosmtpd) and an HTTP receiver.

Nothing here leaves 127.0.0.1: refused URLs (10.x, 192.168.x) are refused before any connection.
"""

from __future__ import annotations

import logging
import socket
from decimal import Decimal

import pytest

from hokan.core import notify
from tests.servers import free_port

SLACK_URL = "slack://T000/B000/XXXX"


@pytest.fixture(autouse=True)
def _notify_settings(settings):
    settings.HOKAN_NOTIFY_URLS = ""
    settings.HOKAN_NOTIFY_TIMEOUT_S = 2
    settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    return settings


@pytest.fixture
def notify_log(caplog):
    caplog.set_level(logging.DEBUG, logger="hokan.notify")
    return caplog


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

    ok = notify.notify_success(
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

    ok = notify.notify_limit_reached(
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
        "limit_reached", {"cost_limit_usd": "150", "call_limit": 3000, "spent_usd": "150.00", "calls": 2999}
    )
    assert "月額150USDまたは3,000件超過" in message.title


def test_it_mails_the_error_with_company_and_stack_trace(settings, smtp_server):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()

    ok = notify.notify_error(company="株式会社テスト商事", error=_raise_in_enrichment())

    assert ok is True
    [mail] = smtp_server.messages
    assert "株式会社テスト商事" in mail.subject
    assert "対象企業: 株式会社テスト商事" in mail.text
    assert "エラー: ValueError: Powerplexy が 500 を返しました" in mail.text
    assert "Traceback (most recent call last):" in mail.text
    assert "in call_provider" in mail.text


def test_it_sends_an_error_given_as_text_without_trace(settings, smtp_server):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()

    assert notify.notify_error(company="有限会社サンプル", error="HTTP 429 が続きました") is True

    [mail] = smtp_server.messages
    assert "エラー: HTTP 429 が続きました" in mail.text
    assert "スタックトレース:\n（なし）" in mail.text


def test_it_shortens_a_long_trace_and_logs_all_of_it(settings, smtp_server, notify_log):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()
    frames = "".join(f'  File "/app/mod{i}.py", line {i}, in f{i}\n    step_{i}()\n' for i in range(400))
    trace = f"Traceback (most recent call last):\n{frames}RuntimeError: 最後の行\n"

    ok = notify.notify_error(company="株式会社長い", error="RuntimeError: 最後の行", traceback_text=trace)

    assert ok is True
    [mail] = smtp_server.messages
    assert len(mail.text) < notify.MAX_TRACE_CHARS + 500
    assert "Traceback (most recent call last):" in mail.text
    assert "RuntimeError: 最後の行" in mail.text.splitlines()[-1]
    assert "（中略:" in mail.text
    assert "step_200()" in notify_log.text  # the log has the whole trace


# --- webhooks ---------------------------------------------------------------------------------
def test_it_posts_to_a_json_webhook(settings, webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = webhook_receiver.json_url("/hooks/hokan")

    ok = notify.notify_success(records=3, remaining_calls=10, remaining_cost_usd=Decimal("0.5"))

    assert ok is True
    [request] = webhook_receiver.requests
    assert request.method == "POST" and request.path == "/hooks/hokan"
    assert request.json["title"] == "【hokan】AI補完完了: 3件"
    assert "推定残コスト: 0.50 USD" in request.json["message"]
    assert request.json["type"] == "success"


def test_it_posts_the_slack_webhook_format(settings, slack_webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = SLACK_URL

    ok = notify.notify_limit_reached(cost_limit_usd=Decimal("150"), call_limit=3000, spent_usd=Decimal("150"), calls=3000)

    assert ok is True
    [request] = slack_webhook_receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    [attachment] = request.json["attachments"]
    assert "月額150USDまたは3,000件超過" in attachment["title"]
    assert "今月の呼び出し数: 3,000件（上限 3,000件）" in attachment["text"]


def test_it_accepts_the_slack_webhook_url_as_slack_shows_it(settings, slack_webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = "https://hooks.slack.com/services/T000/B000/XXXX"

    assert notify.notify_error(company="株式会社A&B", error=_raise_in_enrichment()) is True

    [request] = slack_webhook_receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    text = request.json["attachments"][0]["text"]
    assert "対象企業: 株式会社A&amp;B" in text  # Slack's own escaping of & < > (apprise does it)
    assert "in call_provider" in text


def test_it_sends_to_every_target(settings, smtp_server, webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = f"{smtp_server.apprise_url()}, {webhook_receiver.json_url()}"

    assert notify.notify_success(records=1, remaining_calls=1, remaining_cost_usd=Decimal("1")) is True

    assert len(smtp_server.messages) == 1
    assert len(webhook_receiver.requests) == 1


# --- failures never raise ----------------------------------------------------------------------
def test_it_returns_false_when_the_target_is_down(settings, webhook_receiver, notify_log):
    closed = f"json://127.0.0.1:{free_port()}/hook"
    settings.HOKAN_NOTIFY_URLS = f"{closed} {webhook_receiver.json_url()}"

    ok = notify.notify_error(company="株式会社ダウン", error="接続できません")

    assert ok is False
    assert len(webhook_receiver.requests) == 1  # the other target still got it
    assert "送信できませんでした" in notify_log.text


def test_it_returns_false_when_the_target_answers_500(settings, webhook_receiver):
    webhook_receiver.status = 500
    settings.HOKAN_NOTIFY_URLS = webhook_receiver.json_url()

    assert notify.notify_success(records=1, remaining_calls=1, remaining_cost_usd=Decimal("1")) is False
    assert len(webhook_receiver.requests) == 1


def test_it_gives_up_on_a_target_that_never_answers(settings, notify_log):
    settings.HOKAN_NOTIFY_TIMEOUT_S = 0.3
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        settings.HOKAN_NOTIFY_URLS = f"json://127.0.0.1:{silent.getsockname()[1]}/hook"

        ok = notify.notify_success(records=1, remaining_calls=1, remaining_cost_usd=Decimal("1"))

    assert ok is False
    assert "送信できませんでした" in notify_log.text


def test_it_returns_false_for_a_mail_server_that_is_down(settings):
    settings.HOKAN_NOTIFY_URLS = f"mailto://127.0.0.1:{free_port()}?from=hokan@example.com&to=ops@example.com"

    assert notify.notify_limit_reached(
        cost_limit_usd=Decimal("150"), call_limit=3000, spent_usd=Decimal("1"), calls=1
    ) is False


def test_it_logs_an_unparseable_url_without_its_secret(settings, notify_log):
    settings.HOKAN_NOTIFY_URLS = "nosuchservice://user:hunter2@example.com/x"

    assert notify.notify_success(records=1, remaining_calls=1, remaining_cost_usd=Decimal("1")) is False
    assert "通知先URLを解釈できません (nosuchservice://…)" in notify_log.text
    assert "hunter2" not in notify_log.text


# --- SSRF guard ----------------------------------------------------------------------------------
def test_it_refuses_a_loopback_target_that_is_not_allow_listed(settings, webhook_receiver, notify_log):
    settings.HOKAN_FETCH_ALLOW_HOSTS = []
    settings.HOKAN_NOTIFY_URLS = webhook_receiver.json_url()

    ok = notify.notify_success(records=1, remaining_calls=1, remaining_cost_usd=Decimal("1"))

    assert ok is False
    assert webhook_receiver.requests == []
    assert "送信を拒否しました (loopback)" in notify_log.text


@pytest.mark.parametrize(
    "url, reason",
    [
        ("jsons://user:s3cret@10.1.2.3/hook", "private"),
        ("xml://169.254.169.254/latest/meta-data", "link_local"),
        ("json://[::1]:8080/hook", "loopback"),
        ("json://0x7f000001:8080/hook", "loopback"),
        ("mailtos://user:s3cret@example.com?smtp=192.168.1.5&to=ops@example.com", "private"),
        ("mailto://10.0.0.8:25?from=hokan@example.com&to=ops@example.com", "private"),
    ],
)
def test_it_refuses_private_targets(settings, notify_log, url, reason):
    settings.HOKAN_NOTIFY_URLS = url

    ok = notify.notify_error(company="株式会社内部", error="x")

    assert ok is False
    assert f"送信を拒否しました ({reason})" in notify_log.text
    assert "s3cret" not in notify_log.text


# --- no target ---------------------------------------------------------------------------------
def test_it_only_logs_without_urls(notify_log):
    ok = notify.notify_success(records=5, remaining_calls=2995, remaining_cost_usd=Decimal("149.75"))

    assert ok is True
    [record] = [r for r in notify_log.records if r.name == "hokan.notify"]
    assert record.levelno == logging.INFO
    assert "【hokan】AI補完完了: 5件" in record.getMessage()
    assert "推定残コスト: 149.75 USD" in record.getMessage()


def test_it_logs_limit_and_error_notices_at_their_levels(notify_log):
    notify.notify_limit_reached(cost_limit_usd=Decimal("150.5"), call_limit=3000, spent_usd=Decimal("151"), calls=10)
    notify.notify_error(company="株式会社ログ", error="失敗")

    levels = [(r.levelno, r.getMessage().splitlines()[0]) for r in notify_log.records if r.name == "hokan.notify"]
    assert levels == [
        (logging.WARNING, "【hokan】⚠️ Powerplexy API上限到達（月額150.5USDまたは3,000件超過）"),
        (logging.ERROR, "【hokan】❌ AI補完エラー: 株式会社ログ"),
    ]


# --- URL list --------------------------------------------------------------------------------------
def test_it_splits_urls_on_commas_and_spaces_but_keeps_recipient_lists():
    value = "mailto://127.0.0.1:25?from=a@x.jp&to=b@x.jp,c@x.jp, json://127.0.0.1:8/h  slack://T/B/C"

    assert notify.parse_notify_urls(value) == [
        "mailto://127.0.0.1:25?from=a@x.jp&to=b@x.jp,c@x.jp",
        "json://127.0.0.1:8/h",
        "slack://T/B/C",
    ]
    assert notify.parse_notify_urls("") == []


def test_it_shows_braces_in_a_company_name_verbatim(notify_log):
    assert notify.notify_error(company="株式会社{records}", error="{0} 失敗") is True

    assert "対象企業: 株式会社{records}" in notify_log.text
    assert "エラー: {0} 失敗" in notify_log.text
