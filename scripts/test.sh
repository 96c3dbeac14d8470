#!/usr/bin/env bash
# The whole suite in two passes: the in-process and simulator tests (each its own
# database, namespaces named after its process) spread over the cores by pytest-xdist,
# then the clusters, browsers, QEMU guests and measured rates, one at a time: their
# processes' timers and watchdogs, and the figures they measure, must not compete.
# Arguments go to both passes; with your own `-m`, one plain pass runs instead.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PARALLEL="not e2e and not browser and not realnic and not timing"
WORKERS=${CIAO_TEST_WORKERS:-$(nproc)}

for arg in "$@"; do
  case "$arg" in -m | -m*) exec "$PY" -m pytest "$@" ;; esac
done

"$PY" -m pytest -m "$PARALLEL" -n "$WORKERS" "$@"
first=$?
"$PY" -m pytest -m "not ($PARALLEL)" "$@"
second=$?
# 5 = this pass selected nothing (e.g. a path of the other layer only)
if [ "$first" = 5 ] && [ "$second" = 5 ]; then exit 5; fi
for rc in "$first" "$second"; do
  if [ "$rc" != 0 ] && [ "$rc" != 5 ]; then exit "$rc"; fi
done
exit 0
