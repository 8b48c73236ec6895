#!/usr/bin/env bash
# On the GPU machine: unpacks the carried .bin/NAME.xz to .bin/NAME once, safely when several
# device scripts start at the same time (session 10 started two together: one found the other's
# half-written binary and both failed). Under a lock, into a temporary file, then renamed.
#
#   bash scripts/unpack_bin.sh NAME     (exit status non-zero when .bin/NAME.xz is missing)
set -euo pipefail
name="$1"
cd "$(dirname "$0")/.."
[ -f ".bin/$name.xz" ] || { echo "unpack_bin: .bin/$name.xz is missing: name .bin in the call's carry" >&2; exit 1; }
exec 9> ".bin/.$name.lock"
flock 9
if [ ! -x ".bin/$name" ]; then
    xz -dc ".bin/$name.xz" > ".bin/$name.tmp.$$"
    chmod +x ".bin/$name.tmp.$$"
    mv -f ".bin/$name.tmp.$$" ".bin/$name"
fi
