#!/usr/bin/env bash
# Run the test suite with the clock of every process moved (libfaketime, Debian package
# `faketime`, apt-packages.txt): to a month end, a leap day and a year ahead (issue 7 §0: the
# suite must pass on any date).
#
#   scripts/suite-at-dates.sh                                  # the whole suite, three times
#   scripts/suite-at-dates.sh tests/core/test_budget*.py       # any pytest arguments
#   SUITE_DATES="month-end" scripts/suite-at-dates.sh -x       # only some of the dates
#
# The moments are relative to today, in Asia/Tokyo (the project's TIME_ZONE):
#   month-end   the next 31 January, 23:30 JST (14:30 UTC: both still on the 31st)
#   leap-day    the next 29 February, 08:00 JST (23:00 UTC on the 28th: the two calendars disagree)
#   year-ahead  a year from now, same time of day
# FAKETIME is an offset ("+N" seconds) from the real clock, so the clock keeps running and every
# process — pytest, the Redis and PostgreSQL servers, Celery workers, Chromium — agrees on it.
# (The monotonic clock is offset too: FAKETIME_DONT_FAKE_MONOTONIC=1 makes Python's time.sleep
# fail with EINVAL under libfaketime 0.9.10.) One exception: redis-server does not start under
# libfaketime (jemalloc reads the clock while libfaketime initialises), so the tests' Redis
# servers run on the real clock through a redis-server shim put first on PATH. The real clock
# is behind the moved one, so every EXPIREAT the ledger sets is further in Redis's future, and
# the ledger's own times (created_at, staleness) are all read from Redis's clock.
# Exit status: 0 when every run passed, else 1 (each run's result is listed at the end).
set -uo pipefail
cd "$(dirname "$0")/.."

PY="${PY:-.venv/bin/python}"
LIB="$(ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -1)"
if [ -z "$LIB" ]; then
  echo "libfaketime not found: run 'make apt' (apt-packages.txt lists faketime)" >&2
  exit 2
fi
DATES="${SUITE_DATES:-month-end leap-day year-ahead}"
ARGS=("$@")
if [ ${#ARGS[@]} -eq 0 ]; then
  ARGS=(-q -p no:cacheprovider)
fi

# "<offset seconds> <moment in JST>" for one named moment.
moment() {
  "$PY" - "$1" <<'EOF'
import datetime as dt, math, sys, time
from zoneinfo import ZoneInfo

jst = ZoneInfo("Asia/Tokyo")
now = dt.datetime.now(jst)


def next_date(month, day, after):
    year = after.year
    while True:
        try:
            candidate = dt.date(year, month, day)
        except ValueError:  # 29 February of a common year
            year += 1
            continue
        if candidate > after:
            return candidate
        year += 1


name = sys.argv[1]
if name == "month-end":
    day = next_date(1, 31, now.date())
    target = dt.datetime(day.year, day.month, day.day, 23, 30, tzinfo=jst)
elif name == "leap-day":
    day = next_date(2, 29, now.date())
    target = dt.datetime(day.year, day.month, day.day, 8, 0, tzinfo=jst)
elif name == "year-ahead":
    try:
        target = now.replace(year=now.year + 1)
    except ValueError:  # today is 29 February
        target = now.replace(year=now.year + 1, day=28)
else:
    sys.exit(f"unknown moment {name!r} (month-end, leap-day, year-ahead)")
print(math.ceil(target.timestamp() - time.time()), target.strftime("%Y-%m-%d %H:%M JST"))
EOF
}

SHIM="$(mktemp -d)"
trap 'rm -rf "$SHIM"' EXIT
REDIS_SERVER="$(command -v redis-server || true)"
if [ -n "$REDIS_SERVER" ]; then
  printf '#!/bin/sh\nexec env -u LD_PRELOAD -u FAKETIME %s "$@"\n' "$REDIS_SERVER" > "$SHIM/redis-server"
  chmod +x "$SHIM/redis-server"
fi

declare -a RESULTS=()
status=0
for name in $DATES; do
  read -r offset shown_day shown_time shown_zone < <(moment "$name") || exit 2
  shown="$shown_day $shown_time $shown_zone"
  export_env=(env LD_PRELOAD="$LIB" FAKETIME="+$offset" TZ=UTC PATH="$SHIM:$PATH")
  seen="$("${export_env[@]}" "$PY" -c 'import datetime as dt, zoneinfo; print(dt.datetime.now(zoneinfo.ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M JST"))')"
  echo "=== $name: the clock at $shown (processes see $seen; FAKETIME=+${offset}s) ==="
  if [ "${seen:0:10}" != "${shown:0:10}" ]; then
    echo "libfaketime did not move the clock ($seen != $shown)" >&2
    exit 2
  fi
  "${export_env[@]}" "$PY" -m pytest "${ARGS[@]}"
  rc=$?
  RESULTS+=("$name ($shown): $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)")")
  [ $rc -eq 0 ] || status=1
done
echo
echo "=== suite at dates ==="
printf '%s\n' "${RESULTS[@]}"
exit $status
