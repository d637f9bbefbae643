#!/usr/bin/env bash
# Runtime benchmarks of the ksalloc README / BENCHMARKS.md, side by side with their peers in
# the same run. Usage: crates/ksalloc/scripts/bench-runtime.sh [ROUNDS]
#   1. Framework overhead: testsrc pattern=none size=4096 ! identity ! nullsink, frames/s,
#      next to GStreamer's fakesrc ! identity ! fakesink (Debian: gstreamer1.0-tools).
#   2. Data path: testsrc ! invert ! nullsink with 3,110,400-byte frames (1080p NV12), MB/s,
#      next to a plain single-thread loop doing the same fill and invert on one buffer.
# Rounds alternate the contenders so that background load hits both alike.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS=${1:-3}
N=3000000          # frames for the overhead test
M=1000             # frames for the data-path test
SIZE=3110400
cargo build --release -q -p ksalloc
K=target/release/ksalloc
wall() { /usr/bin/time -f "%e %U %S" "$@" 2>&1 >/dev/null | tail -1; }

echo "== framework overhead: $N frames of 4096 bytes, pass-through filter"
if command -v gst-launch-1.0 >/dev/null; then
  for r in $(seq "$ROUNDS"); do
    read -r gw gu gs < <(wall gst-launch-1.0 -q fakesrc num-buffers=$N sizetype=fixed sizemax=4096 filltype=nothing ! identity ! fakesink)
    read -r kw ku ks < <(wall $K run -q "testsrc pattern=none size=4096 frames=$N ! identity ! nullsink")
    python3 - "$gw" "$gu" "$gs" "$kw" "$ku" "$ks" "$N" <<'PY'
import sys
gw, gu, gs, kw, ku, ks, n = map(float, sys.argv[1:])
print(f"  gstreamer {n/gw:>12,.0f} frames/s ({(gu+gs)*1e9/n:6.0f} ns CPU/frame)   "
      f"ksalloc {n/kw:>12,.0f} frames/s ({(ku+ks)*1e9/n:6.0f} ns CPU/frame)   "
      f"ratio {gw/kw:.2f}x wall, {(gu+gs)/(ku+ks):.2f}x CPU")
PY
  done
else
  echo "  gst-launch-1.0 not found (apt-get install gstreamer1.0-tools); ksalloc alone:"
  $K run -q "testsrc pattern=none size=4096 frames=$N ! identity ! nullsink" | grep -E 'frames/s'
fi

echo "== data path: $M frames of $SIZE bytes, fill + invert"
for r in $(seq "$ROUNDS"); do
  loop=$($K bench --fill-invert-loop --frame-size $SIZE --frames $M --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["mb_per_s"])')
  graph=$($K run -q --json "testsrc frames=$M size=$SIZE out.memory=paged ! invert ! nullsink" | python3 -c 'import json,sys; r=json.load(sys.stdin)["report"]; print(r["bytes"]/1e6/r["elapsed"])')
  python3 -c "print(f'  plain loop {$loop:>9.0f} MB/s   ksalloc graph {$graph:>9.0f} MB/s   graph/loop {$graph/$loop*100:.0f}%')"
done
