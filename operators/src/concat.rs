//! `op = "concat"`: one pairs frame from two (the open-ended pairs of `corrupt` and the
//! closed-ended pairs of `vote`), so one `judge` node sees both.

use crate::frames::frame_error;
use judgeflow_engine::{Port, RunContext, TypedOperator};
use judgeflow_schemas::PAIRS;

/// Stacks two pairs frames.
pub struct Concat;

impl TypedOperator for Concat {
    /// It has none.
    type Params = ();
    fn name(&self) -> &'static str {
        "concat"
    }
    fn version(&self) -> u32 {
        1
    }
    /// It stacks its inputs in order: no randomness, so a renamed node keeps its entries.
    fn uses_seed(&self) -> bool {
        false
    }
    fn doc(&self) -> &'static str {
        "stack two pairs frames (open-ended and closed-ended pairs) into one"
    }
    fn inputs(&self, _: &()) -> Vec<Port> {
        vec![Port::frame("first", &PAIRS), Port::frame("second", &PAIRS)]
    }
    fn outputs(&self, _: &()) -> Vec<Port> {
        vec![Port::frame("pairs", &PAIRS)]
    }
    fn run(&self, _: &(), ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let columns: Vec<&str> = PAIRS.columns.iter().map(|(name, _)| *name).collect();
        // Only the schema's columns, in its order: producers may carry extra columns.
        let first = ctx
            .input_frame("first")?
            .select(columns.clone())
            .map_err(frame_error(
                ctx.node,
                "selecting the first input's pair columns",
            ))?;
        let second = ctx
            .input_frame("second")?
            .select(columns)
            .map_err(frame_error(
                ctx.node,
                "selecting the second input's pair columns",
            ))?;
        let mut out = first
            .vstack(&second)
            .map_err(frame_error(ctx.node, "stacking the two inputs"))?;
        out.rechunk_mut();
        ctx.write_frame("pairs", &mut out)?;
        Ok(())
    }
}
