//! Row shards: a node with `shards = N` whose operator names a row-shardable input port
//! ([`crate::op::Operator::row_shards`]) runs as N builds over contiguous slices of that port's
//! rows, each its own cache entry, whose output frames are then concatenated into the node's
//! entry.
//!
//! The promises:
//! - The node's entry is the same, byte for byte and key for key, whatever the shard count
//!   (1 included): the shard count is in neither its identity nor its key, and the operator's
//!   contract (each output row comes from one input row, in order; an output that aggregates
//!   over rows is recomputed from the joined rows by `Operator::finish_shards`) makes the
//!   result equal to the whole run's frames, written as one chunk like any operator's frame.
//! - A shard's key is the node's ingredients plus its row range (`"@rows"`), so a run killed
//!   after some shards resumes from them when the shard count is unchanged; a different count
//!   gives different ranges, whose shards are computed anew.
//! - A shard is built exactly as a whole node is (`exec::build_unit`: under its own entry lock,
//!   published atomically), so crashes mid-shard leave nothing half-written.
//!
//! Shards of one node run where the node runs (a thread, a worker process or a Slurm job): one
//! after another, or, when the node reserved several GPUs (`gpus = N` on the node), N at a
//! time, each on one of them (its `RunContext::gpus` holds that one ordinal).

use std::collections::BTreeMap;

use polars::prelude::DataFrame;

use crate::cache::{Cache, Ingredients, Lookup, Manifest};
use crate::error::{Error, Result};
use crate::exec::{Unit, build_unit};
use crate::op::{BoundInput, PortKind, read_parquet_checked, write_parquet};
use crate::progress::ProgressHub;

/// Builds `unit`'s entry, in row shards when it asks for more than one and its operator allows
/// it with these parameters; else as a whole.
pub(crate) fn build_node(
    cache: &Cache,
    unit: &Unit<'_>,
    ingredients: Ingredients,
    key: String,
    inputs: BTreeMap<String, BoundInput>,
    gpus: Vec<usize>,
    hub: &ProgressHub,
) -> Result<(Manifest, bool)> {
    let port = unit.op.row_shards(unit.params).filter(|_| unit.shards > 1);
    let Some(port) = port.filter(|p| inputs.contains_key(*p)) else {
        return build_unit(cache, unit, ingredients, key, inputs, gpus, hub);
    };
    let entry = cache.lock_entry(&key)?;
    if let Lookup::Hit(m) = cache.lookup(&key)? {
        return Ok((m, false));
    }
    let failed = |cause: miette::Report| Error::NodeFailed {
        node: unit.node.to_string(),
        op: unit.op.name().to_string(),
        cause,
    };
    if let Some(p) = unit
        .outputs
        .iter()
        .find(|p| !matches!(p.kind, PortKind::Frame(_)))
    {
        return Err(failed(miette::miette!(
            "output `{}` is not a frame, so row shards cannot be concatenated",
            p.name
        )));
    }
    let rows = crate::trace::parquet_rows(&inputs[port].path).ok_or_else(|| {
        failed(miette::miette!(
            "cannot count the rows of input `{port}` ({})",
            inputs[port].path.display()
        ))
    })? as usize;
    let started = std::time::Instant::now();
    let one_shard = |(start, end): (usize, usize), gpus: Vec<usize>| -> Result<Manifest> {
        let mut shard = ingredients.clone();
        if let Some(params) = shard.params.as_object_mut() {
            params.insert("@rows".into(), format!("{start}..{end}").into());
        }
        let shard_key = shard.key();
        let mut shard_inputs = inputs.clone();
        if let Some(b) = shard_inputs.get_mut(port) {
            b.rows = Some((start, end));
        }
        let (m, ran) = build_unit(cache, unit, shard, shard_key, shard_inputs, gpus, hub)?;
        tracing::info!(node = %unit.node, start, end, ran, "row shard");
        Ok(m)
    };
    let ranges = ranges(rows, unit.shards as usize);
    let mut parts: Vec<Manifest> = Vec::with_capacity(ranges.len());
    if gpus.len() > 1 {
        // A node that reserved several GPUs runs its shards side by side, one per GPU, in
        // waves; each shard sees only its own GPU. The entries are the same as in one row.
        for wave in ranges.chunks(gpus.len()) {
            let built: Vec<Result<Manifest>> = std::thread::scope(|scope| {
                let handles: Vec<_> = wave
                    .iter()
                    .zip(&gpus)
                    .map(|(&range, &gpu)| scope.spawn(move || one_shard(range, vec![gpu])))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(failed(miette::miette!("a row shard's thread panicked")))
                        })
                    })
                    .collect()
            });
            for m in built {
                parts.push(m?);
            }
        }
    } else {
        for range in ranges {
            parts.push(one_shard(range, gpus.clone())?);
        }
    }
    // Concatenate each port's shard frames, let the operator recompute what aggregates over
    // rows, and write the node's entry.
    let mut joined: BTreeMap<&'static str, DataFrame> = BTreeMap::new();
    for p in &unit.outputs {
        let mut whole: Option<DataFrame> = None;
        for m in &parts {
            let record = &m.outputs[p.name];
            let path = cache.output_path(&m.key, p.name, true);
            let part = read_parquet_checked(&path, &record.hash)?;
            match &mut whole {
                None => whole = Some(part),
                Some(w) => {
                    w.vstack_mut(&part).map_err(|e| {
                        failed(miette::miette!("shard frames of `{}` differ: {e}", p.name))
                    })?;
                }
            }
        }
        let whole = whole.ok_or_else(|| failed(miette::miette!("no shards")))?;
        joined.insert(p.name, whole);
    }
    unit.op
        .finish_shards(unit.params, &mut joined)
        .map_err(failed)?;
    let building = cache.begin(&key)?;
    let mut ports = Vec::new();
    for p in &unit.outputs {
        let mut whole = joined.remove(p.name).ok_or_else(|| {
            failed(miette::miette!(
                "finishing the shards dropped output `{}`",
                p.name
            ))
        })?;
        // One chunk, as an operator's freshly built frame is, so the bytes match a whole run.
        whole.rechunk_mut();
        write_parquet(
            &building.dir.join(format!("{}.parquet", p.name)),
            &mut whole,
        )?;
        ports.push((p.name, true));
    }
    let seconds = started.elapsed().as_secs_f64();
    let manifest = cache.publish(building, ingredients, &ports, unit.node, seconds)?;
    drop(entry);
    Ok((manifest, true))
}

/// `shards` contiguous ranges covering `0..rows`, sizes differing by at most one, empty ones
/// left out (a frame with fewer rows than shards, or none, still gets one range).
fn ranges(rows: usize, shards: usize) -> Vec<(usize, usize)> {
    let shards = shards.clamp(1, rows.max(1));
    let (base, extra) = (rows / shards, rows % shards);
    let mut out = Vec::with_capacity(shards);
    let mut start = 0;
    for i in 0..shards {
        let end = start + base + usize::from(i < extra);
        out.push((start, end));
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ranges;

    #[test]
    fn ranges_cover_every_row_once() {
        assert_eq!(ranges(10, 4), [(0, 3), (3, 6), (6, 8), (8, 10)]);
        assert_eq!(ranges(2, 8), [(0, 1), (1, 2)]);
        assert_eq!(ranges(0, 3), [(0, 0)]);
        assert_eq!(ranges(5, 1), [(0, 5)]);
    }
}
