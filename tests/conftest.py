"""Shared pytest fixtures. Real data is read in place from HOKAN_SHARED_DATA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("HOKAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


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
from tests.fakes.fixtures import slack_webhook_receiver, smtp_server, webhook_receiver  # noqa: E402,F401
