//! The `judgeflow` process around one command: [`main`] and its variants parse the arguments,
//! run the command, print what it printed, render errors as diagnostics and pick the exit code.

use std::process::ExitCode;

use clap::Parser;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

use super::{Cli, Comparer, Reporter, execute_with_comparer};
use crate::error::Error;
use crate::op::Registry;

/// Parses the process arguments, runs the command, renders errors; exit code 2 for invalid
/// pipelines and usage, 1 for failures while running. `report` is refused (no reporter).
pub fn main(registry: Registry) -> ExitCode {
    run_main(registry, None, None)
}

/// [`main`], with `report` handing its nodes to `reporter`.
pub fn main_with_reporter(registry: Registry, reporter: Reporter) -> ExitCode {
    run_main(registry, Some(reporter), None)
}

/// [`main_with_reporter`], with `compare` adding `comparer`'s sections.
pub fn main_with_reporter_and_comparer(
    registry: Registry,
    reporter: Reporter,
    comparer: Comparer,
) -> ExitCode {
    run_main(registry, Some(reporter), Some(comparer))
}

fn run_main(
    registry: Registry,
    reporter: Option<Reporter>,
    comparer: Option<Comparer>,
) -> ExitCode {
    let cli = Cli::parse();
    if cli.rehash {
        crate::files::force_rehash();
    }
    init_tracing();
    let mut out = String::new();
    let result = execute_with_comparer(cli, &registry, reporter, comparer, &mut out);
    print!("{out}");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "{}",
                render(
                    &*e,
                    terminal_width(),
                    std::io::IsTerminal::is_terminal(&std::io::stderr())
                )
            );
            // A reporter's own failure is not an engine error; it failed while running.
            ExitCode::from(e.downcast_ref::<Error>().map_or(1, exit_code))
        }
    }
}

/// 2 for invalid pipelines and command-line mistakes (nothing ran), 1 for failures in a run.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Config(_) | Error::Usage { .. } | Error::UnknownNode(_) => 2,
        _ => 1,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, which include "waiting for the
/// cache").
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

/// Renders a diagnostic as miette's graphical report (colour only when asked).
pub fn render(diag: &dyn Diagnostic, width: usize, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut s = String::new();
    GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .render_report(&mut s, diag)
        .expect("rendering to a String cannot fail");
    s
}
