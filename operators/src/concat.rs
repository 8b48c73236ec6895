//! `op = "concat"`: one pairs frame from two (the open-ended pairs of `corrupt` and the
//! closed-ended pairs of `vote`), so one `judge` node sees both.

use judgeflow_engine::{Operator, ParamSpec, Params, Port, RunContext};
use judgeflow_schemas::PAIRS;
use miette::IntoDiagnostic;

/// Stacks two pairs frames.
pub struct Concat;

impl Operator for Concat {
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
    fn params(&self) -> Vec<ParamSpec> {
        vec![]
    }
    fn inputs(&self, _: &Params) -> Vec<Port> {
        vec![Port::frame("first", &PAIRS), Port::frame("second", &PAIRS)]
    }
    fn outputs(&self, _: &Params) -> Vec<Port> {
        vec![Port::frame("pairs", &PAIRS)]
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let columns: Vec<&str> = PAIRS.columns.iter().map(|(name, _)| *name).collect();
        // Only the schema's columns, in its order: producers may carry extra columns.
        let first = ctx
            .input_frame("first")?
            .select(columns.clone())
            .into_diagnostic()?;
        let second = ctx
            .input_frame("second")?
            .select(columns)
            .into_diagnostic()?;
        let mut out = first.vstack(&second).into_diagnostic()?;
        out.rechunk_mut();
        ctx.write_frame("pairs", &mut out)?;
        Ok(())
    }
}
