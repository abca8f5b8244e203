"""Helpers of the estimate benchmarks: ``hokan serve`` (gunicorn) on 127.0.0.1 against a fresh
database, and the customer's calls through it.

- ``server_env(folder, **overrides)``: the environment of a server whose only remote parties
  are local fakes (every online setting cleared, the SSRF guard allowing 127.0.0.1).
- ``hokan_serve(env, log_path, workers=2)``: migrate, then ``hokan serve --workers N`` on a free
  port; yields ``(base URL, gunicorn master PID)``; stops the process group (SIGTERM) afterwards.
- ``children(pid)`` / ``cpu_seconds(pids)``: a process's children and the CPU time (user +
  system) of processes, from /proc.
- ``celery_worker(env, log_path)``: ``hokan worker`` on the queue ``celery``, stopped the same way.
- ``fakes_process()``: fake Gemini (answers each call correctly, at once) in a process of its
  own, Resend and Notion in another (``python bench/estimate_live.py fakes ...``), so that the
  load client and the fakes do not share a GIL; yields their settings for ``server_env``.
- ``new_session(client, url)`` / ``ANSWERS``: one customer's questionnaire.

All traffic goes to 127.0.0.1 (the fakes of tests/fakes run in this process).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
HOKAN = str(Path(sys.executable).with_name("hokan"))

ANSWERS = {
    "1": "corporation", "2": "manufacturing", "3": "21_50",
    "4": "受発注管理が手作業で、FAXの注文を表計算ソフトに転記しているためミスが多く困っています。",
    "5": "internal", "6": "web_app", "7": "new",
    "8": ["order_management", "inventory_management", "sales_analysis"],
    "9": "3months", "10": "both", "11": "3m_5m", "12": "セキュリティを重視したいです。",
    "13": {"name": "田中太郎", "company": "株式会社テスト製作所", "email": "tanaka@example.co.jp", "phone": "03-1234-5678"},
}
_PREFIXES = ("HOKAN_", "ESTIMATE_", "REDIS", "CELERY", "LLM_", "GEMINI_", "OPENAI_", "RESEND_", "NOTION_", "EMAIL_",
             "AUDIT_", "API_KEY", "NOTIFY_", "DATABASE_URL", "PERPLEXITY", "AZURE_", "GBIZINFO")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(folder: Path, **overrides: str) -> dict[str, str]:
    """Environment for a server in ``folder`` (SQLite there); ``overrides`` win."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    env.update({
        "DJANGO_SETTINGS_MODULE": "hokan.settings", "HOKAN_ENV_FILE": str(folder / "no.env"),
        "HOKAN_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'estimate.sqlite3'}", "DEBUG": "false",
        "LLM_PROVIDER": "fallback", "HOKAN_FETCH_ALLOW_HOSTS": "127.0.0.1", "PYTHONPATH": str(REPO / "src"),
    })
    env.update(overrides)
    return env


def _stop(process: subprocess.Popen, timeout_s: float = 30) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextlib.contextmanager
def hokan_serve(env: dict[str, str], log_path: Path, *, workers: int = 2) -> Iterator[tuple[str, int]]:
    """``hokan serve --workers N`` (gunicorn, its default --timeout 120) on a free port."""
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=600)
    port = free_port()
    with log_path.open("ab") as log:
        server = subprocess.Popen([HOKAN, "serve", "--port", str(port), "--workers", str(workers)], cwd=REPO, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"hokan serve did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield url, server.pid  # hokan serve exec()s gunicorn: the same PID
    finally:
        _stop(server)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()  # field 3 (state) onwards


def children(pid: int) -> list[int]:
    """PIDs of the live direct children of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by the processes ``pids`` (gone ones count 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        if fields := _stat(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@contextlib.contextmanager
def celery_worker(env: dict[str, str], log_path: Path, *, concurrency: int = 1) -> Iterator[subprocess.Popen]:
    """``hokan worker -Q celery`` (prefork) until the block ends."""
    with log_path.open("ab") as log:
        worker = subprocess.Popen([HOKAN, "worker", "-Q", "celery", "-c", str(concurrency)], cwd=REPO, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.monotonic() + 120
        while b"[tasks]" not in log_path.read_bytes():  # the banner (hokan's logging hides "ready.")
            if worker.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"hokan worker did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield worker
    finally:
        _stop(worker)


def new_session(client: httpx.Client, url: str) -> str:
    response = client.post(f"{url}/api/v1/estimate/session")
    response.raise_for_status()
    return str(response.json()["session_id"])


@contextlib.contextmanager
def _fake_child(which: str, nice: int) -> Iterator[dict[str, str]]:
    child = subprocess.Popen([sys.executable, __file__, "fakes", which, str(nice)], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the {which} fakes did not start")
        yield json.loads(line)
    finally:
        if child.stdin is not None:
            child.stdin.close()  # the child ends when its stdin closes
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(child)


@contextlib.contextmanager
def fakes_process() -> Iterator[dict[str, str]]:
    """The fakes in two child processes — Gemini (on the path of every request), and Resend +
    Notion at nice 10 (in production their CPU is not ours: parsing the mails' PDF attachments
    must not compete with the web workers); yields the server settings pointing at them."""
    with _fake_child("gemini", 0) as gemini, _fake_child("followups", 10) as followups:
        yield {**gemini, **followups}


def _serve_fakes(which: str, nice: int) -> None:
    from tests.estimate.conftest import smart_responder
    from tests.fakes.gemini_server import FakeGeminiServer
    from tests.fakes.notion_server import FakeNotionServer
    from tests.fakes.resend_server import FakeResendServer

    if nice:
        os.nice(nice)
    with contextlib.ExitStack() as stack:
        if which == "gemini":
            gemini = stack.enter_context(FakeGeminiServer(api_key="gemini-test-key", responder=smart_responder))
            found = {"LLM_PROVIDER": "gemini", "GEMINI_API_KEY": "gemini-test-key", "GEMINI_BASE_URL": gemini.base_url}
        else:
            resend = stack.enter_context(FakeResendServer(api_key="re_test"))
            notion = stack.enter_context(FakeNotionServer(api_key="secret_test"))
            found = {"RESEND_API_KEY": "re_test", "RESEND_API_BASE_URL": resend.base_url,
                     "NOTIFY_EMAIL": "ops@cloudnature.example", "NOTION_API_KEY": "secret_test",
                     "NOTION_DATABASE_ID": "db-bench", "NOTION_API_BASE_URL": notion.base_url}
        print(json.dumps(found), flush=True)
        sys.stdin.read()  # until the parent closes it


if __name__ == "__main__" and sys.argv[1:2] == ["fakes"]:
    _serve_fakes(sys.argv[2], int(sys.argv[3]))
