"""How much the follow-ups (PDF, mails, Notion) of ``POST generate`` cost the web server under
load, per follow-up mode (issue 9 §4).

One ``hokan serve --workers 2`` (gunicorn sync workers, SQLite) per mode, all started first,
against fake Gemini / Resend / Notion servers on 127.0.0.1 (in processes of their own; Resend
and Notion at nice 10, their CPU is not ours in production). A client in this process sends
``POST /api/v1/estimate/generate`` — each for a new session, with all 13 answers; sessions are
created before the clock starts — from ``--concurrency`` threads. The modes take turns: each
cycle sends a burst of ``--requests`` to every mode's server in order, and waits until that
burst's follow-ups are all done before the next burst (so one mode's backlog never runs during
another's burst). Modes:

- ``off``        no follow-ups: the baseline
- ``sync``       in the request, before the response
- ``thread``     a thread of the web worker (the former default)
- ``process``    the drainer process (the default without a broker): it defers the follow-ups
                 while estimates keep completing, up to ESTIMATE_FOLLOWUPS_MAX_DELAY_S (60 s)
- ``process-now`` the drainer without deferring (ESTIMATE_FOLLOWUPS_MAX_DELAY_S=0)
- ``queued``     as ``process``, but the drainer is held off (this script holds its lock) until
                 the burst ends: what storing the jobs alone costs, and how fast a backlog drains
- ``redis-off``  REDIS_URL set (ledger, limiter and cache in Redis), no follow-ups: the baseline
                 of ``celery``
- ``celery``     REDIS_URL set, Celery tasks run by ``hokan worker -Q celery -c 1`` (a
                 redis-server on 127.0.0.1)

Reported per mode, as the median over the cycles: requests/s and p95 latency of generate,
each also as the median of its per-cycle ratio to ``off`` (the same cycle: the machine's load
from other work changes between cycles, much less within one); the CPU time per request of the
two web workers and of the follow-up process (drainer or Celery worker, from /proc, from the
start of a burst until its follow-ups are done) — CPU per request is the steadiest figure on a
shared machine; and how long after a burst's last response its last follow-up was done.

    .venv/bin/python bench/estimate_followups.py                       # all modes, 5 cycles
    .venv/bin/python bench/estimate_followups.py --modes off,thread,process --cycles 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import no_network  # noqa: E402
from estimate_live import (  # noqa: E402
    ANSWERS,
    celery_worker,
    children,
    cpu_seconds,
    fakes_process,
    free_port,
    hokan_serve,
    server_env,
)

MODES = ("off", "sync", "thread", "process", "process-now", "queued", "redis-off", "celery")
FOLLOWUPS_SETTING = {"off": "off", "redis-off": "off", "queued": "process", "celery": "process",
                     "process-now": "process"}


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (needed for the redis-off and celery modes)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Server:
    mode: str
    folder: Path
    env: dict[str, str]
    url: str
    master: int
    worker: subprocess.Popen | None = None
    sent: int = 0
    results: list[dict] = field(default_factory=list)

    @property
    def lock(self) -> Path:
        from hokan.estimate import drainer

        return self.folder / drainer.LOCK_NAME

    def drainer_pid(self) -> int | None:
        from hokan.estimate import drainer

        return drainer.running_pid(self.lock)

    def followup_pids(self) -> list[int]:
        pids = [pid] if (pid := self.drainer_pid()) else []
        if self.worker is not None:
            pids += [self.worker.pid, *children(self.worker.pid)]
        return pids

    def followups_done(self) -> int:
        """Estimates whose operator mail went out (the last part of the follow-ups)."""
        url = self.env["DATABASE_URL"]
        if url.startswith("sqlite:///"):
            with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)) as db:
                return int(db.execute("SELECT COUNT(*) FROM estimate_estimate "
                                      "WHERE json_extract(followups, '$.operator_mail') = 'ok'").fetchone()[0])
        import psycopg

        with psycopg.connect(url) as db:
            return int(db.execute("SELECT COUNT(*) FROM estimate_estimate "
                                  "WHERE followups ->> 'operator_mail' = 'ok'").fetchone()[0])

    def wait_for_followups(self, timeout_s: float) -> bool:
        if FOLLOWUPS_SETTING.get(self.mode, self.mode) == "off":
            return True
        end = time.monotonic() + timeout_s
        while self.followups_done() < self.sent:
            if time.monotonic() > end:
                return False
            time.sleep(0.1)
        return True

    def sessions(self, count: int) -> list[str]:
        with httpx.Client(timeout=60) as client:
            return [client.post(f"{self.url}/api/v1/estimate/session").json()["session_id"] for _ in range(count)]


def load(url: str, sessions: list[str], concurrency: int) -> tuple[float, list[float], int]:
    """POST generate once per session from ``concurrency`` threads; (wall seconds, latencies, errors)."""
    local = threading.local()
    errors = 0
    lock = threading.Lock()

    def one(session_id: str) -> float:
        nonlocal errors
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=120)
        started = time.perf_counter()
        response = client.post(f"{url}/api/v1/estimate/generate", json={"session_id": session_id, "answers": ANSWERS})
        took = time.perf_counter() - started
        if response.status_code != 200 or response.json().get("status") != "completed":
            with lock:
                errors += 1
        return took

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(one, sessions))
    return time.perf_counter() - started, latencies, errors


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def burst(server: Server, args: argparse.Namespace) -> dict:
    """One burst of ``args.requests`` generate requests; waits for its follow-ups."""
    from hokan.estimate import drainer

    sessions = server.sessions(args.requests)
    held = None
    if server.mode == "queued":  # stop the drainer, then hold its lock: none starts during the burst
        if (pid := server.drainer_pid()) is not None:
            os.kill(pid, 15)
        while (held := drainer._try_lock(server.lock)) is None:
            time.sleep(0.05)
    web = children(server.master)
    web_cpu = cpu_seconds(web)
    other_cpu = cpu_by_pid(server.followup_pids())
    wall, latencies, errors = load(server.url, sessions, args.concurrency)
    server.sent += len(sessions)
    ended = time.monotonic()
    if held is not None:
        held.close()
        subprocess.Popen([sys.executable, "-m", "hokan.estimate.drainer", "--lock", str(server.lock)], env=server.env,
                         stdout=subprocess.DEVNULL, start_new_session=True)
    done = server.wait_for_followups(args.drain_timeout)
    after = round(time.monotonic() - ended, 1) if done else None
    web_cpu = cpu_seconds(web) - web_cpu
    other = sum(cpu - other_cpu.get(pid, 0.0) for pid, cpu in cpu_by_pid(server.followup_pids()).items())
    latencies.sort()
    n = len(latencies)
    return {"mode": server.mode, "requests": n, "errors": errors, "wall_s": round(wall, 2), "rps": n / wall,
            "p50_s": statistics.median(latencies), "p95_s": latencies[max(0, int(n * 0.95) - 1)],
            "web_cpu_ms": 1000 * web_cpu / n, "followups_cpu_ms": 1000 * other / n,
            "followups_done_after_s": after if FOLLOWUPS_SETTING.get(server.mode, server.mode) != "off" else None}


@contextlib.contextmanager
def start_server(mode: str, fakes: dict[str, str], stack: contextlib.ExitStack,
                 postgres: str | None = None) -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix=f"hokan-followups-{mode}-"))
    overrides = {**fakes, "ESTIMATE_FOLLOWUPS": FOLLOWUPS_SETTING.get(mode, mode),
                 "ESTIMATE_RATE_LIMIT_PER_MINUTE": "0", "HOKAN_LLM_RATE_LIMIT_PER_MIN": "0"}
    if postgres is not None:  # a database of its own on the one PostgreSQL server
        import psycopg

        name = "bench_" + mode.replace("-", "_")
        with psycopg.connect(postgres, autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        overrides["DATABASE_URL"] = postgres.rsplit("/", 1)[0] + "/" + name
    if mode == "process-now":
        overrides["ESTIMATE_FOLLOWUPS_MAX_DELAY_S"] = "0"
    if mode in ("redis-off", "celery"):
        overrides["REDIS_URL"] = stack.enter_context(redis_server())
    env = server_env(folder, **overrides)
    url, master = stack.enter_context(hokan_serve(env, folder / "serve.log", workers=2))
    server = Server(mode, folder, env, url, master)
    if mode == "celery":
        server.worker = stack.enter_context(celery_worker(env, folder / "worker.log"))
    try:
        yield server
    finally:
        if (pid := server.drainer_pid()) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)


def main() -> None:
    no_network()  # this process talks to 127.0.0.1 only (the servers' settings point there too)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--requests", type=int, default=80, help="generate requests per burst")
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the servers' database: an SQLite file each (hokan's default), or one database "
                             "each on a throw-away PostgreSQL server (tests/servers.py, fsync off)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"unknown modes: {', '.join(sorted(unknown))}")
    if "off" not in modes:
        modes.insert(0, "off")
    if "celery" in modes and "redis-off" not in modes:
        modes.insert(modes.index("celery"), "redis-off")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; bursts of {args.requests} generate requests "
          f"at concurrency {args.concurrency}, hokan serve --workers 2 per mode, {args.cycles} cycles, "
          f"{args.database}", flush=True)
    folders = []
    with fakes_process() as fakes, contextlib.ExitStack() as stack:
        postgres = None
        if args.database == "postgresql":
            from tests.servers import postgres_server

            postgres = stack.enter_context(postgres_server())
        servers = [stack.enter_context(start_server(mode, fakes, stack, postgres)) for mode in modes]
        folders = [s.folder for s in servers]
        for server in servers:  # warm-up: imports, fonts, connections
            load(server.url, server.sessions(args.warmup), args.concurrency)
            server.sent += args.warmup
            server.wait_for_followups(args.drain_timeout)
        for cycle in range(args.cycles):
            for server in servers:
                result = burst(server, args)
                server.results.append(result)
                print(f"cycle {cycle + 1} {server.mode:9s} {result['rps']:6.1f} req/s  p50 {result['p50_s']:.3f} s  "
                      f"p95 {result['p95_s']:.3f} s  web CPU {result['web_cpu_ms']:3.0f} ms/req  follow-up CPU "
                      f"{result['followups_cpu_ms']:3.0f} ms/req  errors {result['errors']}  follow-ups done "
                      f"{result['followups_done_after_s']} s after the burst", flush=True)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    report(servers)


def report(servers: list[Server]) -> None:
    base = next(s for s in servers if s.mode == "off").results

    def med(values: list[float]) -> float:
        return statistics.median(values)

    print()
    header = (f"{'mode':9s} {'req/s':>6s} {'vs off':>7s} {'p95 s':>6s} {'vs off':>7s} {'web CPU ms':>10s} {'vs off':>7s} "
              f"{'f-up CPU ms':>11s} {'f-ups done after':>16s}")
    print(header)
    print("-" * len(header))
    summary = []
    for server in servers:
        runs = server.results
        rps_ratio = med([r["rps"] / b["rps"] for r, b in zip(runs, base)])
        p95_ratio = med([r["p95_s"] / b["p95_s"] for r, b in zip(runs, base)])
        cpu_ratio = med([r["web_cpu_ms"] / b["web_cpu_ms"] for r, b in zip(runs, base)])
        afters = [r["followups_done_after_s"] for r in runs if r["followups_done_after_s"] is not None]
        row = {"mode": server.mode, "rps": round(med([r["rps"] for r in runs]), 1), "rps_vs_off": round(rps_ratio, 2),
               "p95_s": round(med([r["p95_s"] for r in runs]), 3), "p95_vs_off": round(p95_ratio, 2),
               "web_cpu_ms": round(med([r["web_cpu_ms"] for r in runs]), 1), "web_cpu_vs_off": round(cpu_ratio, 2),
               "followups_cpu_ms": round(med([r["followups_cpu_ms"] for r in runs]), 1),
               "followups_done_after_s": round(med(afters), 1) if afters else None,
               "errors": sum(r["errors"] for r in runs)}
        summary.append(row)
        after = "—" if row["followups_done_after_s"] is None else f"{row['followups_done_after_s']:.1f} s"
        print(f"{row['mode']:9s} {row['rps']:6.1f} {row['rps_vs_off']:6.2f}x {row['p95_s']:6.3f} {row['p95_vs_off']:6.2f}x "
              f"{row['web_cpu_ms']:10.0f} {row['web_cpu_vs_off']:6.2f}x {row['followups_cpu_ms']:11.0f} {after:>16s}")
    print(json.dumps({"summary": summary, "runs": {s.mode: s.results for s in servers}}, ensure_ascii=False))


if __name__ == "__main__":
    main()
