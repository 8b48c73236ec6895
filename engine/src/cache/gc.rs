//! `judgeflow gc`: removes the entries that no kept pipeline references, and every temporary
//! leftover.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::{Cache, remove_all};
use crate::error::{Error, Result};

impl Cache {
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

fn dir_size(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|l| l.flatten().map(|i| dir_size(&i.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
