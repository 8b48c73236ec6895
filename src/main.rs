//! The `judgeflow` binary: the engine's command line over the real operators, with the
//! self-training report (`judgeflow report`) and its seed and diagnostics tables in
//! `judgeflow compare`.

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(feature = "cuda")]
    {
        keep_compiled_kernels();
        judgeflow_operators::exit_on_device_thread_panic();
    }
    judgeflow_engine::cli::main_with_reporter_and_comparer(
        judgeflow_operators::registry(),
        judgeflow_report::write_report_with_trace,
        judgeflow_report::compare_sections,
    )
}

/// Points the GPU kernel caches at `KERNELS`: `$JUDGEFLOW_KERNEL_CACHE`, else `kernels/` inside
/// the judgeflow cache as the command line resolves it (`--cache DIR`, else `$JUDGEFLOW_CACHE`,
/// else `./.judgeflow`). A second run of a pipeline then compiles nothing the first compiled.
/// It runs before the command line is parsed because CUDA reads its cache location once, at
/// start, and the variable must be set while the process has a single thread.
#[cfg(feature = "cuda")]
fn keep_compiled_kernels() {
    use std::path::PathBuf;
    let args: Vec<String> = std::env::args().collect();
    let flag = args
        .windows(2)
        .find(|w| w[0] == "--cache")
        .map(|w| w[1].clone())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--cache=").map(String::from))
        });
    let dir = match std::env::var_os("JUDGEFLOW_KERNEL_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => flag
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("JUDGEFLOW_CACHE").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".judgeflow"))
            .join("kernels"),
    };
    if let Err(e) = judgeflow_operators::use_kernel_cache(&dir) {
        eprintln!(
            "warning: compiled GPU kernels will not be kept in {}: {e}",
            dir.display()
        );
    }
}
