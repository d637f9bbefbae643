#!/usr/bin/env bash
# CI step: prove that ks-sys's committed ABI data still matches mingw-w64's headers.
#
#   tools/abi-probe/ci-check.sh
#
# 1. installs the mingw-w64 cross compilers and headers if they are missing (Debian/Ubuntu,
#    needs root or sudo for apt-get);
# 2. regenerates crates/ks-sys/tests/data/abi-{x86_64,i686}.txt into a temporary directory with
#    probe.sh;
# 3. fails (exit 1) with a unified diff if they differ from the committed files. Comment lines
#    (the provenance header, which names the package version) are not compared.
#
# 4. if the i686-unknown-linux-gnu Rust target is installed, compiles ks-sys for it, so that the
#    x86 layout assertions in its sources are evaluated.
#
# `cargo test -p ks-sys --test abi` then checks the Rust items against the committed files.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
data=$root/crates/ks-sys/tests/data
packages=(gcc-mingw-w64-x86-64 gcc-mingw-w64-i686 mingw-w64-x86-64-dev mingw-w64-i686-dev)

if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v i686-w64-mingw32-gcc >/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "abi-check: installing ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/probe.sh" "$tmp"

status=0
for arch in x86_64 i686; do
    if ! diff -u --label "committed abi-$arch.txt" --label "regenerated abi-$arch.txt" \
        <(grep -v '^#' "$data/abi-$arch.txt") <(grep -v '^#' "$tmp/abi-$arch.txt"); then
        status=1
    fi
done
if [ "$status" -ne 0 ]; then
    echo "abi-check: FAILED: the ABI data differs from what mingw-w64's headers declare." >&2
    echo "abi-check: regenerate with tools/abi-probe/probe.sh, fix ks-sys, and commit both." >&2
    exit 1
fi
echo "abi-check: ok (crates/ks-sys/tests/data matches mingw-w64's headers)"

# The x86 (32-bit) layout assertions next to each ks-sys struct only compile on a 32-bit target;
# check them when that target's standard library is installed (rustup target add
# i686-unknown-linux-gnu). The x86 numbers are also checked against abi-i686.txt by tests/abi.rs.
if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx i686-unknown-linux-gnu; then
    (cd "$root" && cargo check -q -p ks-sys --all-targets --target i686-unknown-linux-gnu)
    echo "abi-check: ok (ks-sys x86 layout assertions compile for i686-unknown-linux-gnu)"
else
    # A fresh machine may have no way to fetch the target: say so plainly, since the Rust
    # structures' own x86 layouts then go unchecked in this run.
    echo "abi-check: WARNING: i686-unknown-linux-gnu is not installed: ks-sys's x86 layout" \
         "assertions NOT compiled in this run (rustup target add i686-unknown-linux-gnu)" >&2
fi
