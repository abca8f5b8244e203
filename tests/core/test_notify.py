"""hokan.core.notify, the transport, against real local targets: an SMTP server (aiosmtpd), an
HTTP receiver, a Slack-format webhook. The notices themselves: tests/leads/test_notices.py.

Nothing here leaves 127.0.0.1: refused URLs (10.x, 192.168.x) are refused before any connection.
"""

from __future__ import annotations

import logging
import socket

import pytest

from hokan.core import notify
from hokan.core.notify import Message
from tests.servers import free_port

SLACK_URL = "slack://T000/B000/XXXX"
MESSAGE = Message("probe", "【hokan】テスト通知: 3件", "本文の1行目\n対象: 株式会社A&B\n")


pytestmark = pytest.mark.usefixtures("notify_settings")  # tests/fakes/fixtures.py


# --- templates ------------------------------------------------------------------------------
def test_it_renders_a_template_file_title_first(tmp_path):
    template = tmp_path / "done.txt"
    template.write_text("【hokan】完了: {records:,}件\n実行件数: {records:,}件\n{extra}", encoding="utf-8")

    message = notify.render(template, {"records": 1234, "extra": "以上"})

    assert message == Message("done", "【hokan】完了: 1,234件", "実行件数: 1,234件\n以上\n")


@pytest.mark.parametrize("text", ["タイトルだけ", "\n本文だけ"])
def test_it_refuses_a_template_without_title_or_body(tmp_path, text):
    template = tmp_path / "bad.txt"
    template.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt"):
        notify.render(template, {})


def test_it_never_raises_for_a_template_it_cannot_render(tmp_path, notify_log, smtp_server, settings):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url()
    template = tmp_path / "oops.txt"
    template.write_text("【hokan】{no_such_field}\n本文\n", encoding="utf-8")

    assert notify.send_template(template, {}, kind="oops") is False
    assert notify.send_template(tmp_path / "missing.txt", {}) is False
    assert smtp_server.messages == []
    assert "通知 oops を作成できませんでした" in notify_log.text


# --- mail ------------------------------------------------------------------------------------
def test_it_mails_the_message(settings, smtp_server):
    settings.HOKAN_NOTIFY_URLS = smtp_server.apprise_url(to="ops@example.com")

    assert notify.send(MESSAGE, notify_type="success") is True

    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.subject == "【hokan】テスト通知: 3件"
    assert "本文の1行目" in mail.text and "対象: 株式会社A&B" in mail.text


# --- webhooks ---------------------------------------------------------------------------------
def test_it_posts_to_a_json_webhook(settings, webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = webhook_receiver.json_url("/hooks/hokan")

    assert notify.send(MESSAGE, notify_type="success") is True

    [request] = webhook_receiver.requests
    assert request.method == "POST" and request.path == "/hooks/hokan"
    assert request.json["title"] == "【hokan】テスト通知: 3件"
    assert "本文の1行目" in request.json["message"]
    assert request.json["type"] == "success"


def test_it_posts_the_slack_webhook_format(settings, slack_webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = SLACK_URL

    assert notify.send(MESSAGE, notify_type="warning") is True

    [request] = slack_webhook_receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    [attachment] = request.json["attachments"]
    assert attachment["title"] == "【hokan】テスト通知: 3件"


def test_it_accepts_the_slack_webhook_url_as_slack_shows_it(settings, slack_webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = "https://hooks.slack.com/services/T000/B000/XXXX"

    assert notify.send(MESSAGE, notify_type="failure") is True

    [request] = slack_webhook_receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    assert "対象: 株式会社A&amp;B" in request.json["attachments"][0]["text"]  # Slack's escaping (apprise)


def test_it_sends_to_every_target(settings, smtp_server, webhook_receiver):
    settings.HOKAN_NOTIFY_URLS = f"{smtp_server.apprise_url()}, {webhook_receiver.json_url()}"

    assert notify.send(MESSAGE) is True

    assert len(smtp_server.messages) == 1
    assert len(webhook_receiver.requests) == 1


# --- failures never raise ----------------------------------------------------------------------
def test_it_returns_false_when_the_target_is_down(settings, webhook_receiver, notify_log):
    closed = f"json://127.0.0.1:{free_port()}/hook"
    settings.HOKAN_NOTIFY_URLS = f"{closed} {webhook_receiver.json_url()}"

    assert notify.send(MESSAGE) is False
    assert len(webhook_receiver.requests) == 1  # the other target still got it
    assert "送信できませんでした" in notify_log.text


def test_it_returns_false_when_the_target_answers_500(settings, webhook_receiver):
    webhook_receiver.status = 500
    settings.HOKAN_NOTIFY_URLS = webhook_receiver.json_url()

    assert notify.send(MESSAGE) is False
    assert len(webhook_receiver.requests) == 1


def test_it_gives_up_on_a_target_that_never_answers(settings, notify_log):
    settings.HOKAN_NOTIFY_TIMEOUT_S = 0.3
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        settings.HOKAN_NOTIFY_URLS = f"json://127.0.0.1:{silent.getsockname()[1]}/hook"

        assert notify.send(MESSAGE) is False

    assert "送信できませんでした" in notify_log.text


def test_it_returns_false_for_a_mail_server_that_is_down(settings):
    settings.HOKAN_NOTIFY_URLS = f"mailto://127.0.0.1:{free_port()}?from=hokan@example.com&to=ops@example.com"

    assert notify.send(MESSAGE) is False


def test_it_logs_an_unparseable_url_without_its_secret(settings, notify_log):
    settings.HOKAN_NOTIFY_URLS = "nosuchservice://user:hunter2@example.com/x"

    assert notify.send(MESSAGE) is False
    assert "通知先URLを解釈できません (nosuchservice://…)" in notify_log.text
    assert "hunter2" not in notify_log.text


# --- SSRF guard ----------------------------------------------------------------------------------
def test_it_refuses_a_loopback_target_that_is_not_allow_listed(settings, webhook_receiver, notify_log):
    settings.HOKAN_FETCH_ALLOW_HOSTS = []
    settings.HOKAN_NOTIFY_URLS = webhook_receiver.json_url()

    assert notify.send(MESSAGE) is False
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

    assert notify.send(MESSAGE) is False
    assert f"送信を拒否しました ({reason})" in notify_log.text
    assert "s3cret" not in notify_log.text


# --- no target: the log ------------------------------------------------------------------------
def test_it_only_logs_without_urls_at_the_given_level(notify_log):
    assert notify.send(MESSAGE, level=logging.WARNING) is True

    [record] = [r for r in notify_log.records if r.name == "hokan.notify"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "【hokan】テスト通知: 3件\n本文の1行目\n対象: 株式会社A&B\n"


# --- text for a notice -----------------------------------------------------------------------------
def test_it_shortens_a_long_trace_keeping_its_head_and_its_last_line():
    frames = "".join(f'  File "/app/mod{i}.py", line {i}, in f{i}\n    step_{i}()\n' for i in range(400))
    trace = f"Traceback (most recent call last):\n{frames}RuntimeError: 最後の行\n"

    short = notify.shorten_trace(trace)

    assert len(short) <= notify.MAX_TRACE_CHARS + 50
    assert short.startswith("Traceback (most recent call last):")
    assert short.splitlines()[-1] == "RuntimeError: 最後の行"
    assert "（中略:" in short
    assert notify.shorten_trace("短い") == "短い"


def test_it_cuts_text_with_a_mark():
    assert notify.shorten("  株式会社サンプル  ", 100) == "株式会社サンプル"
    assert notify.shorten("あいうえお", 3) == "あい…"


# --- URL list --------------------------------------------------------------------------------------
def test_it_splits_urls_on_commas_and_spaces_but_keeps_recipient_lists():
    value = "mailto://127.0.0.1:25?from=a@x.jp&to=b@x.jp,c@x.jp, json://127.0.0.1:8/h  slack://T/B/C"

    assert notify.parse_notify_urls(value) == [
        "mailto://127.0.0.1:25?from=a@x.jp&to=b@x.jp,c@x.jp",
        "json://127.0.0.1:8/h",
        "slack://T/B/C",
    ]
    assert notify.parse_notify_urls("") == []
