//! `ops`: the registered operators with their parameters, defaults and whether rows shard.

use std::fmt::Write as _;

use crate::op::Registry;

pub(super) fn ops(registry: &Registry, out: &mut String) {
    for op in registry.all() {
        let title = match op.kind() {
            Some(k) => format!("{} (kind = \"{k}\")", op.name()),
            None => op.name().to_string(),
        };
        let _ = writeln!(out, "{title}  v{}\n  {}", op.version(), op.doc());
        // With its default parameters: whether `shards = N` may split it (`crate::shard`).
        let defaults = crate::value::Params(
            op.params()
                .into_iter()
                .filter_map(|p| Some((p.name.to_string(), p.default?)))
                .collect(),
        );
        if let Some(port) = op.row_shards(&defaults) {
            let _ = writeln!(
                out,
                "  row shards: `shards = N` splits the rows of `{port}`"
            );
        }
        for p in op.params() {
            let default = p
                .default
                .map(|d| format!(" = {d}"))
                .unwrap_or_else(|| " (required)".into());
            let _ = writeln!(
                out,
                "    {}{default}: {} — {}",
                p.name,
                p.kind.describe(),
                p.doc
            );
        }
    }
}
