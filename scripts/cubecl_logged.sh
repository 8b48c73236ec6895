#!/usr/bin/env bash
# Sourced by the device scripts that profile cubecl's kernels:
#   cubecl_logged PROFILE_LOG COMPILE_LOG CMD...
# runs CMD in a fresh working directory whose cubecl.toml turns cubecl's profiling logger on
# into PROFILE_LOG ("basic": every launch timed, the device waited for after each) and, unless
# COMPILE_LOG is "-", its compilation logger into COMPILE_LOG. cubecl reads cubecl.toml from the
# working directory (judgeflow's binaries add their kept kernel cache where the file names none),
# so CMD must name its files by absolute paths. The status is CMD's.
cubecl_logged() {
    local profile="$1" compile="$2"
    shift 2
    local dir
    dir="$(mktemp -d /tmp/cubecl_logged.XXXXXX)" || return 1
    {
        printf '[profiling.logger]\nlevel = "basic"\nfile = "%s"\n' "$profile"
        if [ "$compile" != - ]; then
            printf '[compilation.logger]\nlevel = "basic"\nfile = "%s"\n' "$compile"
        fi
    } > "$dir/cubecl.toml"
    (cd "$dir" && "$@")
}
