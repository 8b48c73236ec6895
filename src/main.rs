//! The `judgeflow` binary: the engine's command line over the real operators, with the
//! self-training report (`judgeflow report`) and its seed and diagnostics tables in
//! `judgeflow compare`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// `judgeflow judge`: one image, one question, two answers → the judge's reasoning and verdict in
/// both orders, with the verdict probability.
#[derive(Parser, Debug)]
#[command(
    name = "judgeflow judge",
    about = "Judge one pair of answers in both orders"
)]
struct JudgeArgs {
    /// The model directory: a Hugging Face mllama checkpoint (config.json, model.safetensors or
    /// shards + index, tokenizer.json, tokenizer_config.json) or one judgeflow trained.
    #[arg(long)]
    model: PathBuf,
    /// The image (PNG or JPEG).
    #[arg(long)]
    image: PathBuf,
    /// The question about the image.
    #[arg(long)]
    question: String,
    /// The first answer.
    #[arg(long = "answer-1", alias = "answer-a")]
    answer_1: String,
    /// The second answer.
    #[arg(long = "answer-2", alias = "answer-b")]
    answer_2: String,
    /// `cpu`, or `cuda` with a binary built with --features cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Softmax temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    #[arg(long, default_value_t = 50)]
    top_k: usize,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    /// Most tokens of reasoning + verdict.
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Make the reasoning begin with this text in the order answer 1 first (answer 1 is A);
    /// the judge continues from it. Asks what the judge concludes from a given restatement.
    /// End it at a word boundary, before the verdict line.
    #[arg(long = "start-1", default_value = "")]
    start_1: String,
    /// The same for the order answer 2 first (answer 2 is A).
    #[arg(long = "start-2", default_value = "")]
    start_2: String,
}

fn judge_command() -> ExitCode {
    let args = JudgeArgs::parse_from(std::env::args().skip(1));
    let request = judgeflow_operators::judge_cli::JudgeRequest {
        model: args.model,
        image: args.image,
        question: args.question,
        answer_1: args.answer_1,
        answer_2: args.answer_2,
        device: args.device,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        max_tokens: args.max_tokens,
        seed: args.seed,
        start: [args.start_1, args.start_2],
    };
    match judgeflow_operators::judge_cli::judge_pair(request) {
        Ok(result) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).expect("plain data")
                );
            } else {
                print!("{}", judgeflow_operators::judge_cli::render_text(&result));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:?}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    #[cfg(feature = "cuda")]
    {
        keep_compiled_kernels();
        judgeflow_operators::exit_on_device_thread_panic();
    }
    if std::env::args().nth(1).as_deref() == Some("judge") {
        return judge_command();
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
