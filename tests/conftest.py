"""Shared pytest fixtures. Real data is read in place from HOKAN_SHARED_DATA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# The fakes of tests/fakes listen on 127.0.0.1: tests may reach that literal host through the
# SSRF guard (hokan.core.web.http), like a deployment that lists an intranet host. Every other
# non-public address (localhost by name, ::1, 10.x, 169.254.169.254 ...) is still refused;
# tests of the refusal itself set HOKAN_FETCH_ALLOW_HOSTS = [] or pass allow_hosts=[].
# Subprocesses started by tests (workers, gunicorn) inherit it through the environment.
TEST_ALLOW_HOSTS = ["127.0.0.1"]
os.environ.setdefault("HOKAN_FETCH_ALLOW_HOSTS", ",".join(TEST_ALLOW_HOSTS))
SHARED_DATA = Path(os.environ.get("HOKAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(autouse=True)
def _fakes_on_loopback_are_reachable(settings):
    """HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"] for every test (see TEST_ALLOW_HOSTS)."""
    settings.HOKAN_FETCH_ALLOW_HOSTS = list(TEST_ALLOW_HOSTS)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip with a clear reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set HOKAN_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def company_pages(shared_data: Path) -> Path:
    path = shared_data / "company_pages"
    if not (path / "snapshot.csv").is_file():
        pytest.skip(f"{path}/snapshot.csv not found")
    return path


@pytest.fixture
def fake_openai_server():
    """A started fake OpenAI/Perplexity/Azure chat-completions server on 127.0.0.1
    (tests/fakes/openai_server.py: ``enqueue(Reply...)``, ``requests``, ``base_url``), stopped after the test."""
    from tests.fakes.openai_server import serve

    yield from serve()


# Local notification targets (SMTP server, webhook receiver, Slack-format webhook): see tests/fakes/fixtures.py.
from tests.fakes.fixtures import (  # noqa: E402,F401
    notify_log,
    notify_settings,
    slack_webhook_receiver,
    smtp_server,
    webhook_receiver,
)
