//! Run records (`runs/PIPELINE/NODE.json`): the key and ingredients each node name had at its
//! last run, for `plan` and `explain`; and [`file_safe`], the encoding of the names they are
//! stored under.

use std::fs;
use std::path::PathBuf;

use super::{Cache, MAX_RECORD_BYTES, Manifest, RunRecord};
use crate::error::{Error, Result};
use crate::fault;

impl Cache {
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
