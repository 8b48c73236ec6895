//! Sets `cfg(mllama_device_fixtures)` when the transformers-made fixtures of
//! `scripts/device_mllama_fixtures.sh` (made on a GPU machine, where torch is) are present, so
//! their parity tests run wherever the fixtures are and are listed as ignored, with the reason,
//! where they are not yet.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mllama_device_fixtures)");
    // The fixtures directory, not the device one: a path that does not exist yet would make
    // cargo re-run this script, and rebuild the crate, on every build.
    println!("cargo::rerun-if-changed=tests/fixtures");
    if std::path::Path::new("tests/fixtures/mllama_device/meta.json").exists() {
        println!("cargo::rustc-cfg=mllama_device_fixtures");
    }
}
