"""Real servers for tests, started on 127.0.0.1 and stopped by PID.

``redis_server()`` runs a throw-away Redis (Debian's redis-server, apt-packages.txt) on a free
loopback port, without persistence; the ``redis_server_url`` fixture gives one per test module
(import it into the test module: ``from tests.servers import redis_server_url``).

``postgres_server()`` runs a throw-away PostgreSQL cluster (Debian's postgresql package,
installed by ``make test`` through apt-packages.txt) on a free loopback port. PostgreSQL
refuses to run as root, so when the tests run as root the cluster belongs to the
``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, sig: int, *, timeout_s: float) -> None:
    """Stop a server started with ``start_new_session=True`` by its PID: ``sig`` to its process
    group, then SIGKILL if it has not exited after ``timeout_s`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def postgres_available() -> bool:
    return _pg_bin("initdb") is not None and _pg_bin("pg_ctl") is not None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a DATABASE_URL of a fresh PostgreSQL server on 127.0.0.1; stop it afterwards."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="hokan-pg-"))
    datadir = base / "data"
    port = free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*prefix, initdb, "-D", str(datadir), "-U", "hokan", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [
            *prefix,
            _pg_bin("postgres") or "postgres",
            "-D", str(datadir),
            "-h", "127.0.0.1",
            "-p", str(port),
            "-k", str(base),
            "-c", "fsync=off",
            "-c", "max_connections=100",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.1)
        # The server accepts connections slightly before it accepts logins.
        time.sleep(0.5)
        yield f"postgres://hokan@127.0.0.1:{port}/postgres"
    finally:
        stop_process_group(server, signal.SIGINT, timeout_s=20)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(base, ignore_errors=True)


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL (``redis://127.0.0.1:<port>/0``) of a fresh Redis server; stop it afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found (apt-get install redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="hokan-redis-"))
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Redis did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process_group(server, signal.SIGTERM, timeout_s=10)
        shutil.rmtree(workdir, ignore_errors=True)


try:
    import pytest

    @pytest.fixture(scope="module")
    def redis_server_url() -> Iterator[str]:
        """A Redis server for the test module (skips when redis-server is not installed)."""
        if not redis_available():
            pytest.skip("redis-server is not installed (apt-packages.txt)")
        with redis_server() as url:
            yield url
except ImportError:  # pragma: no cover - servers.py is also used outside pytest
    pass
