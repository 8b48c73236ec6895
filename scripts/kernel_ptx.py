#!/usr/bin/env python3
"""What the CUDA compiler made of judgeflow's cubecl kernels: registers, spills, shared memory
and the SASS, on the GPU machine, from cubecl's PTX cache.

cubecl-cuda keeps every kernel it compiles, as PTX, in the kernel cache the `speed` example is
given (`--kernel-cache DIR`: JSON entries, `entrypoint_name`, `shared_mem_bytes` and the PTX as
bytes). This script picks the entries whose entry point contains NAME, writes each PTX to OUT,
assembles it with the `ptxas` that Triton ships beside PyTorch (`-v`: registers, spill stores
and loads, stack), and disassembles the result (`cuobjdump -sass`, also Triton's) so that the
inner loop can be read instruction by instruction.

    run: python3 scripts/kernel_ptx.py CACHE_DIR NAME OUT_DIR [sm_90a]
"""
import glob
import json
import os
import shutil
import subprocess
import sys


def entries(cache_dir):
    """Every JSON object with a PTX value in the cache's files."""
    decoder = json.JSONDecoder()
    for path in sorted(glob.glob(os.path.join(cache_dir, "**", "*"), recursive=True)):
        if not os.path.isfile(path):
            continue
        text = open(path, "rb").read().decode("utf-8", errors="replace")
        at = 0
        while True:
            at = text.find('{"key"', at)
            if at < 0:
                break
            try:
                obj, end = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                at += 1
                continue
            at = end
            value = obj.get("value") if isinstance(obj, dict) else None
            if isinstance(value, dict) and "ptx" in value:
                yield value


def tool(name):
    """Triton's copy of a CUDA tool, else one on PATH."""
    try:
        import triton  # noqa: PLC0415

        path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
        if os.path.exists(path):
            return path
    except Exception:  # noqa: BLE001
        pass
    return shutil.which(name)


def main():
    cache_dir, name, out_dir = sys.argv[1:4]
    arch = sys.argv[4] if len(sys.argv) > 4 else "sm_90a"
    os.makedirs(out_dir, exist_ok=True)
    ptxas, cuobjdump = tool("ptxas"), tool("cuobjdump")
    print(f"ptxas: {ptxas}; cuobjdump: {cuobjdump}")
    seen = 0
    for value in entries(cache_dir):
        entry = value.get("entrypoint_name", "")
        if name not in entry:
            continue
        seen += 1
        ptx = bytes(b & 0xFF for b in value["ptx"]).rstrip(b"\0")
        stem = os.path.join(out_dir, f"{seen:02d}_{entry[:80]}")
        open(stem + ".ptx", "wb").write(ptx)
        line = f"{entry}: shared {value.get('shared_mem_bytes')} B (dynamic)"
        if ptxas:
            run = subprocess.run(
                [ptxas, f"-arch={arch}", "-v", stem + ".ptx", "-o", stem + ".cubin"],
                capture_output=True,
                text=True,
            )
            info = (run.stdout + run.stderr).strip()
            open(stem + ".ptxas.txt", "w").write(info + "\n")
            line += " | " + " ".join(l.split("info    : ")[-1] for l in info.splitlines()[-3:])
            if cuobjdump and run.returncode == 0:
                sass = subprocess.run(
                    [cuobjdump, "-sass", stem + ".cubin"], capture_output=True, text=True
                )
                open(stem + ".sass", "w").write(sass.stdout + sass.stderr)
        print(line)
    print(f"{seen} entries with `{name}` in {cache_dir}")


if __name__ == "__main__":
    main()
