//! The `judgeflow` binary: the engine's command line over the real operators, with the
//! self-training report (`judgeflow report`).

use std::process::ExitCode;

fn main() -> ExitCode {
    judgeflow_engine::cli::main_with_reporter(
        judgeflow_operators::registry(),
        judgeflow_report::write_report_with_trace,
    )
}
