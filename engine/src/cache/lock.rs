//! Locks and temporary files: the cache lock (shared by runs, exclusive for `gc`), the per-key
//! entry locks, and this process's owner token, which names its temporary files so that those
//! of processes that are gone can be removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use super::{Cache, CacheLock, Owner, remove_all};
use crate::error::{Error, Result};

static NONCE: AtomicU64 = AtomicU64::new(0);

impl Cache {
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

    pub(super) fn tmp_path(&self, what: &str) -> PathBuf {
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
}
