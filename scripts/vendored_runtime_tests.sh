#!/usr/bin/env bash
# Runs the vendored cubecl-runtime's memory-page unit tests, judgeflow's equivalence test of
# `MemoryPage::coalesce_and_reserve` among them (vendor/cubecl-runtime/VENDORED.md). The crate's
# own dev-dependencies (test-log, serial_test) and its optional tracy-client are not in
# judgeflow's lock, so `cargo test -p cubecl-runtime` cannot resolve offline: this copies the
# crate to a scratch directory without them (their `#[test_log::test]` becomes `#[test]`; the
# integration tests and benches, which need them, are left out) and runs the memory tests there
# against judgeflow's Cargo.lock. About a minute cold on two cores.
#
#   bash scripts/vendored_runtime_tests.sh [FILTER]     (default: memory_page)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${SCRATCH:-/tmp/judgeflow-cubecl-runtime-tests}"
rm -rf "$scratch/crate"
mkdir -p "$scratch"
cp -r "$root/vendor/cubecl-runtime" "$scratch/crate"
cd "$scratch/crate"
rm -rf tests benches
python3 - <<'PY'
import re
s = open("Cargo.toml").read()
for block in [
    '[dev-dependencies.serial_test]\nversion = "3.1.1"\n\n',
    '[dev-dependencies.test-log]\nversion = "^0.2"\nfeatures = ["trace"]\ndefault-features = false\n\n',
    '[[test]]\nname = "integration_test"\npath = "tests/integration_test.rs"\n\n',
    '[[bench]]\nname = "dynamic"\npath = "benches/dynamic.rs"\nharness = false\n\n',
    "[target.'cfg(any(target_os = \"windows\", target_os = \"linux\", target_os = \"macos\", "
    "target_os = \"android\"))'.dependencies.tracy-client]\nversion = \"0.18.0\"\noptional = true\n\n",
]:
    assert block in s, f"vendored Cargo.toml changed: {block!r} not found"
    s = s.replace(block, "")
s = re.sub(r'profile-tracy = \[[^\]]*\]\n', "", s)
open("Cargo.toml", "w").write(s + "\n[workspace]\n")
PY
grep -rl 'test_log::test' src | xargs sed -i 's/#\[test_log::test\]/#[test]/'
cp "$root/Cargo.lock" .
CARGO_TARGET_DIR="$scratch/target" cargo test --offline --lib "${1:-memory_page}"
