"""The admin pages rendered by a real browser (headless Chromium) into PNG files.

A WSGI server on 127.0.0.1 serves the app with a logged-in superuser's session cookie added to
every request (Chromium's command line cannot set cookies). Set HOKAN_SCREENSHOT_DIR to keep
the PNGs for a look; otherwise they go to pytest's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.wsgi import get_wsgi_application
from django.utils import timezone

from hokan.core.budget import get_ledger
from hokan.leads.models import EnrichmentRun, Lead, LeadFieldSource

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-packages.txt)"),
]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _ThreadedServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):  # one thread per request, like runserver
        thread = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        thread.start()

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


@pytest.fixture
def logged_in_server(transactional_db, admin_user):
    session = SessionStore()
    session["_auth_user_id"] = str(admin_user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = admin_user.get_session_auth_hash()
    session.create()
    app = StaticFilesHandler(get_wsgi_application())

    def with_session(environ, start_response):
        environ["HTTP_COOKIE"] = f"sessionid={session.session_key}"
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, with_session, server_class=_ThreadedServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def screenshot(url: str, path: Path, size: str = "1400,1000") -> Path:
    profile = tempfile.mkdtemp(prefix="hokan-chromium-")
    try:
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--virtual-time-budget=3000", f"--screenshot={path}",
             f"--window-size={size}", url],
            check=True, capture_output=True, timeout=90,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return path


def test_it_renders_the_admin_pages_in_a_browser(logged_in_server, tmp_path):
    from PIL import Image

    sega = Lead.objects.create(name="株式会社セガ", industry="ゲーム", prefecture="東京都", phone="03-6871-7000",
                               employee_count=3499, ai_last_enriched_at=timezone.now())
    LeadFieldSource.objects.create(lead=sega, field="phone", method="rule",
                                   source_url="https://www.sega.co.jp/company/",
                                   quote="TEL：03-6871-7000（代表）", raw="03-6871-7000", confidence=0.95)
    LeadFieldSource.objects.create(lead=sega, field="employee_count", method="ai", confidence=0.7,
                                   source_url="https://www.sega.co.jp/company/outline/", quote="従業員数 3,499名")
    EnrichmentRun.objects.create(lead=sega, trigger="api", status="succeeded", leads_done=1, llm_calls=1,
                                 cost_micro_usd=41_000, finished_at=timezone.now())
    ledger = get_ledger()
    ledger.commit(ledger.reserve(cost_usd=Decimal("0.05"), key="screens:1"), cost_usd=Decimal("0.04"))

    folder = Path(os.environ.get("HOKAN_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    pages = {
        "admin_leads_list": "/admin/leads/lead/",
        "admin_lead_change": f"/admin/leads/lead/{sega.pk}/change/",
        "admin_usage": "/admin/core/usagemonth/",
    }
    for name, path in pages.items():
        png = screenshot(logged_in_server + path, folder / f"{name}.png",
                         "1400,2600" if name == "admin_lead_change" else "1400,1000")
        image = Image.open(png).convert("RGB")
        assert image.size[0] == 1400
        # A rendered admin page has the header colour and many other colours (text, tables);
        # a blank or error page does not.
        assert len(image.getcolors(maxcolors=1_000_000)) > 50, name
