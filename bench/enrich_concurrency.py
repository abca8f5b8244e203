"""The enrichment run against a busy provider: concurrent versus the sequential loop, and spread
over processes and Celery workers (issue 8 §1–§2). Opt-in: minutes of wall time, not a test.

The provider is the fake of tests/fakes/faulty_provider.py on 127.0.0.1, as the issue describes
it: ``--per-minute`` requests a minute (60; beyond that 429 with Retry-After), ``--latency``
seconds per answer (1.0), ``--error-rate`` of HTTP 500s (0.05, seeded). Every run enriches
``--leads`` leads (120) that have a name only (no site: the LLM is asked for every lead) in a
fresh SQLite file database, through the real code: ``enrich_leads`` with the configured client
(3 retries per call), the shared rate limiter (pacer + AIMD), the usage ledger.

Modes (``--modes``, comma-separated; default ``sequential,concurrent``):

- ``sequential``: the loop of old — one lead after another (HOKAN_ENRICH_CONCURRENCY=1), in
  this process: the baseline;
- ``concurrent``: the same run with HOKAN_ENRICH_CONCURRENCY (8) threads, in this process;
- ``processes``: ``--processes`` (4) ``hokan leads enrich`` processes started together (they
  share one run: each claims chunks of its job);
- ``celery``: ``--workers`` (2) Celery workers (``--pool solo``) on a throw-away Redis
  (redis-server, apt-packages.txt), the nightly task enqueued once.

Reported per mode: leads done, paid calls (the ledger), calls the provider answered, leads paid
twice, 429s and 500s seen, wall seconds, and the ratio of the wall time to the limit's floor
(``leads / per_minute`` minutes: no schedule can be faster) and to the sequential loop.

Run from the repository root:
    .venv/bin/python bench/enrich_concurrency.py [--leads 120] [--latency 1.0] [--modes sequential,concurrent,processes,celery]
No network: sockets other than loopback are refused in this process (bench/_common.py); the
child processes talk to 127.0.0.1 only (the fake, Redis).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, no_network, offline_env, table  # noqa: E402

sys.path.insert(0, str(REPO))  # tests.fakes


PER_MINUTE = {"value": 60}  # --per-minute: the provider's limit, also our limiter's setting


def provider_env(base_url: str, **extra: str) -> dict[str, str]:
    """The settings of every run: the fake provider (and its limit as HOKAN_LLM_RATE_LIMIT_PER_MIN),
    no grounding fetches, a high daily limit."""
    env = {"HOKAN_LLM_RATE_LIMIT_PER_MIN": str(PER_MINUTE["value"]),
        "HOKAN_LLM_PROVIDER": "perplexity", "PERPLEXITY_API_KEY": "bench-key", "HOKAN_LLM_BASE_URL": base_url,
        "HOKAN_LLM_MODEL": "sonar", "HOKAN_FETCH_ALLOW_HOSTS": "127.0.0.1", "HOKAN_GROUNDING_MAX_PAGES": "0",
        "POWERPLEXY_DAILY_RECORD_LIMIT": "1000000", "POWERPLEXY_MONTHLY_CALL_LIMIT": "1000000",
        "POWERPLEXY_MONTHLY_COST_LIMIT_USD": "100000", "HOKAN_LLM_TIMEOUT_S": "30",
    }
    env.update(extra)
    return env


def company_in(body: object) -> str:
    from tests.fakes.faulty_provider import company_in as find

    return find(body)


def answer(_body: object):
    from tests.fakes.openai_server import Reply

    items = {"業種": "ソフトウェア", "従業員数": "120名", "資本金": "5,000万円", "設立年": "平成13年"}
    return Reply.json({k: {"value": v, "source_url": None, "quote": None} for k, v in items.items()},
                      cost_usd=Decimal("0.006"))


def names(leads: int, tag: str) -> list[str]:
    return [f"株式会社{tag}{i:04d}" for i in range(1, leads + 1)]


def figures(provider, company_names: list[str], wall_s: float, *, ledger_calls: int, done: int, per_minute: int,
            **extra: object) -> dict[str, object]:
    answered = provider.answered_companies()
    mine = {name: answered.get(name, 0) for name in company_names}
    wanted = set(company_names)
    arrivals = [at for at, body in provider.arrivals() if company_in(body) in wanted]
    return {
        "provider_span_s": (max(arrivals) - min(arrivals) + provider.latency_s) if arrivals else 0.0,
        "leads": len(company_names), "done": done, "paid_calls": ledger_calls,
        "answered": sum(mine.values()), "paid_twice": sum(1 for n in mine.values() if n > 1),
        "wall_s": wall_s, "floor_s": len(company_names) / per_minute * 60, **extra,
    }


# --- in process ---------------------------------------------------------------------------------
def in_process(mode: str, provider, args, folder: Path) -> dict[str, object]:
    """``sequential`` or ``concurrent`` in this process (Django set up once, see main)."""
    from hokan.core.budget import get_ledger
    from hokan.leads.enrich import enrich_leads
    from hokan.leads.models import Lead

    tag = "逐次" if mode == "sequential" else "並行"
    company_names = names(args.leads, tag)
    Lead.objects.filter(needs_ai_update=True).update(needs_ai_update=False)
    Lead.objects.bulk_create([Lead(name=name) for name in company_names])
    before = get_ledger().snapshot().calls
    errors, limited = provider.errors, provider.rate_limited
    started = time.perf_counter()
    report = enrich_leads(concurrency=1 if mode == "sequential" else args.concurrency, trigger="bench")
    wall = time.perf_counter() - started
    return figures(provider, company_names, wall, ledger_calls=get_ledger().snapshot().calls - before,
                   done=report.leads_done, per_minute=args.per_minute, status=report.status,
                   errors_500=provider.errors - errors, limited_429=provider.rate_limited - limited)


# --- processes ------------------------------------------------------------------------------------
def child_env(folder: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL")}
    env.update(provider_env(base_url, **extra))
    env.update(HOKAN_DATA_DIR=str(folder), DATABASE_URL=f"sqlite:///{folder / 'bench.sqlite3'}",
               DJANGO_SETTINGS_MODULE="hokan.settings", PYTHONPATH=str(REPO))
    return env


def seed(env: dict[str, str], company_names: list[str], folder: Path) -> None:
    csv = folder / "leads.csv"
    csv.write_text("企業名\n" + "\n".join(company_names) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "hokan", "leads", "import", str(csv)], env=env, check=True,
                   capture_output=True, cwd=REPO)


def state(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "tests.leads.task_helper", "state"], env=env, check=True,
                          capture_output=True, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def processes(provider, args, folder: Path) -> dict[str, object]:
    company_names = names(args.leads, "多重")
    env = child_env(folder, provider.base_url, HOKAN_ENRICH_CONCURRENCY=str(args.concurrency))
    seed(env, company_names, folder)
    errors, limited = provider.errors, provider.rate_limited
    started = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-m", "hokan", "leads", "enrich", "--no-table"], env=env, cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(args.processes)]
    outputs = [child.communicate() for child in children]
    wall = time.perf_counter() - started
    now = state(env)
    done = sum(1 for lead in now["leads"] if lead["employee_count"] == 120)
    return figures(provider, company_names, wall, ledger_calls=now["usage"]["calls"], done=done,
                   per_minute=args.per_minute, exit_codes=[c.returncode for c in children],
                   errors_500=provider.errors - errors, limited_429=provider.rate_limited - limited,
                   stderr_tail=[err[-300:] for _, err in outputs if err.strip()][:1])


def celery_workers(provider, args, folder: Path) -> dict[str, object]:
    from tests.servers import redis_available, redis_server, stop_process_group

    if not redis_available():
        return {"skipped": "redis-server is not installed"}
    company_names = names(args.leads, "分散")
    with redis_server() as redis_url:
        env = child_env(folder, provider.base_url, REDIS_URL=redis_url, CELERY_BROKER_URL="",
                        HOKAN_ENRICH_CONCURRENCY=str(args.concurrency))
        seed(env, company_names, folder)
        workers = []
        for i in range(args.workers):
            log = open(folder / f"worker{i}.log", "wb")  # noqa: SIM115  (closed with the process)
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "hokan.celery", "worker", "-Q", "ai_enrich", "--pool", "solo",
                 "-n", f"bench{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        errors, limited = provider.errors, provider.rate_limited
        try:
            time.sleep(3)  # let the workers connect
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tests.leads.task_helper", "enqueue"], env=env, check=True,
                           capture_output=True, cwd=REPO)
            deadline = started + max(600, 20 * args.leads)
            while time.perf_counter() < deadline:
                now = state(env)
                if now["runs"] and now["runs"][0]["status"] in ("succeeded", "failed", "limited"):
                    break
                time.sleep(2)
            wall = time.perf_counter() - started
        finally:
            for worker in workers:
                stop_process_group(worker, signal.SIGTERM, timeout_s=20)
    (run,) = now["runs"]
    return figures(provider, company_names, wall, ledger_calls=now["usage"]["calls"], done=run["leads_done"],
                   per_minute=args.per_minute, status=run["status"], errors_500=provider.errors - errors,
                   limited_429=provider.rate_limited - limited, note="wall time includes state polling (2 s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=120)
    parser.add_argument("--per-minute", type=int, default=60)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8, help="HOKAN_ENRICH_CONCURRENCY of the concurrent runs")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default="sequential,concurrent")
    parser.add_argument("--settle", type=float, default=61.0,
                        help="seconds to wait between modes, so each starts with the provider's minute empty")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    PER_MINUTE["value"] = args.per_minute
    no_network()
    from tests.fakes.faulty_provider import FaultyProvider

    results: dict[str, dict[str, object]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="hokan-bench-conc-"))
    try:
        # This process's Django: a fresh file database, the fake provider's settings.
        offline_env(tmp / "main")
        (tmp / "main").mkdir()
        with FaultyProvider(api_key="bench-key", per_minute=args.per_minute, latency_s=args.latency,
                            error_rate=args.error_rate, seed=args.seed, answer=answer) as provider:
            os.environ.update(provider_env(provider.base_url))
            sys.path.insert(0, str(REPO / "src"))
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            for mode in modes:
                print(f"… {mode}", file=sys.stderr, flush=True)
                time.sleep(args.settle if results else 0)  # each mode starts with the provider's minute empty
                if mode in ("sequential", "concurrent"):
                    results[mode] = in_process(mode, provider, args, tmp / "main")
                elif mode == "processes":
                    (tmp / "processes").mkdir()
                    results[mode] = processes(provider, args, tmp / "processes")
                elif mode == "celery":
                    (tmp / "celery").mkdir()
                    results[mode] = celery_workers(provider, args, tmp / "celery")
                else:
                    print(f"unknown mode {mode}", file=sys.stderr)
                    return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"enrichment against a {args.per_minute}/min provider, {args.latency:g} s latency, "
          f"{args.error_rate:.0%} HTTP 500 — {args.leads} leads ({machine()})\n")
    base = results.get("sequential", {}).get("wall_s")
    labels = {"sequential": "sequential loop (1 at a time)", "concurrent": f"concurrent ({args.concurrency} threads)",
              "processes": f"{args.processes} hokan leads enrich processes", "celery": f"{args.workers} Celery workers"}
    rows = []
    for mode, r in results.items():
        if "skipped" in r:
            rows.append((labels[mode], "-", "-", "-", "-", "-", "-", "-", "-", r["skipped"]))
            continue
        rows.append((labels[mode], f"{r['done']}/{r['leads']}", r["paid_calls"], r["answered"], r["paid_twice"],
                     r.get("limited_429", "-"), r.get("errors_500", "-"), f"{r['wall_s']:.0f}",
                     f"{r['provider_span_s']:.0f}", f"{r['wall_s'] / r['floor_s']:.2f}x",
                     f"{r['wall_s'] / base:.2f}x" if base else "-"))
    print(table(("run", "done", "paid calls", "answered", "paid twice", "429s", "500s", "wall s", "provider s",
                 "/ floor", "/ sequential"), rows))
    print("\nprovider s: first request to last answer as the provider saw them (without process start-up)")
    print(f"\nfloor: {args.leads} leads / {args.per_minute} per minute = {args.leads / args.per_minute * 60:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
