#!/usr/bin/env bash
# The whole suite in three passes:
# 1. in-process, simulator and agent tests (each its own database, namespaces named
#    after its process), spread over the cores by pytest-xdist;
# 2. the local clusters and browsers, a test file per worker (`--dist loadfile`: a
#    module's cluster fixture is started once), two files side by side by default;
# 3. the QEMU guests (TCG: a busy machine slows them several times) and the measured
#    rates, one at a time: the figures they measure must not compete.
# Arguments go to every pass; with your own `-m`, one plain pass runs instead.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PARALLEL="not e2e and not browser and not realnic and not timing"
CLUSTERS="(e2e or browser) and not realnic and not timing"
ALONE="realnic or timing"
WORKERS=${CIAO_TEST_WORKERS:-$(nproc)}
CLUSTER_WORKERS=${CIAO_CLUSTER_WORKERS:-2}

for arg in "$@"; do
  case "$arg" in -m | -m*) exec "$PY" -m pytest "$@" ;; esac
done

codes=()
"$PY" -m pytest -m "$PARALLEL" -n "$WORKERS" "$@"
codes+=($?)
"$PY" -m pytest -m "$CLUSTERS" -n "$CLUSTER_WORKERS" --dist loadfile "$@"
codes+=($?)
"$PY" -m pytest -m "$ALONE" "$@"
codes+=($?)
# 5 = a pass selected nothing (e.g. a path of another layer only)
worst=5
for rc in "${codes[@]}"; do
  if [ "$rc" != 0 ] && [ "$rc" != 5 ]; then exit "$rc"; fi
  if [ "$rc" = 0 ]; then worst=0; fi
done
exit "$worst"
