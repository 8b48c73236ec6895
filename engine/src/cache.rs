//! The content-addressed cache.
//!
//! # What goes into a key
//! A node's cache key is the blake3 hash of the canonical JSON of its [`Ingredients`]: operator
//! name and kind, operator version, every parameter the operator declares (defaults filled in,
//! keys sorted, floats in round-trip notation), the seed it receives if it uses one (see below),
//! and for each input port the *content hash* of what is connected there. Content hashes are blake3 over the bytes of the
//! produced files (for a directory artifact, over the sorted list of relative path and file
//! hash). Operators that read files outside the cache (sources) name them, and the content
//! hash of each joins the key the same way. Nothing else goes in: not the node's name (except
//! through the seed, below), not the pipeline's, not paths, not times. So moving a pipeline
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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fault;
use crate::files;

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

static NONCE: AtomicU64 = AtomicU64::new(0);

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

    /// Opens `path` for locking: read-write (created if missing), or read-only when the cache
    /// cannot be written (advisory locks work on read-only descriptors too).
    fn open_lock(path: &Path) -> std::io::Result<File> {
        match File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
        {
            Ok(f) => Ok(f),
            Err(e) => File::open(path).map_err(|_| e),
        }
    }

    fn lock_file(&self) -> Result<File> {
        let path = self.root.join("cache.lock");
        Self::open_lock(&path).map_err(|e| Error::io("cannot open cache lock", &path, e))
    }

    /// Taken by every run: many runs may share a cache, but not with a `gc`. When a `gc` holds
    /// the cache, says so (a silent wait looks like a hang) and waits.
    pub fn lock_shared(&self) -> Result<CacheLock> {
        self.lock_cache(
            true,
            "another process holds it exclusively (a `judgeflow gc`?); this run starts when it \
             is done",
        )
    }

    /// Taken by `gc`; says so when it has to wait for runs to finish.
    pub fn lock_exclusive(&self) -> Result<CacheLock> {
        self.lock_cache(false, "runs are using it; gc starts when they finish")
    }

    /// Takes `cache.lock` shared or exclusively; when it is held the other way, says `why_wait`
    /// (a silent wait looks like a hang) and waits.
    fn lock_cache(&self, shared: bool, why_wait: &str) -> Result<CacheLock> {
        let f = self.lock_file()?;
        let path = self.root.join("cache.lock");
        let tried = if shared {
            f.try_lock_shared()
        } else {
            f.try_lock()
        };
        match tried {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!(
                    "waiting for the cache `{}`: {why_wait}",
                    self.root.display()
                );
                let waited = if shared { f.lock_shared() } else { f.lock() };
                waited.map_err(|e| Error::io("cannot lock cache", &path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io("cannot lock cache", &path, e));
            }
        }
        Ok(CacheLock(f))
    }

    /// Blocks until this process may build (or discard) `key`; released when the guard drops
    /// (or the process dies: the OS drops advisory locks with the process).
    pub fn lock_entry(&self, key: &str) -> Result<CacheLock> {
        let path = self.root.join("locks").join(format!("{key}.lock"));
        let f =
            Self::open_lock(&path).map_err(|e| Error::io("cannot open entry lock", &path, e))?;
        f.lock()
            .map_err(|e| Error::io("cannot lock entry", &path, e))?;
        Ok(CacheLock(f))
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

    /// Looks a key up and verifies the entry (frames re-hashed, artifacts by size and mtime:
    /// see the module docs). Never modifies the cache.
    pub fn lookup(&self, key: &str) -> Result<Lookup> {
        self.check(key, Depth::Quick)
    }

    fn check(&self, key: &str, depth: Depth) -> Result<Lookup> {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Ok(Lookup::Miss);
        }
        let verdict = match self.manifest(key) {
            None => Err("manifest.json is missing or unreadable".to_string()),
            Some(m) => verify(&dir, &m, depth).map(|()| m),
        };
        match verdict {
            Ok(m) => Ok(Lookup::Hit(m)),
            // Gone between `exists` and reading it: another process discarded it.
            Err(_) if !dir.exists() => Ok(Lookup::Miss),
            Err(detail) => {
                tracing::warn!(key, %detail, "corrupt cache entry; it will be recomputed");
                Ok(Lookup::Corrupt(detail))
            }
        }
    }

    /// Moves a (corrupt) entry out of `entries/` so that a fresh one can be published. The
    /// caller holds the key's lock (`_held`), so two processes never discard the same entry;
    /// one that is already gone (discarded by a `gc`, or by hand) is not an error.
    pub fn discard(&self, key: &str, _held: &CacheLock) -> Result<()> {
        let dir = self.entry_dir(key);
        let trash = self.tmp_path("corrupt");
        match fs::rename(&dir, &trash) {
            Ok(()) => {
                fault::point("discard:moved");
                remove_all(&trash);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("cannot move corrupt entry", &dir, e)),
        }
    }

    /// Re-hashes every file of every entry (what `judgeflow verify` does) and discards the
    /// corrupt ones, each under its key's lock. Returns (entries checked, corrupt key and why).
    pub fn verify_all(&self) -> Result<(usize, Vec<(String, String)>)> {
        let entries = self.root.join("entries");
        let mut keys: Vec<String> = fs::read_dir(&entries)
            .map_err(|e| Error::io("cannot list", &entries, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        keys.sort();
        let mut corrupt = Vec::new();
        let mut checked = 0;
        for key in keys {
            let lock = self.lock_entry(&key)?;
            match self.check(&key, Depth::Full)? {
                Lookup::Hit(_) => checked += 1,
                Lookup::Miss => {}
                Lookup::Corrupt(detail) => {
                    checked += 1;
                    self.discard(&key, &lock)?;
                    corrupt.push((key, detail));
                }
            }
        }
        Ok((checked, corrupt))
    }

    fn owner(&self) -> &Owner {
        self.owner.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let n = NONCE.fetch_add(1, Ordering::Relaxed);
            let token = format!("{}.{nanos}.{n}", std::process::id());
            let path = self.root.join("tmp").join(format!("owner-{token}.lock"));
            // Without a lock file (a read-only cache) temporary files cannot be made anyway.
            let lock = File::create(&path)
                .ok()
                .filter(|f| f.try_lock().is_ok())
                .map(|f| (path, f));
            Owner { token, lock }
        })
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        let n = NONCE.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{n}", self.owner().token))
    }

    /// Removes the temporary files of processes that are gone (killed mid-node, or failed
    /// before cleaning up). Call with the shared lock held. Files whose owner is alive, and
    /// files without an owner lock (older layouts), are left to `gc`. Returns how many were
    /// removed; a cache that cannot be written is left as it is.
    pub fn remove_stale_tmp(&self) -> usize {
        let tmp = self.root.join("tmp");
        let Ok(list) = fs::read_dir(&tmp) else {
            return 0;
        };
        let mine = self.owner.get().map(|o| o.token.clone());
        let mut by_owner: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for item in list.flatten() {
            let name = item.file_name().to_string_lossy().to_string();
            if name.starts_with("owner-") {
                continue;
            }
            if let Some(token) = name.split('-').nth(1) {
                by_owner
                    .entry(token.to_string())
                    .or_default()
                    .push(item.path());
            }
        }
        // Owner lock files with nothing left to own are stale too.
        if let Ok(list) = fs::read_dir(&tmp) {
            for item in list.flatten() {
                let name = item.file_name().to_string_lossy().to_string();
                if let Some(token) = name
                    .strip_prefix("owner-")
                    .and_then(|s| s.strip_suffix(".lock"))
                {
                    by_owner.entry(token.to_string()).or_default();
                }
            }
        }
        let mut removed = 0;
        for (token, items) in by_owner {
            if mine.as_deref() == Some(token.as_str()) {
                continue;
            }
            let lock_path = tmp.join(format!("owner-{token}.lock"));
            let Ok(lock) = File::open(&lock_path) else {
                continue;
            };
            if lock.try_lock().is_err() {
                continue; // its owner is alive
            }
            for item in &items {
                remove_all(item);
                removed += usize::from(!item.exists());
            }
            if items.iter().all(|i| !i.exists()) {
                let _ = fs::remove_file(&lock_path);
            }
        }
        if removed > 0 {
            tracing::info!(
                removed,
                "removed temporary files of processes that are gone"
            );
        }
        removed
    }

    /// Starts building an entry for `key` in a private temporary directory.
    pub fn begin(&self, key: &str) -> Result<Building> {
        let dir = self.tmp_path("build");
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create build directory", &dir, e))?;
        fault::point("begin");
        Ok(Building {
            dir,
            key: key.to_string(),
        })
    }

    /// Hashes what was built, writes the manifest and publishes the entry atomically.
    pub fn publish(
        &self,
        building: Building,
        ingredients: Ingredients,
        ports: &[(&str, bool)],
        node: &str,
        seconds: f64,
    ) -> Result<Manifest> {
        let mut outputs = BTreeMap::new();
        for &(port, frame) in ports {
            let mut files = Vec::new();
            if frame {
                let rel = format!("{port}.parquet");
                files.push(file_record(&building.dir, &rel)?);
            } else {
                let mut rels = Vec::new();
                collect_files(&building.dir, &building.dir.join(port), &mut rels)?;
                rels.sort();
                for rel in rels {
                    files.push(file_record(&building.dir, &rel)?);
                }
            }
            let hash = if frame {
                files[0].hash.clone()
            } else {
                let mut h = blake3::Hasher::new();
                for f in &files {
                    h.update(f.path.as_bytes());
                    h.update(b"\0");
                    h.update(f.hash.as_bytes());
                    h.update(b"\n");
                }
                h.finalize().to_hex().to_string()
            };
            outputs.insert(port.to_string(), OutputRecord { hash, files });
        }
        fault::point("publish:hashed");
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            key: building.key.clone(),
            ingredients,
            outputs,
            node: node.to_string(),
            seconds,
        };
        let path = building.dir.join("manifest.json");
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        let mut f = File::create(&path).map_err(|e| Error::io("cannot write", &path, e))?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("cannot write", &path, e))?;
        fault::point("publish:manifest");
        let target = self.entry_dir(&building.key);
        if let Err(e) = fs::rename(&building.dir, &target) {
            // Another process published the same key first (possible only across caches shared
            // without locks, e.g. over NFS); its entry is equivalent by construction.
            if !target.join("manifest.json").exists() {
                return Err(Error::io("cannot publish cache entry", &target, e));
            }
        }
        fault::point("publish:renamed");
        Ok(manifest)
    }

    fn pointer_path(&self, pipeline: &str, node: &str) -> PathBuf {
        self.root
            .join("runs")
            .join(file_safe(pipeline))
            .join(format!("{}.json", file_safe(node)))
    }

    /// Remembers which key, from which ingredients, `node` of `pipeline` had at its last run
    /// (for `plan` and `explain`). Writes nothing when the record is unchanged, so a fully
    /// fresh run writes nothing at all.
    pub fn record_run(&self, pipeline: &str, node: &str, manifest: &Manifest) -> Result<()> {
        let path = self.pointer_path(pipeline, node);
        let record = RunRecord {
            key: manifest.key.clone(),
            ingredients: manifest.ingredients.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("run record serialises");
        if fs::read(&path).is_ok_and(|old| old == json) {
            return Ok(());
        }
        let dir = path.parent().expect("pointer has a parent");
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let tmp = self.tmp_path("pointer");
        let written = fs::write(&tmp, &json)
            .map_err(|e| Error::io("cannot write", &tmp, e))
            .and_then(|()| {
                fault::point("record:written");
                fs::rename(&tmp, &path).map_err(|e| Error::io("cannot write", &path, e))
            });
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// What `node` of `pipeline` had at its last run, if it ever ran. Records written before
    /// they held ingredients (a bare key) are completed from the entry's manifest while it
    /// exists.
    pub fn last_record(&self, pipeline: &str, node: &str) -> Option<RunRecord> {
        let bytes = fs::read(self.pointer_path(pipeline, node)).ok()?;
        if let Ok(record) = serde_json::from_slice::<RunRecord>(&bytes) {
            return Some(record);
        }
        let key = String::from_utf8(bytes).ok()?.trim().to_string();
        let m = self.manifest(&key)?;
        Some(RunRecord {
            key,
            ingredients: m.ingredients,
        })
    }

    /// Every run record of `pipeline` that holds its ingredients, in no particular order (for
    /// telling a renamed node from a new one). Unreadable records are skipped: they only ever
    /// refine a reason.
    pub fn records(&self, pipeline: &str) -> Vec<RunRecord> {
        let dir = self.root.join("runs").join(file_safe(pipeline));
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| {
                let path = e.ok()?.path();
                let bytes = crate::files::read_regular(&path, MAX_RECORD_BYTES).ok()?;
                serde_json::from_slice::<RunRecord>(&bytes).ok()
            })
            .collect()
    }

    /// The key `node` had at its last run, if any.
    pub fn last_run(&self, pipeline: &str, node: &str) -> Option<String> {
        let bytes = fs::read(self.pointer_path(pipeline, node)).ok()?;
        match serde_json::from_slice::<RunRecord>(&bytes) {
            Ok(record) => Some(record.key),
            Err(_) => String::from_utf8(bytes).ok().map(|s| s.trim().to_string()),
        }
    }

    /// Removes every entry whose key is not in `keep`, all temporary leftovers, and unused
    /// locks. Call with the exclusive lock held. Returns (entries removed, bytes freed).
    pub fn gc(&self, keep: &BTreeSet<String>, dry_run: bool) -> Result<(Vec<String>, u64)> {
        let entries = self.root.join("entries");
        let mut removed = Vec::new();
        let mut bytes = 0;
        for item in fs::read_dir(&entries).map_err(|e| Error::io("cannot list", &entries, e))? {
            let item = item.map_err(|e| Error::io("cannot list", &entries, e))?;
            let key = item.file_name().to_string_lossy().to_string();
            if keep.contains(&key) {
                continue;
            }
            bytes += dir_size(&item.path());
            removed.push(key);
            if !dry_run {
                let trash = self.tmp_path("gc");
                fs::rename(item.path(), &trash)
                    .map_err(|e| Error::io("cannot remove", item.path(), e))?;
                remove_all(&trash);
            }
        }
        if !dry_run {
            for sub in ["tmp", "locks"] {
                let dir = self.root.join(sub);
                if let Ok(list) = fs::read_dir(&dir) {
                    for item in list.flatten() {
                        bytes += dir_size(&item.path());
                        remove_all(&item.path());
                    }
                }
            }
        }
        removed.sort();
        Ok((removed, bytes))
    }
}

/// Whether an entry file holds a frame (`PORT.parquet` at the entry's top level).
fn is_frame(port: &str, file: &FileRecord) -> bool {
    file.path == format!("{port}.parquet")
}

/// Checks every file of an entry against its manifest, as deep as `depth` says.
fn verify(dir: &Path, manifest: &Manifest, depth: Depth) -> std::result::Result<(), String> {
    for (port, out) in &manifest.outputs {
        for f in &out.files {
            let path = dir.join(&f.path);
            let meta = fs::metadata(&path).map_err(|_| format!("`{}` is missing", f.path))?;
            if meta.len() != f.size {
                return Err(format!(
                    "`{}` is {} bytes, {} were written",
                    f.path,
                    meta.len(),
                    f.size
                ));
            }
            let rehash = depth == Depth::Full || is_frame(port, f) || mtime_ns(&meta) != f.mtime_ns;
            if rehash {
                let hash =
                    hash_file(&path).map_err(|e| format!("`{}` is unreadable: {e}", f.path))?;
                if hash != f.hash {
                    return Err(format!("`{}` no longer matches its hash", f.path));
                }
            }
        }
    }
    Ok(())
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// Content hash of an external input, within the bounds in the module docs: a regular file's
/// bytes, a directory's listing of (relative path, file hash), or a marker saying why it has
/// none (`missing`, `not a regular file`, `too large`). Markers are stable, so a node whose
/// operator refused such a path stays fresh until the path changes kind or size class.
pub fn hash_path(path: &Path) -> String {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return "missing".into(),
    };
    if meta.is_dir() {
        hash_dir(path)
    } else if !meta.is_file() {
        format!("not a regular file ({})", files::kind_of(&meta))
    } else if meta.len() > files::MAX_EXTERNAL_BYTES {
        format!("too large ({} bytes)", meta.len())
    } else {
        hash_file(path).unwrap_or_else(|_| "unreadable".into())
    }
}

/// A directory's content hash, walking without following links, within the file and byte
/// bounds; a directory beyond them (`/usr`) is measured, never read.
fn hash_dir(root: &Path) -> String {
    let mut found: Vec<(String, Option<u64>)> = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(list) = fs::read_dir(&dir) else {
            return "unreadable".into();
        };
        for item in list.flatten() {
            let path = item.path();
            let rel = path
                .strip_prefix(root)
                .expect("inside root")
                .to_string_lossy()
                .replace('\\', "/");
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                total += meta.len();
                found.push((rel, Some(meta.len())));
            } else {
                // Links are hashed by where they point, other kinds by what they are; neither
                // is followed or opened.
                let what = fs::read_link(&path)
                    .map(|t| format!("link:{}", t.display()))
                    .unwrap_or_else(|_| files::kind_of(&meta).to_string());
                found.push((format!("{rel}\0{what}"), None));
            }
            if found.len() > files::MAX_DIR_FILES || total > files::MAX_EXTERNAL_BYTES {
                return "too large (directory)".into();
            }
        }
    }
    found.sort();
    let mut h = blake3::Hasher::new();
    for (rel, size) in found {
        h.update(rel.as_bytes());
        h.update(b"\0");
        if size.is_some() {
            h.update(hash_file(&root.join(&rel)).unwrap_or_default().as_bytes());
        }
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// blake3 of a file's bytes, hex.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(File::open(path)?)?;
    Ok(h.finalize().to_hex().to_string())
}

fn file_record(entry: &Path, rel: &str) -> Result<FileRecord> {
    let path = entry.join(rel);
    let meta = fs::metadata(&path).map_err(|e| Error::io("output was not written", &path, e))?;
    let hash = hash_file(&path).map_err(|e| Error::io("cannot read output", &path, e))?;
    Ok(FileRecord {
        path: rel.to_string(),
        size: meta.len(),
        mtime_ns: mtime_ns(&meta),
        hash,
    })
}

fn collect_files(entry: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for item in fs::read_dir(dir).map_err(|e| Error::io("cannot list output", dir, e))? {
        let item = item.map_err(|e| Error::io("cannot list output", dir, e))?;
        let path = item.path();
        if path.is_dir() {
            collect_files(entry, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(entry)
                .expect("inside entry")
                .to_string_lossy()
                .replace('\\', "/");
            out.push(rel);
        }
    }
    Ok(())
}

fn dir_size(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|l| l.flatten().map(|i| dir_size(&i.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn remove_all(path: &Path) {
    let _ = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    };
}

/// Longest file-name stem a record gets before it is shortened with a hash (file systems allow
/// 255 bytes; this leaves room for `.json` and the hash).
const MAX_STEM: usize = 180;

/// A node or pipeline name as a file name. Injective: letters, digits and `-_@=,.[]` (what
/// sweep labels are made of) stay readable, every other byte becomes `%XX`, `%` included, so
/// `a/b` → `a%2Fb` and `a%b` → `a%25b`. A long result keeps its first bytes and ends in `~`
/// (which the encoding never produces) and a hash of the whole name.
pub fn file_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_@=,.[]".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // A name of only dots would be `.` or `..`.
    if out.bytes().all(|b| b == b'.') {
        out = out.replace('.', "%2E");
    }
    if out.len() > MAX_STEM {
        let hash = blake3::hash(name.as_bytes()).to_hex();
        out.truncate(MAX_STEM - 34);
        out.push('~');
        out.push_str(&hash[..32]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::file_safe;

    #[test]
    fn file_safe_is_injective_on_names_that_used_to_collide() {
        assert_ne!(file_safe("v[x.y=a/b]"), file_safe("v[x.y=a%b]"));
        assert_ne!(file_safe("a b"), file_safe("a%20b"));
        assert_eq!(
            file_safe("judge@2[vote.method=oracle]"),
            "judge@2[vote.method=oracle]"
        );
        assert_eq!(file_safe(".."), "%2E%2E");
    }

    #[test]
    fn file_safe_bounds_long_names_and_keeps_them_apart() {
        let a = "n".repeat(300);
        let b = format!("{}m", "n".repeat(299));
        assert!(file_safe(&a).len() <= super::MAX_STEM);
        assert_ne!(file_safe(&a), file_safe(&b));
        let unicode = "é".repeat(200);
        assert!(file_safe(&unicode).len() <= super::MAX_STEM);
    }
}
