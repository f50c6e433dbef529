#!/bin/bash
# compare.sh [OUTDIR] - corosync and gcs on this machine, side by side, in one command.
#
# 1. corosync: the shared anchor scripts (run-all.sh from ../shared/anchors/corosync, used in
#    place, never copied) for the configurations the comparison needs: udpu (no crypto),
#    knet-crypto (aes256 + sha256) and udpu-token300-coef0 (token 300 ms, consensus 360 ms).
# 2. gcs: `gcs bench ring --netns`, the same topology (one network namespace per node on a
#    bridge), sealed and unsealed, classic and accelerated ring, default and 65,000-byte frames.
# 3. `python -m gcs.bench.compare`: both tables and the ratio gcs/corosync per figure, with the
#    issue 6 targets; everything also as JSON.
#
# Needs root, iproute2, iptables, and corosync:
#   apt-get install -y corosync libcpg-dev libcorosync-common-dev gcc
# Environment: DUR (seconds per throughput run, both sides; default 10), REPS (runs per
# figure, both sides; default 3), FO_REPS (failovers per run; default 3), ANCHOR (the anchor
# directory), GCS_ARGS (extra `gcs bench ring` options), SKIP_COROSYNC=FILE (reuse a corosync
# summary instead of running corosync, e.g. the anchor's raw-summary.txt).
# Takes about 15 min for corosync and 25 min for gcs with the defaults.
# Output in OUTDIR (default: a new /tmp/gcs-compare-* directory): corosync-summary.txt,
# corosync/ (raw anchor output), gcs-ring.json, compare.txt, compare.json.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ANCHOR=${ANCHOR:-$REPO/../shared/anchors/corosync}
DUR=${DUR:-10}
REPS=${REPS:-3}
FO_REPS=${FO_REPS:-3}
OUT=${1:-$(mktemp -d /tmp/gcs-compare-XXXXXX)}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
GCS=${GCS:-gcs}

die() { echo "compare.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
command -v "$GCS" >/dev/null || die "gcs not found: activate the venv (. .venv/bin/activate)"
note() { echo "[compare $(date +%H:%M:%S)] $*" >&2; }

{
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "kernel $(uname -r); $(grep PRETTY_NAME /etc/os-release | cut -d= -f2 | tr -d '"')"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "DUR=$DUR REPS=$REPS FO_REPS=$FO_REPS GCS_ARGS=${GCS_ARGS:-}"
} | tee "$OUT/machine.txt" >&2

if [ -n "${SKIP_COROSYNC:-}" ]; then
  cp "$SKIP_COROSYNC" "$OUT/corosync-summary.txt"
  note "corosync: reusing $SKIP_COROSYNC"
else
  [ -x "$ANCHOR/run-all.sh" ] || die "no corosync anchor scripts at $ANCHOR (set ANCHOR=...)"
  command -v corosync >/dev/null \
    || die "corosync not installed: apt-get install -y corosync libcpg-dev libcorosync-common-dev gcc"
  note "corosync: $ANCHOR/run-all.sh udpu udpu-token300-coef0 knet-crypto (about 15 min)"
  DUR=$DUR REPS=$REPS FO_REPS=$FO_REPS ANCHOR_BASE="$OUT/corosync" \
    "$ANCHOR/run-all.sh" udpu udpu-token300-coef0 knet-crypto \
    > "$OUT/corosync-summary.txt" 2> "$OUT/corosync-progress.txt" \
    || die "the corosync run failed: see $OUT/corosync-progress.txt"
fi

note "gcs: gcs bench ring --netns --runs $REPS --seconds $DUR --failovers $FO_REPS ${GCS_ARGS:-}"
# shellcheck disable=SC2086  # GCS_ARGS is a list of options on purpose
"$GCS" bench ring --netns --runs "$REPS" --seconds "$DUR" --failovers "$FO_REPS" --json \
  ${GCS_ARGS:-} > "$OUT/gcs-ring.json" 2> "$OUT/gcs-progress.txt" \
  || die "the gcs run failed: see $OUT/gcs-progress.txt"

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2
cat "$OUT/machine.txt" > "$OUT/compare.txt"
"$PY" -m gcs.bench.compare --corosync-summary "$OUT/corosync-summary.txt" \
  --gcs-json "$OUT/gcs-ring.json" --json "$OUT/compare.json" | tee -a "$OUT/compare.txt"
note "written: $OUT/compare.txt, $OUT/compare.json"
