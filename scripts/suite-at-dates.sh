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
# process — pytest, the PostgreSQL server, Celery workers, Chromium — agrees on it. Only the
# wall clock moves (FAKETIME_DONT_FAKE_MONOTONIC=1): libfaketime 0.9.10 does not wrap
# sem_clockwait, so with a moved monotonic clock every timed wait of Python >= 3.11
# (Event.wait, Queue.get, Thread.join with a timeout) would wait for the offset, months.
# Workarounds for libfaketime itself (not for anything of hokan's):
# - time.sleep waits with select() (libfaketime's clock_nanosleep answers EINVAL to Python's
#   absolute monotonic sleep when the monotonic clock is not moved): a .pth file in the venv,
#   active only while FAKETIME is set, removed when the script ends (a .pth rather than
#   PYTHONPATH, which some tests set for their subprocesses);
# - redis-server and chromium run without libfaketime, through shims first on PATH (redis-server
#   does not start under it: jemalloc reads the clock while libfaketime initialises; headless
#   Chromium hangs). Redis's clock is behind the moved one, so every EXPIREAT the ledger sets is
#   further in Redis's future, and the ledger's own times (created_at, staleness) are all read
#   from Redis's clock.
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
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
SLEEP_MODULE="_hokan_faketime_sleep_$$"
trap 'rm -rf "$SHIM" "$SITE/$SLEEP_MODULE.py" "$SITE/$SLEEP_MODULE.pth"' EXIT
for program in redis-server chromium chromium-browser; do
  real="$(command -v "$program" || true)"
  if [ -n "$real" ]; then
    printf '#!/bin/sh\nexec env -u LD_PRELOAD -u FAKETIME %s "$@"\n' "$real" > "$SHIM/$program"
    chmod +x "$SHIM/$program"
  fi
done
cat > "$SITE/$SLEEP_MODULE.py" <<'EOF'
"""time.sleep through select() while libfaketime moves the clock (scripts/suite-at-dates.sh)."""
import os
import select
import time

if os.environ.get("FAKETIME") and "faketime" in os.environ.get("LD_PRELOAD", ""):
    def _sleep(seconds):
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            select.select([], [], [], remaining)

    time.sleep = _sleep
EOF
echo "import $SLEEP_MODULE" > "$SITE/$SLEEP_MODULE.pth"

declare -a RESULTS=()
status=0
for name in $DATES; do
  read -r offset shown_day shown_time shown_zone < <(moment "$name") || exit 2
  shown="$shown_day $shown_time $shown_zone"
  export_env=(env LD_PRELOAD="$LIB" FAKETIME="+$offset" FAKETIME_DONT_FAKE_MONOTONIC=1 TZ=UTC
              PATH="$SHIM:$PATH")
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
