#!/usr/bin/env bash
# On the GPU machine: puts the directory of the libcublas.so.* that the image's Python packages
# carry (pip's nvidia-cublas) on LD_LIBRARY_PATH, so that `JUDGEFLOW_MATMUL*=cublas`
# (vendor/burn-cubecl/src/kernel/matmul/cublas.rs) can load it; prints the directory on stderr.
# Source it:  . scripts/cublas_path.sh
_cublas_dir=""
for _site in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
    _lib=$(find "$_site" -name 'libcublas.so*' 2>/dev/null | head -1)
    if [ -n "$_lib" ]; then
        _cublas_dir=$(dirname "$_lib")
        break
    fi
done
if [ -n "$_cublas_dir" ]; then
    export LD_LIBRARY_PATH="$_cublas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "cublas_path: $_cublas_dir ($(ls "$_cublas_dir" | grep -c 'libcublas') libcublas files)" >&2
else
    echo "cublas_path: no libcublas.so found; JUDGEFLOW_MATMUL*=cublas falls back to cubek" >&2
fi
