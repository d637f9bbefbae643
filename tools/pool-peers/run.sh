#!/usr/bin/env bash
# ks-alloc next to the media frameworks' frame pools (GStreamer's GstBufferPool, FFmpeg's
# AVBufferPool), on this machine, in alternating runs.
#
#   tools/pool-peers/run.sh [ROUNDS]          (default 5)
#
# 1. installs the development packages of GStreamer and libavutil if pkg-config cannot find
#    them (Debian/Ubuntu: libgstreamer1.0-dev libavutil-dev pkg-config; needs root or sudo);
# 2. builds the release ksalloc and compiles pool_peers.c;
# 3. runs `ksalloc bench --json` and `pool_peers` one after the other, ROUNDS times, so that
#    background load on a shared machine falls on both alike;
# 4. prints, per row, the median over the rounds, and the ratios that compare like with like:
#    each peer over ks-alloc, and each hand-off over the plain condvar of its own process
#    (std's Condvar for ks-alloc, pthread's for GStreamer: both sleep in the same futex).
# Frame size 4096 bytes and 64 frames, as the allocator issue's benchmarks.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
ROUNDS=${1:-5}
case $ROUNDS in
  '' | *[!0-9]* | 0) echo "run.sh: ROUNDS must be a whole number of at least 1, not '$ROUNDS'" >&2; exit 2 ;;
esac
CARGO=${CARGO:-cargo}

if ! pkg-config --exists gstreamer-1.0 libavutil 2>/dev/null; then
  packages=(libgstreamer1.0-dev libavutil-dev pkg-config)
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "pool-peers: installing ${packages[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

cd "$root"
"$CARGO" build --release -q -p ksalloc
ksalloc=$(crates/ksalloc/scripts/bench-runtime.sh --print-binary)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
gcc -O2 -Wall -Wextra -std=c11 -o "$work/pool_peers" "$here/pool_peers.c" \
  $(pkg-config --cflags --libs gstreamer-1.0 libavutil) -lpthread

for ((i = 1; i <= ROUNDS; i++)); do
  echo "pool-peers: round $i of $ROUNDS" >&2
  "$ksalloc" bench --json --frame-size 4096 --frames 64 >"$work/ks-$i.json"
  "$work/pool_peers" 4096 64 2000 >"$work/peers-$i.json"
done

python3 - "$work" "$ROUNDS" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rows, versions = {}, {}
for i in range(1, rounds + 1):
    ks = json.load(open(f"{work}/ks-{i}.json"))
    peers = json.load(open(f"{work}/peers-{i}.json"))
    versions = {k: peers[k] for k in ("gstreamer", "ffmpeg")}
    for r in ks["results"] + ks["baselines"] + peers["results"]:
        fig = r.get("ns_per_op", r.get("p50_us"))
        rows.setdefault(r["name"], []).append((fig, r.get("p99_us")))

def med(name, k=0):
    return statistics.median(v[k] for v in rows[name])

print(f"ks-alloc next to {versions['gstreamer']} and FFmpeg {versions['ffmpeg']}: "
      f"4096-byte frames, 64 frames; medians of {rounds} alternating rounds\n")
print("| Row | ns per acquire + release |")
print("|---|---|")
for name, what in [("fn_table_single", "ks-alloc, function table (`try_allocate` + drop)"),
                   ("async_ready", "ks-alloc, `allocate().await` ready + drop"),
                   ("gst_acquire_release", "GStreamer `GstBufferPool` acquire + unref"),
                   ("ffmpeg_get_unref", "FFmpeg `av_buffer_pool_get` + unref"),
                   ("mutex_vec_single", "baseline: Rust `Mutex<Vec<_>>` pop + push"),
                   ("mutex_array_single", "baseline: C pthread mutex + array pop + push")]:
    print(f"| {what} | {med(name):.1f} |")
print()
print("| Hand-off to a blocked waiter | p50 µs | p99 µs | p50 over its own process's condvar |")
print("|---|---|---|---|")
for name, what, base in [("handoff_thread", "ks-alloc, thread in `allocate_blocking`", "handoff_condvar"),
                         ("handoff_async", "ks-alloc, async task (`allocate().await`)", "handoff_condvar"),
                         ("gst_handoff", "GStreamer, thread in `gst_buffer_pool_acquire_buffer`", "pthread_cond_handoff"),
                         ("handoff_condvar", "baseline: std `Mutex` + `Condvar` (with ks-alloc)", None),
                         ("pthread_cond_handoff", "baseline: pthread mutex + condvar (with GStreamer)", None)]:
    ratio = statistics.median(a[0] / b[0] for a, b in zip(rows[name], rows[base])) if base else None
    print(f"| {what} | {med(name):.2f} | {med(name, 1):.1f} | {'' if ratio is None else f'{ratio:.2f}'} |")
print()
print("Peer over ks-alloc (median of the per-round ratios):")
for peer, ours in [("gst_acquire_release", "fn_table_single"), ("ffmpeg_get_unref", "fn_table_single"),
                   ("gst_acquire_release", "async_ready"), ("gst_handoff", "handoff_thread"),
                   ("gst_handoff", "handoff_async")]:
    r = statistics.median(a[0] / b[0] for a, b in zip(rows[peer], rows[ours]))
    print(f"  {peer} / {ours}: {r:.2f}")
EOF
