//! Checking entries against their manifests: [`Cache::lookup`] (frames re-hashed, artifacts by
//! size and mtime), [`Cache::verify_all`] (every byte), and [`Cache::discard`], which moves a
//! corrupt entry out of `entries/`.

use std::fs;
use std::path::Path;

use super::{
    Cache, CacheLock, Depth, FileRecord, Lookup, Manifest, hash_file, mtime_ns, remove_all,
};
use crate::error::{Error, Result};
use crate::fault;

impl Cache {
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
