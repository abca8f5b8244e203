"""pytest fixtures for the local notification targets (imported by tests/conftest.py).

- ``webhook_receiver``: a started ``WebhookReceiver`` (tests/fakes/webhook_receiver.py);
  ``webhook_receiver.json_url("/hook")`` is the apprise URL, ``.requests`` what arrived.
- ``slack_webhook_receiver``: the same receiver, with apprise's Slack plugin pointed at it:
  apprise posts Slack webhooks to the fixed host ``https://hooks.slack.com/services`` (no URL
  option changes it), so the fixture replaces that one endpoint constant
  (``NotifySlack.webhook_url``) with ``<receiver>/services`` for the test. Use
  ``slack://T000/B000/XXXX`` (or ``https://hooks.slack.com/services/T000/B000/XXXX``) as the
  URL; the Slack payload arrives at ``/services/T000/B000/XXXX``.
- ``smtp_server``: a started ``SMTPServer`` (tests/fakes/smtp_server.py);
  ``smtp_server.apprise_url(to=...)`` is the apprise URL, ``.messages`` what arrived.

All of them listen on 127.0.0.1 only and stop after the test.

- ``notify_settings``: HOKAN_NOTIFY_URLS empty, a 2 s target timeout, 127.0.0.1 allowed by the
  SSRF guard (the tests' targets); ``notify_log``: caplog at DEBUG for ``hokan.notify``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.fakes import smtp_server as _smtp
from tests.fakes import webhook_receiver as _webhook


@pytest.fixture
def webhook_receiver() -> Iterator[_webhook.WebhookReceiver]:
    yield from _webhook.serve()


@pytest.fixture
def slack_webhook_receiver(
    webhook_receiver: _webhook.WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> _webhook.WebhookReceiver:
    from apprise.plugins.slack import NotifySlack

    monkeypatch.setattr(NotifySlack, "webhook_url", f"{webhook_receiver.url}/services")
    return webhook_receiver


@pytest.fixture
def smtp_server() -> Iterator[_smtp.SMTPServer]:
    yield from _smtp.serve()


@pytest.fixture
def notify_settings(settings):
    settings.HOKAN_NOTIFY_URLS = ""
    settings.HOKAN_NOTIFY_TIMEOUT_S = 2
    settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    return settings


@pytest.fixture
def notify_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="hokan.notify")
    return caplog
