//! Reading one node's fresh output out of the cache: `show` prints the head of a frame (or lists
//! an artifact's files), `export` copies it out as parquet, JSON lines, CSV, a Hugging Face
//! dataset or a model directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::table::format_frame;
use super::{Ctx, PipelineArgs, fresh_key, load, log_line, read_frame};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::exec;
use crate::export::{self, ExportFormat};

/// `show`: the output's path, then the first `rows` rows of a frame or an artifact's files.
pub(super) fn show(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    node: &str,
    port: Option<&str>,
    rows: usize,
    out: &mut String,
) -> Result<()> {
    let plan = load(&args.pipeline, ctx.registry, &args.set)?;
    let idx = plan.find(node)?;
    let cache = Cache::open(ctx.cache)?;
    let key = fresh_key(&plan, &cache, idx)?;
    let n = &plan.graph[idx];
    let Some((port, path, frame)) = exec::output_file(&cache, &key, n, port) else {
        return Err(export::no_such_output(
            n,
            format!("node `{}` has no such output", n.name),
        ));
    };
    let _ = writeln!(out, "{} {port}: {}", n.name, path.display());
    log_line(&cache, &plan, &n.name, out);
    if frame {
        let df = read_frame(&cache, &key, &port, &path)?;
        let _ = writeln!(out, "{} rows × {} columns", df.height(), df.width());
        let _ = write!(out, "{}", format_frame(&df.head(Some(rows))));
    } else {
        for entry in walk(&path) {
            let _ = writeln!(out, "  {}", entry.display());
        }
    }
    Ok(())
}

/// `export`: copies `target`'s output to the directory `to`.
pub(super) fn export(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    target: &str,
    to: &Path,
    format: ExportFormat,
    out: &mut String,
) -> Result<()> {
    let plan = load(&args.pipeline, ctx.registry, &args.set)?;
    let (idx, port) = export::resolve(&plan, target)?;
    let cache = Cache::open(ctx.cache)?;
    let key = fresh_key(&plan, &cache, idx)?;
    let n = &plan.graph[idx];
    let (port, path, _) = exec::output_file(&cache, &key, n, port)
        .ok_or_else(|| Error::usage(format!("node `{}` has no outputs", n.name), None))?;
    let manifest = cache.manifest(&key).ok_or_else(|| {
        Error::usage(
            format!("the cache entry of `{}` has no readable manifest", n.name),
            Some("run the pipeline again to rebuild it".into()),
        )
    })?;
    let src = export::Source {
        plan: &plan,
        pipeline_file: &args.pipeline,
        node: n,
        port: &port,
        manifest: &manifest,
        path: &path,
    };
    let files = export::export(&src, format, to)?;
    let _ = writeln!(
        out,
        "exported {}.{port} ({} file(s)) to {}",
        n.name,
        files.len(),
        to.display()
    );
    for f in files.iter().take(12) {
        let _ = writeln!(out, "  {}", f.display());
    }
    if files.len() > 12 {
        let _ = writeln!(out, "  … and {} more", files.len() - 12);
    }
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(list) = std::fs::read_dir(dir) {
        for e in list.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}
