#!/bin/bash
# path_instructions.sh [COUNT] - instructions per received mcast at one node (gcs bench path's
# whole path: open, order, group layer), counted by valgrind (callgrind), so the figure does not
# depend on how busy the machine is. Two runs set up COUNT mcasts alike and differ only in how
# many go through the path (0 or COUNT); the difference over COUNT is the path's cost.
# Environment: SUITES (default "aes-256-gcm unkeyed"), GCS_PURE=1 for the pure-Python build.
set -euo pipefail
COUNT=${1:-500}
PY=${PYTHON:-python3}
command -v valgrind >/dev/null || { echo "path_instructions.sh: needs valgrind" >&2; exit 1; }
ir() {  # total instructions of one probe run
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$PY" -m gcs.bench.path "$@" \
    >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"
  rm -f "$out"
}
echo "build: $("$PY" -c 'from gcs.build import build_info; print(build_info().describe())')"
for suite in ${SUITES:-aes-256-gcm unkeyed}; do
  base=$(ir "$suite" "$COUNT" 0)
  full=$(ir "$suite" "$COUNT" "$COUNT")
  echo "$suite: $(( (full - base) / COUNT )) instructions per mcast ($COUNT mcasts of 1 KiB)"
done
