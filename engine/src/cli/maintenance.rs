//! Looking after the cache: `gc` removes the entries no given pipeline references, `verify`
//! re-hashes every entry and removes the corrupt ones.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Ctx, load};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::exec::{self, Status};

/// `gc`: keeps the current entries of `pipelines`, removes (or, `dry_run`, lists) the rest.
pub(super) fn gc(
    ctx: &Ctx<'_>,
    pipelines: &[PathBuf],
    dry_run: bool,
    out: &mut String,
) -> Result<()> {
    if pipelines.is_empty() {
        return Err(Error::usage(
            "`gc` needs the pipelines whose entries to keep",
            Some("judgeflow gc pipelines/*.toml".into()),
        ));
    }
    let cache = Cache::open(ctx.cache)?;
    let _lock = cache.lock_exclusive()?;
    let mut keep = BTreeSet::new();
    for p in pipelines {
        let plan = load(p, ctx.registry, &[])?;
        for (_, s) in exec::status(&plan, &cache)? {
            if let Status::Fresh { key } = s {
                keep.insert(key);
            }
        }
    }
    let (removed, bytes) = cache.gc(&keep, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let _ = writeln!(
        out,
        "{verb} {} entries ({:.1} MiB); kept {}",
        removed.len(),
        bytes as f64 / 1048576.0,
        keep.len()
    );
    Ok(())
}

/// `verify`: re-hashes every entry; an error (exit code 1) when any was corrupt.
pub(super) fn verify(ctx: &Ctx<'_>, out: &mut String) -> Result<()> {
    let cache = Cache::open(ctx.cache)?;
    let _shared = cache.lock_shared()?;
    let (checked, corrupt) = cache.verify_all()?;
    for (key, detail) in &corrupt {
        let _ = writeln!(out, "corrupt  {key}: {detail}; removed");
    }
    let _ = writeln!(out, "verified {checked} entries: {} corrupt", corrupt.len());
    match corrupt.len() {
        0 => Ok(()),
        n => Err(Error::CorruptEntry {
            key: corrupt[0].0.clone(),
            detail: format!(
                "{} ({n} of {checked} entries were corrupt and are removed; the next \
                 run recomputes them)",
                corrupt[0].1
            ),
        }),
    }
}
