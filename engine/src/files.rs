//! Bounded reading of files outside the cache (pipeline files, sources' data files, images).
//!
//! The promise: reading a path named by a user never blocks on what it names and never holds
//! more than a stated number of bytes. Only regular files are opened — a FIFO would block
//! forever, `/dev/zero` never ends, a directory is not data — and the size limit is applied
//! while reading (`take(limit + 1)`), not after. The same bounds decide what the cache hashes
//! into keys ([`crate::cache::hash_path`]): a path these readers refuse hashes as a marker,
//! never as content an operator could have used.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `--rehash` ([`force_rehash`]).
static REHASH: AtomicBool = AtomicBool::new(false);

/// Makes [`rehash_forced`] true for the rest of the process (the command line's `--rehash`).
pub fn force_rehash() {
    REHASH.store(true, Ordering::Relaxed);
}

/// Whether operators that trust file stamps (size, mtime, inode) instead of re-reading large
/// inputs must re-hash them anyway: `--rehash` was given, or `JUDGEFLOW_REHASH` is set to
/// anything but empty or `0`. For an edit that kept a file's size and mtime, which no stamp
/// can see.
pub fn rehash_forced() -> bool {
    REHASH.load(Ordering::Relaxed)
        || std::env::var("JUDGEFLOW_REHASH").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Largest external file that is hashed into a cache key or read by a source (4 GiB: the real
/// benchmarks' files are a few hundred MB).
pub const MAX_EXTERNAL_BYTES: u64 = 4 << 30;

/// Most files a directory named as an external input may hold before it counts as too large.
pub const MAX_DIR_FILES: usize = 10_000;

/// What a non-regular file is, for messages and markers.
pub fn kind_of(meta: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else if meta.is_symlink() {
        "a symbolic link"
    } else if meta.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Reads a regular file of at most `limit` bytes. Anything else is an error whose message says
/// what the path is (`… is a FIFO, not a regular file`) or how large it is; nothing beyond
/// `limit + 1` bytes is ever read.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let bytes = read_bounded(path, limit)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// Like [`read_regular`], but a file over `limit` is not an error: its first `limit + 1` bytes
/// come back, so the caller can tell "too large" apart and say so its own way.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file", kind_of(&meta)),
        ));
    }
    let file = File::open(path)?;
    // The file may have been swapped or grown since `metadata`: check what was opened, and
    // bound the read itself.
    let opened = file.metadata()?;
    if !opened.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file", kind_of(&opened)),
        ));
    }
    let mut bytes = Vec::with_capacity(opened.len().min(limit) as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn too_large(size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("it is {size} bytes or more; the limit is {limit}"),
    )
}
