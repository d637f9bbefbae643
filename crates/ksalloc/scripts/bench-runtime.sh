#!/usr/bin/env bash
# Runtime benchmarks of the ksalloc README / BENCHMARKS.md, side by side with their peers in
# the same run. Usage: crates/ksalloc/scripts/bench-runtime.sh [ROUNDS]
#                      crates/ksalloc/scripts/bench-runtime.sh --print-binary
# Runs from any directory. It builds and runs the release ksalloc where cargo puts it:
# under CARGO_TARGET_DIR when that is set (relative to the directory the script was started
# in, as for cargo), else under the workspace's target directory. --print-binary prints that
# path and exits, building and measuring nothing.
#   1. Framework overhead: testsrc pattern=none size=4096 ! identity ! nullsink, frames/s,
#      next to GStreamer's fakesrc ! identity ! fakesink (Debian: gstreamer1.0-tools).
#   2. Data path: testsrc ! invert ! nullsink with 3,110,400-byte frames (1080p NV12), MB/s,
#      next to a plain single-thread loop doing the same fill and invert on one buffer.
# Rounds alternate the contenders so that background load hits both alike; each section ends
# with the medians over the rounds.
set -euo pipefail
CARGO=${CARGO:-cargo}
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  # Made absolute before the cd below, so that it means what it meant where we started.
  CARGO_TARGET_DIR=$(realpath -m -- "$CARGO_TARGET_DIR")
  export CARGO_TARGET_DIR
fi
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
# Cargo's own answer: CARGO_TARGET_DIR, a build.target-dir setting, or the workspace's target/.
TARGET_DIR=$("$CARGO" metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
K="$TARGET_DIR/release/ksalloc"
if [[ "${1:-}" == --print-binary ]]; then
  echo "$K"
  exit 0
fi
ROUNDS=${1:-3}
N=3000000          # frames for GStreamer in the overhead test
# frames for ksalloc in the overhead test: ten times as many, so that both runs last about as
# long (a few seconds) and a load spike on a shared machine weighs on both alike; the rates
# (frames/s, CPU ns/frame) are what is compared.
KN=$((N * 10))
M=3000             # frames for the data-path test (about 9 GB: long enough to ride out short load spikes)
SIZE=3110400
"$CARGO" build --release -q -p ksalloc
wall() { /usr/bin/time -f "%e %U %S" "$@" 2>&1 >/dev/null | tail -1; }
OVERHEAD=$(mktemp)
DATAPATH=$(mktemp)
trap 'rm -f "$OVERHEAD" "$DATAPATH"' EXIT

echo "== framework overhead: 4096-byte frames through a pass-through filter ($N for GStreamer, $KN for ksalloc)"
if command -v gst-launch-1.0 >/dev/null; then
  for r in $(seq "$ROUNDS"); do
    read -r gw gu gs < <(wall gst-launch-1.0 -q fakesrc num-buffers=$N sizetype=fixed sizemax=4096 filltype=nothing ! identity ! fakesink)
    read -r kw ku ks < <(wall "$K" run -q "testsrc pattern=none size=4096 frames=$KN ! identity ! nullsink")
    echo "$gw $gu $gs $kw $ku $ks" >>"$OVERHEAD"
    python3 - "$gw" "$gu" "$gs" "$kw" "$ku" "$ks" "$N" "$KN" <<'PY'
import sys
gw, gu, gs, kw, ku, ks, n, kn = map(float, sys.argv[1:])
g_rate, k_rate = n / gw, kn / kw
g_cpu, k_cpu = (gu + gs) * 1e9 / n, (ku + ks) * 1e9 / kn
print(f"  gstreamer {g_rate:>12,.0f} frames/s ({g_cpu:6.0f} ns CPU/frame)   "
      f"ksalloc {k_rate:>12,.0f} frames/s ({k_cpu:6.0f} ns CPU/frame)   "
      f"ratio {k_rate/g_rate:.2f}x wall, {g_cpu/k_cpu:.2f}x CPU")
PY
  done
  python3 - "$OVERHEAD" "$N" "$KN" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
n, kn = float(sys.argv[2]), float(sys.argv[3])
med = st.median
wall = [(kn / r[3]) / (n / r[0]) for r in rows]
cpu = [((r[1] + r[2]) / n) / ((r[4] + r[5]) / kn) for r in rows]
print(f"  median over {len(rows)} rounds: gstreamer {med([n/r[0] for r in rows]):,.0f} frames/s "
      f"({med([(r[1]+r[2])*1e9/n for r in rows]):.0f} ns CPU/frame), ksalloc {med([kn/r[3] for r in rows]):,.0f} frames/s "
      f"({med([(r[4]+r[5])*1e9/kn for r in rows]):.0f} ns CPU/frame); ratio {med(wall):.2f}x wall "
      f"(lowest {min(wall):.2f}x), {med(cpu):.2f}x CPU (lowest {min(cpu):.2f}x)")
PY
else
  echo "  gst-launch-1.0 not found (apt-get install gstreamer1.0-tools); ksalloc alone:"
  "$K" run -q "testsrc pattern=none size=4096 frames=$KN ! identity ! nullsink" | grep -E 'frames/s'
fi

echo "== data path: $M frames of $SIZE bytes, fill + invert"
for r in $(seq "$ROUNDS"); do
  loop=$("$K" bench --fill-invert-loop --frame-size $SIZE --frames $M --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["mb_per_s"])')
  graph=$("$K" run -q --json "testsrc frames=$M size=$SIZE out.memory=paged ! invert ! nullsink" | python3 -c 'import json,sys; r=json.load(sys.stdin)["report"]; print(r["bytes"]/1e6/r["elapsed"])')
  echo "$loop $graph" >>"$DATAPATH"
  python3 -c "print(f'  plain loop {$loop:>9.0f} MB/s   ksalloc graph {$graph:>9.0f} MB/s   graph/loop {$graph/$loop*100:.0f}%')"
done
python3 - "$DATAPATH" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
loop, graph = st.median(r[0] for r in rows), st.median(r[1] for r in rows)
print(f"  median over {len(rows)} rounds: plain loop {loop:.0f} MB/s, ksalloc graph {graph:.0f} MB/s, "
      f"graph/loop {graph/loop*100:.0f}% (median of the per-round ratios "
      f"{st.median(r[1]/r[0] for r in rows)*100:.0f}%)")
PY
