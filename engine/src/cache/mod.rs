//! The content-addressed cache.
//!
//! # What goes into a key
//! A node's cache key is the blake3 hash of the canonical JSON of its [`Ingredients`]: operator
//! name and kind, operator version, every parameter the operator declares (defaults filled in,
//! keys sorted, floats in round-trip notation), the seed it receives if it uses one (see below),
//! and for each input port the *content hash* of what is connected there. Content hashes are blake3 over the bytes of the
//! produced files (for a directory artifact, over the sorted list of relative path and file
//! hash). Operators that read files outside the cache (sources) name them, and the content
//! hash of each joins the key the same way. Operators that read switches from the environment
//! (the model's kernel and optimizer choices on CUDA, `JUDGEFLOW_OPTIMIZER` and the like) name
//! them ([`crate::Operator::environment`]), and the value of each one that is set joins the key;
//! an unset or empty one adds nothing, so a run without switches has the key it always had,
//! and a run with one is a different entry (as cargo's `rerun-if-env-changed` makes a build
//! script's variables part of its fingerprint). Nothing else goes in: not the node's name
//! (except through the seed, below), not the pipeline's, not paths, not times, not variables
//! an operator does not name. So moving a pipeline
//! keeps its cache, sweeps share every node they do not reach, and a node that re-runs and
//! produces byte-identical output leaves its dependents' keys — and so their entries — valid
//! ("early cutoff").
//!
//! # Names, seeds and renames
//! A node's seed derives from the pipeline seed, the node's template name and its repetition
//! ([`crate::plan::derive_seed`]), so that two identically configured nodes draw independent
//! samples. The name therefore reaches the key through the seed, and only there:
//! - an operator that declares that it draws no random numbers
//!   ([`crate::Operator::uses_seed`] `false`: `concat`, the contact sheet, the JSON-lines source)
//!   gets no seed in its key, so renaming its node keeps its entries;
//! - an operator that draws random numbers (the default: sampling, judging, training,
//!   corruption, the scene world) keeps the seed in its key, so a renamed node is a new draw and
//!   re-runs, and `plan` says so (`seed … → …: the same settings ran under another name`).
//!   Pinning `seed = N` on the node renames it without re-running.
//!
//! Either way a node's dependents keep their entries when it reproduces identical bytes (early
//! cutoff).
//!
//! External inputs are hashed within bounds ([`crate::files`]): only regular files (a FIFO,
//! a device or a socket is never opened, it hashes as a marker naming its type), at most
//! [`crate::files::MAX_EXTERNAL_BYTES`] per file; directories are walked without following
//! symbolic links, up to [`crate::files::MAX_DIR_FILES`] files and the same byte limit. Beyond
//! a bound the hash is a marker, and the readers operators use
//! ([`crate::files::read_regular`]) refuse the same paths, so a marker never stands for
//! content that an operator used.
//!
//! # Why never mtimes
//! Modification times say when, not what: a `git checkout`, a copy or a clock skew changes them
//! without changing content, and a re-run that writes the same bytes changes them too, which
//! would defeat early cutoff. Keys are therefore pure functions of content. Mtimes appear in one
//! place only, as in git's index: each manifest records the size and mtime of every file it
//! wrote, and an *artifact* file (a checkpoint's weights) whose size and mtime still match is
//! trusted without re-hashing.
//!
//! # What is checked, on which path
//! | path | frames (`PORT.parquet`) | artifact files (checkpoints) |
//! | --- | --- | --- |
//! | `plan`, `explain`, `run`'s lookup, `show`, `compare`, `report` (all via [`Cache::lookup`]) | re-hashed, always | size, then mtime; re-hashed when the mtime moved |
//! | an operator reading an input frame, `show` and `compare` printing one | re-hashed as read, from the same bytes that are parsed | — (operators read artifact directories themselves) |
//! | `judgeflow verify` ([`Cache::verify_all`]) | re-hashed | re-hashed, every byte |
//!
//! Frames are small and are what results are read from, so a flipped byte in a frame is never
//! served, whatever its mtime says. Artifacts can be gigabytes; re-hashing them on every `plan`
//! would cost more than recomputing small pipelines, so a change that keeps both size and mtime
//! (bit rot, or a deliberate edit with the mtime restored) is found only by `judgeflow verify`,
//! like `git fsck`. An entry found corrupt on any path is reported, discarded (see below) and
//! recomputed by the next `run`.
//!
//! # Layout and atomicity
//! ```text
//! CACHE/cache.lock               shared by runs, exclusive for `gc`
//! CACHE/entries/KEY/manifest.json
//! CACHE/entries/KEY/PORT.parquet (frames) or PORT/ (artifact directories)
//! CACHE/tmp/...                  entries being built; never read
//! CACHE/tmp/owner-TOKEN.lock     held by the live process whose temporary files carry TOKEN
//! CACHE/locks/KEY.lock           held while a process builds (or discards) KEY
//! CACHE/runs/PIPELINE/NODE.json  the key and ingredients this node name had at its last run
//! ```
//! An entry is built in `tmp/` and becomes visible by one `rename` into `entries/` after its
//! manifest is written, so a process killed mid-node leaves only an orphan in `tmp/`, which no
//! run reads. Every temporary name carries its process's owner token, whose lock file that
//! process holds for as long as it lives; each `run` starts by removing, under the shared cache
//! lock, the temporary files of owners that are gone (their lock is free), and `gc` removes all.
//! A node that fails removes its own build directory. Two processes that want the same key
//! serialise on its lock file; the second finds the entry the first published. A corrupt entry
//! is only ever moved out of `entries/` by a process holding that key's lock
//! ([`Cache::discard`]), and a process that finds it already gone carries on: reads (`plan`,
//! `show`) never delete.
//!
//! Names in `runs/` are file-safe encodings of node and pipeline names ([`file_safe`]): the
//! encoding is injective (`a/b` and `a%b` get different files) and bounded in length (long names
//! end in a hash of the whole name), so any name a pipeline accepts has its own record file.
//!
//! A cache on a read-only file system can serve a fully fresh pipeline: the cache lock is
//! taken on a read-only descriptor, and nothing else is written when every node is fresh.
//!
//! # Why is this dirty?
//! Every run records, per pipeline and node name, the key the node had and its ingredients
//! (`runs/`). `plan` and `explain` compare the node's current ingredients with those and name
//! each ingredient that differs (`param temperature: 0.6 → 0.7`, `input prompts: 1a2b… →
//! 9f8e…`, `op version 1 → 2`), or, when none differs, say that the entry was removed (by `gc`
//! or by hand) or is corrupt. Because the ingredients live in the record, not only in the
//! entry's manifest, a removed entry is never mistaken for a node that never ran.

mod gc;
mod hash;
mod lock;
mod records;
mod store;
mod verify;

pub use hash::{hash_file, hash_path};
pub use records::file_safe;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Manifest format; bump when the layout of manifests or entries changes.
const MANIFEST_FORMAT: u32 = 1;

/// A run record is a key and a few hundred bytes of ingredients; anything larger is not one.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Everything a node's output depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ingredients {
    /// Operator name.
    pub op: String,
    /// Operator kind, for families.
    pub kind: Option<String>,
    /// Operator version.
    pub op_version: u32,
    /// Canonical parameters.
    pub params: serde_json::Value,
    /// The seed the node receives, when its operator uses one ([`crate::Operator::uses_seed`]);
    /// `None` (and absent from the JSON) for deterministic operators, so that their key holds
    /// nothing derived from the node's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Input port → content hash of what is connected.
    pub inputs: BTreeMap<String, String>,
    /// External file or directory (as the operator names it) → content hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Environment variable the operator declares ([`crate::Operator::environment`]) → its
    /// value, for those set to something non-empty; absent from the JSON when none is, so that
    /// keys made without switches are the keys of before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl Ingredients {
    /// The cache key: blake3 of the canonical JSON.
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("ingredients serialise");
        blake3::hash(&json).to_hex().to_string()
    }
}

/// One file of an entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the entry directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (ns since the epoch) when written: a hint to skip re-hashing only.
    pub mtime_ns: u128,
    /// blake3 of the bytes.
    pub hash: String,
}

/// One output port of an entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Content hash of the port's output (what consumers' keys include).
    pub hash: String,
    /// Its files.
    pub files: Vec<FileRecord>,
}

/// The manifest stored with each entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version.
    pub format: u32,
    /// The key (directory name).
    pub key: String,
    /// What the key was computed from.
    pub ingredients: Ingredients,
    /// Output port → record.
    pub outputs: BTreeMap<String, OutputRecord>,
    /// Node name at the time it was built (informational).
    pub node: String,
    /// Seconds the operator ran.
    pub seconds: f64,
}

/// What `runs/PIPELINE/NODE.json` remembers of a node's last run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The key the node had.
    pub key: String,
    /// What that key was computed from (kept here so that `explain` can still name the changes
    /// once the entry itself is gone).
    pub ingredients: Ingredients,
}

/// Result of looking a key up.
// A `Lookup` is returned once per node and consumed at once, never stored in bulk, so the size
// of the `Hit` variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Lookup {
    /// A valid entry.
    Hit(Manifest),
    /// No entry.
    Miss,
    /// An entry exists but its bytes changed (or its manifest is unreadable). It is left in
    /// place: only a process holding the key's lock removes it ([`Cache::discard`]).
    Corrupt(String),
}

/// How much of an entry to re-hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Depth {
    /// Frames always; artifact files when their size or mtime moved.
    Quick,
    /// Every file.
    Full,
}

/// A cache directory.
pub struct Cache {
    root: PathBuf,
    owner: OnceLock<Owner>,
}

/// This process's (this `Cache` value's) claim on the temporary files it creates.
struct Owner {
    token: String,
    lock: Option<(PathBuf, File)>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        // A process that ends normally has removed its temporary files (builds, trash,
        // records); its lock file goes too, while still held. Only a killed process leaves
        // one behind, for the next run to find free and clean up after.
        if let Some((path, _)) = &self.lock {
            let _ = fs::remove_file(path);
        }
    }
}

/// Held for the duration of a run (shared) or `gc` (exclusive), or while building one key.
pub struct CacheLock(#[allow(dead_code)] File);

/// An entry under construction in `tmp/`; removed when dropped unless published.
pub struct Building {
    /// The directory operators write outputs into.
    pub dir: PathBuf,
    key: String,
}

impl Drop for Building {
    fn drop(&mut self) {
        // After a successful publish the directory has been renamed away and this is a no-op;
        // after a failed or panicking node it removes the half-built outputs.
        remove_all(&self.dir);
    }
}

impl Cache {
    /// Opens (creating if needed) a cache directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Cache> {
        let root = root.into();
        for sub in ["entries", "tmp", "locks", "runs"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir)
                .map_err(|e| Error::io("cannot create cache directory", &dir, e))?;
        }
        Ok(Cache {
            root,
            owner: OnceLock::new(),
        })
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a published entry.
    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(key)
    }

    /// Where a published entry keeps an output port.
    pub fn output_path(&self, key: &str, port: &str, frame: bool) -> PathBuf {
        let dir = self.entry_dir(key);
        if frame {
            dir.join(format!("{port}.parquet"))
        } else {
            dir.join(port)
        }
    }

    /// Reads an entry's manifest without verifying its files.
    pub fn manifest(&self, key: &str) -> Option<Manifest> {
        let text = fs::read(self.entry_dir(key).join("manifest.json")).ok()?;
        serde_json::from_slice::<Manifest>(&text)
            .ok()
            .filter(|m| m.format == MANIFEST_FORMAT && m.key == key)
    }
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn remove_all(path: &Path) {
    let _ = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    };
}
