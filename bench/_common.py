"""Helpers shared by the speed benchmarks in bench/ (not by registry_fill.py).

- ``no_network()``: refuse every socket connection and name lookup except loopback, so a
  benchmark can never send traffic out (a bug would show as an error, not as a request).
- ``shared_data()``: the shared data folder (env HOKAN_SHARED_DATA, default ../shared/data).
- ``setup_django(folder)``: Django with a fresh SQLite database in ``folder``, offline settings
  (no Redis, no LLM key, no gBizINFO token), migrated.
- ``table()``: a small fixed-width table for the console.
- ``peak_rss_mib()``: the process's peak resident memory so far (ru_maxrss), MiB.
- ``run_json_worker(script, args)``: run ``script`` again in a subprocess (its own process and
  database) and return the JSON object it prints last.

Benchmarks report ratios against a baseline measured in the same run (project rule); the
absolute seconds depend on the machine and its load and are context only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import resource
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Settings that would make the code under test talk to a server; cleared before Django starts.
_ONLINE_ENV = (
    "REDIS_URL", "CELERY_BROKER_URL", "GBIZINFO_API_TOKEN", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY",
    "GEMINI_API_KEY", "PERPLEXITY_API_KEY", "HOKAN_LLM_BASE_URL", "LLM_PROVIDER", "RESEND_API_KEY",
    "NOTION_API_KEY", "HOKAN_NOTIFY_URLS", "DATABASE_URL",
)  # fmt: skip


def _loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def no_network() -> None:
    """Make every non-loopback connect() / getaddrinfo() raise OSError in this process."""
    real_connect, real_connect_ex, real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):  # type: ignore[index]
            raise OSError(f"bench: network traffic refused ({address!r})")

    def connect(self: socket.socket, address: object) -> None:
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        if not _loopback(host):
            raise OSError(f"bench: name lookup refused ({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def shared_data() -> Path:
    """The shared data folder; exits with status 2 and a message when it is missing."""
    path = Path(os.environ.get("HOKAN_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
    if not path.is_dir():
        print(f"shared data not found: {path} (set HOKAN_SHARED_DATA)", file=sys.stderr)
        sys.exit(2)
    return path


def offline_env(folder: str | Path) -> None:
    """Point HOKAN_DATA_DIR / DATABASE_URL at ``folder`` and clear every online setting."""
    for name in _ONLINE_ENV:
        os.environ.pop(name, None)
    os.environ["HOKAN_DATA_DIR"] = str(folder)
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
    os.environ["HOKAN_LLM_PROVIDER"] = "offline"
    os.environ["DJANGO_SETTINGS_MODULE"] = "hokan.settings"


def setup_django(folder: str | Path) -> None:
    """Django on a fresh, migrated SQLite database in ``folder`` (offline settings)."""
    offline_env(folder)
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """One line: CPU count, Python and platform (for the printed header)."""
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.machine()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows as a fixed-width table; the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def run_json_worker(script: str | Path, args: Sequence[str]) -> dict:
    """Run ``python script *args`` from the repository root; the JSON object of its last output
    line. Exits with the worker's stderr when it fails."""
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{Path(script).name} {' '.join(args[:2])} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])
