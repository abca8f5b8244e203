"""The scoring pipeline against a rate-limited provider (issue 11 §7; design document 002 §6):
rows/min and requests/min against the provider's ceiling, the share of 429s, versus a
one-call-per-row sequential baseline in the same run. Opt-in: minutes of wall time, not a test.

The provider is the fake of tests/fakes/faulty_provider.py on 127.0.0.1: ``--ceilings``
requests a minute (60 and 500; beyond that 429 with Retry-After, a sliding window of 60 s),
``--latency`` seconds per answer (1.0). Answers come from tests/scoring/fake_scorer.py (a valid
score for every utterance of the prompt). Each run is ``hokan scoring run`` in its own process
on a fresh SQLite file (results, chunks, paid answers) with a throw-away Redis for the shared
limiter, the ledger and the LLM cache — the deployment the README describes for more than one
process; HOKAN_LLM_RATE_LIMIT_PER_MIN is set to the ceiling (the provider's documented limit).

Per ceiling:

- ``pipeline``: a sheet of ``--rows`` rows (10,200), ``--per-call`` utterances per request (10),
  concurrency 1..16 (AIMD); stopped after ``--max-seconds`` (150) when the sheet would take
  longer (at 60/min: 1,020 requests = 17 minutes), the rates measured over what ran;
- ``baseline``: the same program with one utterance per request and concurrency 1..1 (one call
  per row, one at a time: the loop of old), for ``--baseline-seconds`` (60).

Measured at the fake (what the provider saw): requests answered per minute between the first
and the last request of the run (steady state), rows per minute (requests × utterances per
request), 429s as a share of all requests, and the ratio to the ceiling and to the baseline.

Run from the repository root:
    .venv/bin/python bench/scoring_throughput.py [--rows 10200] [--ceilings 60,500] [--per-call 10]
No network: sockets other than loopback are refused in this process (bench/_common.py); the
child processes talk to 127.0.0.1 only (the fake, Redis).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, no_network, table  # noqa: E402

sys.path.insert(0, str(REPO))  # tests.fakes, tests.scoring


CATEGORIES = [
    {"name": "不満", "description": "商品やサービスへの不満・苦情を述べている"},
    {"name": "要望", "description": "改善や新機能の要望を述べている"},
    {"name": "称賛", "description": "商品やサービスを褒めている"},
]


def write_inputs(folder: Path, rows: int, tag: str) -> None:
    with (folder / "in.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "発話"])
        for i in range(rows):
            writer.writerow([f"{tag}{i}", f"{tag}{i:06d}: 注文した商品の到着が遅く、問い合わせへの返事もなかった。次回は改善してほしい。"])
    (folder / "cats.json").write_text(json.dumps(CATEGORIES, ensure_ascii=False), encoding="utf-8")


def migrated(template: Path) -> Path:
    folder = template.parent
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v0"], cwd=REPO, check=True, timeout=600,
                   env=dict(env, DJANGO_SETTINGS_MODULE="hokan.settings", HOKAN_DATA_DIR=str(folder)))
    return template


def run_once(label: str, provider, answers, *, template: Path, redis_url: str, rows: int, per_call: int,
             concurrency_max: int, ceiling: int, max_seconds: float) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix=f"scoring-bench-{label}-"))
    shutil.copy(template, folder / "hokan.sqlite3")
    tag = f"{label}{ceiling}-"
    write_inputs(folder, rows, tag)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "HOKAN_LOG_LEVEL")}
    env.update(
        HOKAN_DATA_DIR=str(folder), REDIS_URL=redis_url, COLUMNS="160", HOKAN_LLM_PROVIDER="perplexity",
        PERPLEXITY_API_KEY="test-key", HOKAN_LLM_BASE_URL=provider.base_url, HOKAN_LLM_MODEL="sonar",
        HOKAN_LLM_TIMEOUT_S="30", HOKAN_FETCH_ALLOW_HOSTS="127.0.0.1", HOKAN_LLM_RATE_LIMIT_PER_MIN=str(ceiling),
        HOKAN_LLM_RATE_LIMIT_BURST="1", HOKAN_SCORING_MONTHLY_CALL_LIMIT="1000000",
        HOKAN_SCORING_MONTHLY_COST_LIMIT_USD="100000", HOKAN_SCORING_UTTERANCES_PER_CALL=str(per_call),
        HOKAN_SCORING_CONCURRENCY_MAX=str(concurrency_max), HOKAN_SCORING_CONCURRENCY_MIN="1",
    )
    first_request = len(provider.statuses())
    calls_before = answers.calls
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "hokan", "scoring", "run", str(folder / "in.csv"), "--categories",
                             str(folder / "cats.json"), "--text-column", "発話", "--job", label], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stopped = False
    err = ""
    try:
        _, err = proc.communicate(timeout=max_seconds)
    except subprocess.TimeoutExpired:
        stopped = True
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the run puts its chunks back and ends
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    wall = time.monotonic() - started
    if proc.returncode not in (0, 130, -2) and not stopped:
        print(f"{label}: exit {proc.returncode}: {err[-2000:]}", file=sys.stderr)
    seen = provider.statuses()[first_request:]
    ok = [at for at, status in seen if status == 200]
    limited = sum(1 for _, status in seen if status == 429)
    span = (max(ok) - min(ok)) if len(ok) > 1 else 0.0
    per_min = (len(ok) - 1) / span * 60 if span else 0.0
    sizes = answers.sizes[calls_before:]
    mean_size = sum(sizes) / len(sizes) if sizes else 0.0
    shutil.rmtree(folder, ignore_errors=True)
    return {"mode": label, "ceiling_per_min": ceiling, "rows": rows, "utterances_per_call": per_call,
            "requests": len(seen), "answered": len(ok), "rate_limited_429": limited,
            "share_429": limited / len(seen) if seen else 0.0, "requests_per_min": per_min,
            "rows_per_min": per_min * mean_size, "ceiling_used": per_min / ceiling, "wall_s": wall,
            "stopped_after_s": max_seconds if stopped else None, "exit": proc.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_200)
    parser.add_argument("--ceilings", default="60,500")
    parser.add_argument("--per-call", type=int, default=10)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=150.0)
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    no_network()

    from tests.fakes.faulty_provider import FaultyProvider
    from tests.scoring.fake_scorer import ScoringAnswers
    from tests.servers import redis_server

    root = Path(tempfile.mkdtemp(prefix="scoring-bench-"))
    template = migrated(root / "template" / "hokan.sqlite3")
    results = []
    for ceiling in (int(c) for c in args.ceilings.split(",")):
        for label, rows, per_call, conc, seconds in (
                ("baseline", args.rows, 1, 1, args.baseline_seconds),
                ("pipeline", args.rows, args.per_call, 16, args.max_seconds)):
            # a fresh provider (its 60 s window empty) and a fresh Redis (the limiter's state) per run
            answers = ScoringAnswers()
            with redis_server() as redis_url, \
                    FaultyProvider(per_minute=ceiling, latency_s=args.latency, answer=answers) as provider:
                result = run_once(label, provider, answers, template=template, redis_url=redis_url, rows=rows,
                                  per_call=per_call, concurrency_max=conc, ceiling=ceiling, max_seconds=seconds)
            results.append(result)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    shutil.rmtree(root, ignore_errors=True)
    by = {(r["mode"], r["ceiling_per_min"]): r for r in results}
    rows_out = []
    for r in results:
        base = by.get(("baseline", r["ceiling_per_min"]))
        ratio = r["rows_per_min"] / base["rows_per_min"] if base and base["rows_per_min"] else 0.0
        rows_out.append([r["mode"], r["ceiling_per_min"], f"{r['requests_per_min']:.1f}", f"{r['ceiling_used']:.1%}",
                         f"{r['rows_per_min']:.0f}", f"{ratio:.1f}x", r["rate_limited_429"], f"{r['share_429']:.2%}",
                         f"{r['wall_s']:.0f}"])
    print(machine())
    print(table(["mode", "ceiling/min", "requests/min", "of ceiling", "rows/min", "vs baseline", "429s", "429 share",
                 "wall s"], rows_out))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
