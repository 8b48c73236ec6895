#!/usr/bin/env bash
# Takes a judgeflow cache from one GPU machine to the next, through $OUT and `carry`: device
# machines go back after 30 s idle, and a grid cut by a call's 10-minute limit resumes only where
# its cache survives (scripts/device_science.sh).
#
#   bash scripts/cache_carry.sh pack [CACHE]     # on the device, last: $OUT/cache.tar.xz.00, .01 ...
#   bash scripts/cache_carry.sh unpack [CACHE]   # on the device, first: from .bin/cache/ when
#                                                # CACHE (default .judgeflow) is absent
# Between them, on this machine: copy the returned parts into .bin/cache/ (git-ignored) and name
# .bin/cache in the next call's carry.
#
# Packed: every entry but those of the scene sources (`world`, `prompts`, `bench`: pure functions
# of their parameters and seed, re-drawn in seconds, to the byte, so their dependents' keys hold),
# and not the traces. Parts of at most 15 MiB (the device returns files of 16 MiB at most, eight
# in all): more than five parts is refused, so that the call's other outputs still come back.
set -euo pipefail
cache="${2:-.judgeflow}"
case "$1" in
pack)
    out="${OUT:-/tmp/out}"
    list=$(mktemp)
    python3 - "$cache" > "$list" <<'PY'
import json, os, sys
root = sys.argv[1]
entries = os.path.join(root, "entries")
for key in sorted(os.listdir(entries)):
    try:
        node = json.load(open(os.path.join(entries, key, "manifest.json"))).get("node", "")
    except (OSError, ValueError):
        continue  # unfinished or locked: the next run re-makes it
    if node.split("@")[0] not in ("world", "prompts", "bench"):
        print(os.path.join(entries, key))
PY
    tar -cf - -T "$list" | xz -T0 -3 | split -b 15M -d - "$out/cache.tar.xz."
    n=$(ls "$out"/cache.tar.xz.* | wc -l)
    echo "cache_carry: $(wc -l < "$list") entries in $n part(s): $(du -ch "$out"/cache.tar.xz.* | tail -1 | cut -f1)"
    if [ "$n" -gt 5 ]; then
        rm -f "$out"/cache.tar.xz.*
        echo "cache_carry: more than five parts; nothing packed" >&2
        exit 1
    fi ;;
unpack)
    if [ -d "$cache/entries" ]; then
        echo "cache_carry: $cache is here (the machine stayed warm); nothing unpacked"
    elif ls .bin/cache/cache.tar.xz.* > /dev/null 2>&1; then
        cat .bin/cache/cache.tar.xz.* | xz -dc | tar -xf -
        echo "cache_carry: $(ls "$cache/entries" | wc -l) entries unpacked into $cache"
    else
        echo "cache_carry: no cache carried; starting empty"
    fi ;;
*) echo "cache_carry: pack or unpack" >&2; exit 2 ;;
esac
