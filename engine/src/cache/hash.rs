//! Content hashes: blake3 of a file's bytes, and the bounded hash of external inputs (files and
//! directories outside the cache; see the bounds in the [`crate::cache`] docs).

use std::fs::{self, File};
use std::path::Path;

use crate::files;

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
