#!/bin/bash
# profile.sh OUTDIR [gcs bench ring options...]
#
# Runs `gcs bench ring` with the given options (default: one sender, 64 B, unsealed, classic,
# one 25 s run) and, 6 s in, attaches py-spy to every node process for 12 s at 200 Hz. Writes
# OUTDIR/nodeN.txt (collapsed stacks) and OUTDIR/summary.txt (top functions per node).
# py-spy is a measuring tool, not a dependency: `pip install py-spy` into the venv first.
set -euo pipefail
OUT=${1:?usage: profile.sh OUTDIR [gcs bench ring options...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
if [ $# -eq 0 ]; then
  set -- --only tput --sizes 64 --seconds 25 --runs 1 --sealing off --ring classic
fi
command -v py-spy >/dev/null || { echo "py-spy not found: pip install py-spy" >&2; exit 1; }
gcs bench ring --quiet "$@" > "$OUT/bench.txt" 2>&1 &
BENCH=$!
sleep 6
SPIES=()
for pid in $(pgrep -P "$BENCH" -f gcs.bench.ring_worker || true); do
  node=$(tr '\0' '\n' < "/proc/$pid/cmdline" | grep -o '"node_id": [0-9]*' | grep -o '[0-9]*$')
  py-spy record -p "$pid" -d 12 -r 200 --nonblocking -f raw -o "$OUT/node$node.txt" \
    > /dev/null 2>&1 &
  SPIES+=($!)
done
[ ${#SPIES[@]} -gt 0 ] || { echo "no node processes found" >&2; kill "$BENCH"; exit 1; }
wait "${SPIES[@]}"
wait "$BENCH" || true
python3 "$HERE/pyspy_summary.py" "$OUT"/node*.txt | tee "$OUT/summary.txt"
