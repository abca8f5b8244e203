"""Resend failures by kind: 429 / 5xx / no answer are transient (``MailUnavailable``, a
``TransientError`` with Retry-After), a refusal is final (``MailError``)."""

from __future__ import annotations

import socket

import pytest

from hokan.core.errors import TransientError
from hokan.estimate import mail
from tests.fakes.resend_server import FakeResendServer

MESSAGE = mail.Mail(to=["tanaka@example.co.jp"], subject="件名", text="本文", html="<p>本文</p>")


def test_a_429_with_retry_after_is_transient_and_says_how_long(settings):
    with FakeResendServer(api_key="re_test") as resend:
        resend.fail_next(1, status=429, retry_after="7")
        settings.RESEND_API_KEY, settings.RESEND_API_BASE_URL = "re_test", resend.base_url
        with pytest.raises(mail.MailUnavailable) as caught:
            mail.send(MESSAGE)
        assert mail.send(MESSAGE) == "resend"  # the next try goes through
    assert isinstance(caught.value, TransientError) and isinstance(caught.value, mail.MailError)
    assert caught.value.status_code == 429 and caught.value.retry_after_s == 7.0
    assert len(resend.emails) == 1


def test_a_5xx_is_transient_without_a_wait(settings):
    with FakeResendServer(api_key="re_test") as resend:
        resend.fail_next(1, status=503)
        settings.RESEND_API_KEY, settings.RESEND_API_BASE_URL = "re_test", resend.base_url
        with pytest.raises(mail.MailUnavailable) as caught:
            mail.send(MESSAGE)
    assert caught.value.status_code == 503 and caught.value.retry_after_s is None


def test_a_refused_key_is_final(settings):
    with FakeResendServer(api_key="re_test") as resend:
        settings.RESEND_API_KEY, settings.RESEND_API_BASE_URL = "re_wrong", resend.base_url
        with pytest.raises(mail.MailError) as caught:
            mail.send(MESSAGE)
    assert not isinstance(caught.value, TransientError)
    assert caught.value.status_code == 403


def test_no_server_listening_is_transient(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    settings.RESEND_API_KEY, settings.RESEND_API_BASE_URL = "re_test", f"http://127.0.0.1:{port}"
    with pytest.raises(mail.MailUnavailable) as caught:
        mail.send(MESSAGE)
    assert caught.value.status_code is None
