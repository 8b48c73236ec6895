//! The model's speed on one backend, printed as one JSON line: prefill and decode tokens/s at
//! several batch sizes for both decode placements (host sampling with growing shapes, and the
//! device path with fixed shapes and on-device sampling), and a full training step, with the
//! first call's time (kernel compilation) kept apart from the timed ones.
//!
//! Weights are random: speed does not depend on their values. The inputs follow
//! `scripts/hf_mllama_timing.py` (one image per row, its `<|image|>` token after BOS, random
//! pixels, prompt of fixed length, forced length with no stop token), so that script's figures
//! for the same `config.json` are the reference; `scripts/device_speed.sh` runs both in one
//! device run.
//!
//! ```text
//! cargo run --release -p judgeflow-model --features cuda --example speed -- \
//!     --preset tiny --device cuda --batches 16,64 --prompt-len 48 --new-tokens 32
//! cargo run --release -p judgeflow-model --features cuda --example speed -- \
//!     --config llama32_11b_vision_config.json --device cuda --tiles 1 --batches 16,64 \
//!     --prompt-len 64 --new-tokens 64 --train-steps 0
//! ```

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use judgeflow_model::backend::PoolMemory;
use judgeflow_model::config::MllamaConfig;
use judgeflow_model::generate::{GenerateConfig, Placement, SamplingConfig, generate};
use judgeflow_model::lora::{self, LoraConfig};
use judgeflow_model::model::{ImageInputs, MllamaForConditionalGeneration};
use judgeflow_model::train::{TrainBatch, TrainConfig, masked_nll, train};
use serde_json::{Value, json};

const USAGE: &str = "usage: speed [--preset micro|tiny|llama_3_2_11b | --config CONFIG.json] [--device cpu|cuda] \
[--tiles N] [--batches 16,64] [--prompt-len N] [--new-tokens N] [--repeats N] \
[--placements host,device] [--greedy] [--train-batch N] [--train-seq N] [--train-steps N] [--train-phases N] \
[--lora-rank R] [--lora-alpha A] [--out FILE] [--write-config FILE] [--kernel-cache DIR] [--matmul-check] [--norm-check] [--matmul-bench]";

struct Args {
    preset: String,
    config: Option<PathBuf>,
    device: String,
    tiles: usize,
    batches: Vec<usize>,
    prompt_len: usize,
    new_tokens: usize,
    repeats: usize,
    placements: Vec<Placement>,
    greedy: bool,
    /// Before the timings: products of the model's shapes on `--device` against the CPU's f32
    /// product of the same inputs, one JSON line (`matmul_check`), so that a matmul strategy
    /// chosen through `JUDGEFLOW_MATMUL*` is checked in the run that times it; then the vision
    /// encoder's attention by `JUDGEFLOW_ATTENTION`'s kernel, checked and timed
    /// (`attention_check`).
    matmul_check: bool,
    /// Before the timings: the norms (`judgeflow_model::norms`) and the attention softmax
    /// (`judgeflow_model::attention_softmax`) on `--device` against burn's composites in f32 on
    /// the CPU, outputs and gradients, one JSON line each (`norm_check`, `score_softmax_check`).
    norm_check: bool,
    /// Before the timings: the 11B run's largest products (a vision linear, the vision
    /// attention's QK^T and PV of one image, decoding's flattened linears at 16 and 64 rows)
    /// timed on `--device` with `JUDGEFLOW_MATMUL*`'s kernels, one JSON line (`matmul_bench`):
    /// milliseconds a product and TFLOP/s.
    matmul_bench: bool,
    train_batch: usize,
    train_seq: usize,
    train_steps: usize,
    /// After the timed training steps: this many forward passes (with the loss), then this many
    /// forward and backward passes, each set timed alone (`train.phases`), so that the step's
    /// time splits into forward, backward and the optimizer's share.
    train_phases: usize,
    /// Train LoRA adapters of this rank on the text decoder's projections (the base frozen)
    /// instead of every weight: the only training that fits the 11B shape on one GPU.
    /// `scripts/device_lora_reference.py step` is PEFT's side of the same step.
    lora_rank: Option<usize>,
    lora_alpha: f64,
    out: Option<PathBuf>,
    write_config: Option<PathBuf>,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    kernel_cache: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        preset: "tiny".into(),
        config: None,
        device: "cpu".into(),
        tiles: 1,
        batches: vec![16, 64],
        prompt_len: 48,
        new_tokens: 32,
        repeats: 3,
        placements: vec![Placement::Host, Placement::Device],
        greedy: false,
        matmul_check: false,
        norm_check: false,
        matmul_bench: false,
        train_batch: 64,
        train_seq: 37,
        train_steps: 20,
        train_phases: 0,
        lora_rank: None,
        lora_alpha: 32.0,
        out: None,
        write_config: None,
        kernel_cache: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--greedy" {
            a.greedy = true;
            continue;
        }
        if flag == "--matmul-check" {
            a.matmul_check = true;
            continue;
        }
        if flag == "--norm-check" {
            a.norm_check = true;
            continue;
        }
        if flag == "--matmul-bench" {
            a.matmul_bench = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--preset" => a.preset = value,
            "--config" => a.config = Some(value.into()),
            "--device" => a.device = value,
            "--tiles" => a.tiles = num(&value)?,
            "--batches" if value == "none" => a.batches = vec![],
            "--batches" => {
                a.batches = value.split(',').map(num).collect::<Result<_, _>>()?;
            }
            "--prompt-len" => a.prompt_len = num(&value)?,
            "--new-tokens" => a.new_tokens = num(&value)?,
            "--repeats" => a.repeats = num(&value)?.max(1),
            "--placements" => {
                a.placements = value
                    .split(',')
                    .map(|p| match p {
                        "host" => Ok(Placement::Host),
                        "device" => Ok(Placement::Device),
                        other => Err(format!("unknown placement {other}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--train-batch" => a.train_batch = num(&value)?,
            "--train-seq" => a.train_seq = num(&value)?,
            "--train-steps" => a.train_steps = num(&value)?,
            "--train-phases" => a.train_phases = num(&value)?,
            "--lora-rank" => a.lora_rank = Some(num(&value)?),
            "--lora-alpha" => {
                a.lora_alpha = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
            }
            "--out" => a.out = Some(value.into()),
            "--write-config" => a.write_config = Some(value.into()),
            "--kernel-cache" => a.kernel_cache = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let config = match &args.config {
        Some(path) => MllamaConfig::from_json_file(path).unwrap_or_else(|e| {
            eprintln!("{}: {e}", path.display());
            std::process::exit(2)
        }),
        None => match args.preset.as_str() {
            "micro" => MllamaConfig::micro(511, 511),
            "tiny" => MllamaConfig::tiny(511, 511),
            "llama_3_2_11b" => MllamaConfig::llama_3_2_11b(),
            other => {
                eprintln!("unknown preset {other}\n{USAGE}");
                std::process::exit(2)
            }
        },
    };
    if let Some(path) = &args.write_config {
        std::fs::write(path, config.to_json()).expect("writing --write-config");
    }
    #[cfg(feature = "cuda")]
    judgeflow_model::backend::exit_on_device_thread_panic();
    #[cfg(feature = "cuda")]
    if let Some(dir) = &args.kernel_cache {
        judgeflow_model::backend::use_kernel_cache(dir).expect("--kernel-cache");
    }
    if args.matmul_check {
        let check = match args.device.as_str() {
            #[cfg(feature = "cuda")]
            "cuda" => matmul_check::<judgeflow_model::backend::CudaBackend>(),
            _ => matmul_check::<judgeflow_model::backend::CpuBackend>(),
        };
        println!("{}", json!({ "matmul_check": check }));
        let check = match args.device.as_str() {
            #[cfg(feature = "cuda")]
            "cuda" => attention_check::<judgeflow_model::backend::CudaBackend>(true),
            // The CPU's timing at the 11B shape takes minutes and says nothing about the GPU.
            _ => attention_check::<judgeflow_model::backend::CpuBackend>(false),
        };
        println!("{}", json!({ "attention_check": check }));
    }
    if args.norm_check {
        let check = match args.device.as_str() {
            #[cfg(feature = "cuda")]
            "cuda" => norm_check::<judgeflow_model::backend::CudaTrainBackend>(),
            _ => norm_check::<judgeflow_model::backend::CpuTrainBackend>(),
        };
        println!("{}", json!({ "norm_check": check }));
        let check = match args.device.as_str() {
            #[cfg(feature = "cuda")]
            "cuda" => score_softmax_check::<judgeflow_model::backend::CudaTrainBackend>(),
            _ => score_softmax_check::<judgeflow_model::backend::CpuTrainBackend>(),
        };
        println!("{}", json!({ "score_softmax_check": check }));
    }
    if args.matmul_bench {
        let bench = match args.device.as_str() {
            #[cfg(feature = "cuda")]
            "cuda" => matmul_bench::<judgeflow_model::backend::CudaBackend>(),
            _ => matmul_bench::<judgeflow_model::backend::CpuBackend>(),
        };
        println!("{}", json!({ "matmul_bench": bench }));
        if args.batches.is_empty() && args.train_steps == 0 {
            // Only the products were asked for: no model.
            return;
        }
    }
    let result = match args.device.as_str() {
        "cpu" => run::<judgeflow_model::backend::CpuTrainBackend>(&args, &config, &|| None),
        #[cfg(feature = "cuda")]
        "cuda" => run::<judgeflow_model::backend::CudaTrainBackend>(&args, &config, &|| {
            judgeflow_model::backend::cuda_memory(&Default::default())
        }),
        other => {
            eprintln!("device {other} is not available in this build\n{USAGE}");
            std::process::exit(2)
        }
    };
    let line = serde_json::to_string(&result).expect("json");
    println!("{line}");
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{line}\n")).expect("writing --out");
    }
}

/// Products at the shapes decoding and prefill meet (`[batch, rows, k] x [batch or 1, k, n]`),
/// each on `B` and on the CPU in f32 from the same (device-rounded) inputs: the largest absolute
/// difference over the largest absolute reference value. bf16 rounding of the output alone
/// gives ~4e-3.
fn matmul_check<B: Backend>() -> Vec<Value> {
    let device = B::Device::default();
    // (lhs batch, rhs batch, rows, k, n, lhs transposed, rhs transposed): decode's flattened
    // linear, decode attention per head, a text prefill linear, a vision-encoder linear with a
    // ragged row count, and tiny's training step backward (x-gradient through the transposed
    // weight, weight-gradient through the transposed activations); then the few-row products
    // `JUDGEFLOW_MATMUL_SMALL_M=skinny` takes: a checkpoint's weight (a transposed view), 32 rows
    // over a long k, and ragged row and column counts in both layouts.
    let shapes = [
        (1, 1, 16, 4096, 1024, false, false),
        (1, 1, 16, 4096, 1024, false, true),
        (1, 1, 32, 14336, 4096, false, false),
        (1, 1, 5, 1280, 1001, false, false),
        (1, 1, 3, 1000, 1001, false, true),
        (512, 512, 1, 128, 96, false, false),
        (1, 1, 1024, 4096, 512, false, false),
        (1, 1, 3202, 1280, 1280, false, false),
        (1, 1, 2368, 1536, 512, false, true),
        (1, 1, 512, 2368, 1536, true, false),
    ];
    shapes
        .iter()
        .map(|&(lb, rb, m, k, n, lt, rt)| {
            let lhs = random_operand::<B>([lb, m, k], 1.0, lt, &device);
            let rhs = random_operand::<B>([rb, k, n], 0.05, rt, &device);
            let out = lhs.clone().matmul(rhs.clone());
            let (rel, finite) = compare(out, on_cpu(lhs).matmul(on_cpu(rhs)));
            eprintln!(
                "matmul check [{lb}, {m}, {k}]{} x [{rb}, {k}, {n}]{}: max rel err {rel:.2e}",
                if lt { "^T" } else { "" },
                if rt { "^T" } else { "" }
            );
            json!({
                "lhs": [lb, m, k], "rhs": [rb, k, n], "lhs_transposed": lt, "rhs_transposed": rt,
                "max_rel_err": rel, "finite": finite,
            })
        })
        .collect()
}

/// The 11B run's largest products on `B`, each timed over 10 launches after one untimed:
/// `(name, lhs [batch, m, k], rhs [batch, k, n], rhs as a transposed view)`.
fn matmul_bench<B: Backend>() -> Vec<Value> {
    let device = B::Device::default();
    let shapes = [
        (
            "vision fc1, 4 tiles",
            [1, 6432, 1280],
            [1, 1280, 5120],
            false,
        ),
        (
            "vision fc2, 4 tiles",
            [1, 6432, 5120],
            [1, 5120, 1280],
            false,
        ),
        (
            "vision QK^T, one image",
            [16, 6432, 80],
            [16, 80, 6432],
            true,
        ),
        (
            "vision PV, one image",
            [16, 6432, 6432],
            [16, 6432, 80],
            false,
        ),
        (
            "text mlp, 1024 rows",
            [1, 1024, 4096],
            [1, 4096, 14336],
            false,
        ),
        (
            "decode mlp, 16 rows",
            [1, 16, 4096],
            [1, 4096, 14336],
            false,
        ),
        (
            "decode mlp, 64 rows",
            [1, 64, 4096],
            [1, 4096, 14336],
            false,
        ),
        (
            "decode mlp, 16 rows, checkpoint",
            [1, 16, 4096],
            [1, 4096, 14336],
            true,
        ),
    ];
    shapes
        .iter()
        .map(|&(name, l, r, rt)| {
            let lhs = random_operand::<B>(l, 0.05, false, &device);
            let rhs = random_operand::<B>(r, 0.05, rt, &device);
            let _ = lhs.clone().matmul(rhs.clone());
            sync::<B>(&device);
            let reps = 10;
            let start = Instant::now();
            for _ in 0..reps {
                let _ = lhs.clone().matmul(rhs.clone());
            }
            sync::<B>(&device);
            let ms = start.elapsed().as_secs_f64() * 1e3 / reps as f64;
            let flop = 2.0 * l[0] as f64 * l[1] as f64 * l[2] as f64 * r[2] as f64;
            let tflops = flop / (ms * 1e-3) / 1e12;
            eprintln!("matmul bench {name}: {ms:.3} ms, {tflops:.1} TFLOP/s");
            json!({ "name": name, "lhs": l, "rhs": r, "rhs_transposed": rt, "ms": ms, "tflops": tflops })
        })
        .collect()
}

/// The text decoder's attention at one query position (`layers::attention_decoding`, which
/// `JUDGEFLOW_ATTENTION=softmax_rows` sends to the backend's kernel) on `B`, against the CPU's
/// f32 materialised attention of the same (device-rounded) inputs, at the 11B decode shapes
/// (batch 16, 32 query heads over 8 K/V heads of 128): self-attention over a 128-slot cache
/// whose unwritten slots are masked (a different length each row), and cross-attention over
/// 6,404 vision tokens with the padding tiles masked.
fn decoding_attention_check<B: Backend>(
    kernel: judgeflow_model::layers::AttentionKernel,
) -> Vec<Value> {
    use judgeflow_model::layers::attention_decoding;
    let device = B::Device::default();
    let (batch, heads, kv, d) = (16, 32, 8, 128);
    [("self", 128, false), ("cross", 4 * 1601, true)]
        .into_iter()
        .map(|(name, t, cross)| {
            let normal = |shape: [usize; 4]| {
                Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
            };
            let (q, k, v) = (
                normal([batch, heads, 1, d]),
                normal([batch, kv, t, d]),
                normal([batch, kv, t, d]),
            );
            let flags: Vec<bool> = (0..batch * t)
                .map(|i| {
                    let (row, j) = (i / t, i % t);
                    if cross { j >= 1601 } else { j >= 64 + 4 * row }
                })
                .collect();
            let mask =
                Tensor::<B, 4, Bool>::from_data(TensorData::new(flags, [batch, 1, 1, t]), &device);
            let out =
                attention_decoding(q.clone(), k.clone(), v.clone(), Some(mask.clone()), kernel);
            let (rel, finite) = compare(out, attention_on_cpu(q, k, v, mask));
            eprintln!("decoding attention check, {name} ({kernel:?}): max rel err {rel:.2e}");
            json!({ "name": name, "kv_len": t, "max_rel_err": rel, "finite": finite })
        })
        .collect()
}

/// A `[batch, rows, cols]` normal tensor on `B`, or (`transposed`) the transposed view of a
/// `[batch, cols, rows]` one: the layout a checkpoint's weights come in.
fn random_operand<B: Backend>(
    shape: [usize; 3],
    std: f64,
    transposed: bool,
    device: &B::Device,
) -> Tensor<B, 3> {
    let d = Distribution::Normal(0.0, std);
    if transposed {
        Tensor::<B, 3>::random([shape[0], shape[2], shape[1]], d, device).swap_dims(1, 2)
    } else {
        Tensor::<B, 3>::random(shape, d, device)
    }
}

/// `t`'s values in f32 on the CPU backend: the reference side of the checks.
fn on_cpu<B: Backend, const D: usize>(
    t: Tensor<B, D>,
) -> Tensor<judgeflow_model::backend::CpuBackend, D> {
    Tensor::from_data(t.into_data().convert::<f32>(), &Default::default())
}

/// [`max_rel_err`] of `out` (computed on `B`) against `reference`, and whether `out` is finite.
fn compare<B: Backend, const D: usize>(
    out: Tensor<B, D>,
    reference: Tensor<judgeflow_model::backend::CpuBackend, D>,
) -> (f32, bool) {
    let out = out
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32");
    let reference = reference.into_data().to_vec::<f32>().expect("f32");
    (
        max_rel_err(&out, &reference),
        out.iter().all(|v| v.is_finite()),
    )
}

/// The CPU's f32 materialised attention of the same (device-rounded) inputs.
fn attention_on_cpu<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> Tensor<judgeflow_model::backend::CpuBackend, 4> {
    let mask = Tensor::from_data(mask.into_data(), &Default::default());
    judgeflow_model::layers::attention(on_cpu(q), on_cpu(k), on_cpu(v), Some(mask))
}

/// The largest absolute difference over the largest absolute reference value.
fn max_rel_err(out: &[f32], reference: &[f32]) -> f32 {
    let scale = reference.iter().fold(0f32, |a, v| a.max(v.abs()));
    let diff = out
        .iter()
        .zip(reference)
        .fold(0f32, |a, (o, r)| a.max((o - r).abs()));
    diff / scale.max(f32::MIN_POSITIVE)
}

/// The vision encoder's attention (16 heads of 80, whole tiles of 1,608 padded patches, the
/// mask that hides padding from padding) computed by `JUDGEFLOW_ATTENTION`'s kernel on `B`:
/// checked against the CPU's f32 materialised attention of the same (device-rounded) inputs
/// on two images of two tiles (one with a padding tile), and, with `timed`, timed against the
/// materialised attention on `B` at the 11B run's shape (one real tile of four) for two images.
fn attention_check<B: Backend>(timed: bool) -> Value {
    use judgeflow_model::layers::{AttentionKernel, attention_every_row_sees};
    let device = B::Device::default();
    let kernel = AttentionKernel::from_env();
    let (heads, head_dim, padded, real) = (16, 80, 1608, 1601);
    // `real_tiles[i]` of image i's `tiles` are real; within a tile, patches past `real` pad.
    let inputs = |real_tiles: &[usize], tiles: usize| {
        let n = real_tiles.len();
        let l = tiles * padded;
        let d = Distribution::Normal(0.0, 1.0);
        let x = || Tensor::<B, 4>::random([n, l, heads, head_dim], d, &device).swap_dims(1, 2);
        let pad: Vec<bool> = real_tiles
            .iter()
            .flat_map(|&r| (0..l).map(move |i| i / padded >= r || i % padded >= real))
            .collect();
        let flags: Vec<bool> = (0..n)
            .flat_map(|b| {
                let pad = &pad;
                (0..l).flat_map(move |i| (0..l).map(move |j| pad[b * l + i] && pad[b * l + j]))
            })
            .collect();
        let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(flags, [n, 1, l, l]), &device);
        (x(), x(), x(), mask)
    };

    let (q, k, v, mask) = inputs(&[1, 2], 2);
    let out = attention_every_row_sees(q.clone(), k.clone(), v.clone(), Some(mask.clone()), kernel);
    let (rel, finite) = compare(out, attention_on_cpu(q, k, v, mask));

    let mut check = json!({
        "kernel": std::env::var(AttentionKernel::VAR).unwrap_or_default(),
        "route": format!("{kernel:?}"),
        "check_shape": [2, heads, 2 * padded, head_dim],
        "max_rel_err": rel,
        "finite": finite,
    });
    eprintln!("attention check ({kernel:?}): max rel err {rel:.2e}");
    check["decoding"] = json!(decoding_attention_check::<B>(kernel));
    if !timed {
        return check;
    }
    let (q, k, v, mask) = inputs(&[1, 1], 4);
    let time = |kernel: AttentionKernel| {
        let run = || {
            let out = attention_every_row_sees(
                q.clone(),
                k.clone(),
                v.clone(),
                Some(mask.clone()),
                kernel,
            );
            sync::<B>(&device);
            out
        };
        let first = Instant::now();
        drop(run());
        let first = first.elapsed().as_secs_f64();
        let start = Instant::now();
        for _ in 0..5 {
            drop(run());
        }
        (first, start.elapsed().as_secs_f64() / 5.0)
    };
    let (kernel_first, kernel_s) = time(kernel);
    let (materialized_first, materialized_s) = time(AttentionKernel::Materialized);
    eprintln!(
        "attention time, 2 images x 4 tiles: {:.1} ms against materialised {:.1} ms",
        kernel_s * 1e3,
        materialized_s * 1e3
    );
    check["time_shape"] = json!([2, heads, 4 * padded, head_dim]);
    check["kernel_s"] = json!(kernel_s);
    check["kernel_first_s"] = json!(kernel_first);
    check["materialized_s"] = json!(materialized_s);
    check["materialized_first_s"] = json!(materialized_first);
    check
}

/// LoRA on the text decoder's attention and MLP projections alone
/// ([`lora::LANGUAGE_MODEL_TARGETS`], PEFT's regular-expression form), as
/// `device_lora_reference.py`'s `language_targets` picks them in transformers and as
/// `pipelines/llama32_vision.toml` trains: the vision tower's `q_proj`s stay frozen on both
/// sides.
fn text_decoder_lora(rank: usize, alpha: f64) -> LoraConfig {
    LoraConfig {
        // `pipelines/llama32_vision.toml`'s dropout, and PEFT's side of the comparison.
        lora_dropout: 0.05,
        target_modules: lora::TargetModules::Regex(lora::LANGUAGE_MODEL_TARGETS.into()),
        ..LoraConfig::new(rank, alpha)
    }
}

/// The parameters of the adapters `model` carries.
fn adapter_params<B: Backend>(model: &mut MllamaForConditionalGeneration<B>) -> usize {
    let mut params = 0;
    lora::for_each_linear(model, |_, linear| {
        if let Some(adapter) = &linear.adapter {
            params += adapter.num_params();
        }
    });
    params
}

/// One row per sequence: BOS, `<|image|>`, then random text ids (never a special id).
fn prompt_rows(config: &MllamaConfig, batch: usize, len: usize, seed: u64) -> Vec<Vec<u32>> {
    let vocab = config.text_config.vocab_size as u64;
    let image = config.image_token_index as u32;
    let text = (vocab - 300).clamp(16, 100_000);
    (0..batch)
        .map(|r| {
            let mut row = vec![1u32, image];
            let mut x = seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            while row.len() < len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                row.push(2 + ((x >> 33) % text) as u32);
            }
            row
        })
        .collect()
}

/// Random pixels in `tiles` real tiles of one image per row.
fn image_inputs<B: Backend>(
    config: &MllamaConfig,
    batch: usize,
    tiles: usize,
    device: &B::Device,
) -> ImageInputs<B> {
    let v = &config.vision_config;
    let (max_tiles, px) = (v.max_num_tiles, v.image_size);
    let grid = v
        .supported_aspect_ratios
        .iter()
        .position(|r| r[0] * r[1] == tiles)
        .expect("a supported aspect ratio with that many tiles");
    let real = Tensor::<B, 6>::random(
        [batch, 1, tiles, 3, px, px],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let pixel_values = if tiles < max_tiles {
        Tensor::cat(
            vec![
                real,
                Tensor::zeros([batch, 1, max_tiles - tiles, 3, px, px], device),
            ],
            2,
        )
    } else {
        real
    };
    let mask: Vec<i64> = (0..batch)
        .flat_map(|_| (0..max_tiles).map(|t| i64::from(t < tiles)))
        .collect();
    ImageInputs {
        pixel_values,
        aspect_ratio_ids: Tensor::from_data(
            TensorData::new(vec![grid as i64 + 1; batch], [batch, 1]),
            device,
        ),
        aspect_ratio_mask: Tensor::from_data(TensorData::new(mask, [batch, 1, max_tiles]), device),
    }
}

fn sync<B: Backend>(device: &B::Device) {
    B::sync(device).expect("device sync");
}

/// `memory` reads the device's memory pool (`None` on the CPU): its figures are recorded after
/// each stage, so that a run that fits, or not, says what held the memory.
fn run<B: AutodiffBackend>(
    args: &Args,
    config: &MllamaConfig,
    memory: &dyn Fn() -> Option<PoolMemory>,
) -> Value {
    let device = B::Device::default();
    let mut stages = vec![];
    let mut stage = |name: &str| {
        if let Some(m) = memory() {
            let gib = |b: u64| (b as f64 / (1u64 << 30) as f64 * 100.0).round() / 100.0;
            eprintln!(
                "memory {name}: {} GiB in use, {} GiB reserved",
                gib(m.in_use),
                gib(m.reserved)
            );
            stages.push(json!({
                "stage": name,
                "in_use_gib": gib(m.in_use),
                "reserved_gib": gib(m.reserved),
            }));
        }
    };
    B::seed(&device, 0);
    let start = Instant::now();
    let model: MllamaForConditionalGeneration<B::InnerBackend> =
        config.init(&device).with_cross_attention_gates(0.5);
    sync::<B::InnerBackend>(&device);
    let init_s = start.elapsed().as_secs_f64();
    eprintln!("model initialised in {init_s:.1} s");
    stage("inference model initialised");
    let params = model.num_params();
    let sampling = if args.greedy {
        SamplingConfig::greedy()
    } else {
        SamplingConfig {
            temperature: 0.6,
            top_k: 50,
            top_p: 0.9,
        }
    };
    let mut decode_rows = vec![];
    for &batch in &args.batches {
        let prompts = prompt_rows(config, batch, args.prompt_len, 7);
        let images = image_inputs::<B::InnerBackend>(config, batch, args.tiles, &device);
        let seeds: Vec<u64> = (0..batch as u64).collect();
        for &placement in &args.placements {
            let gen_config = GenerateConfig {
                max_new_tokens: args.new_tokens,
                sampling: sampling.clone(),
                stop_tokens: vec![],
                pad_token: 0,
                placement,
            };
            let prefill_config = GenerateConfig {
                max_new_tokens: 1,
                ..gen_config.clone()
            };
            let call = |c: &GenerateConfig| {
                let t = Instant::now();
                let out = generate(&model, &prompts, Some(&images), &seeds, c);
                sync::<B::InnerBackend>(&device);
                (t.elapsed().as_secs_f64(), out)
            };
            // First calls compile kernels (prefill shape, then the decode step's).
            eprintln!(
                "batch {batch} {placement:?}: first prefill ({:.1} s in)",
                start.elapsed().as_secs_f64()
            );
            let (first_prefill_s, _) = call(&prefill_config);
            eprintln!("batch {batch} {placement:?}: first prefill took {first_prefill_s:.1} s");
            let (first_call_s, _) = call(&gen_config);
            eprintln!("batch {batch} {placement:?}: first call took {first_call_s:.1} s");
            let mut prefill_s = f64::INFINITY;
            let mut call_s = f64::INFINITY;
            let mut new_tokens = 0;
            for _ in 0..args.repeats {
                prefill_s = prefill_s.min(call(&prefill_config).0);
                let (s, out) = call(&gen_config);
                call_s = call_s.min(s);
                new_tokens = out.iter().map(|g| g.tokens.len()).sum::<usize>();
            }
            // Decode time: the whole call minus its prefill (which also draws the first token).
            let decode_s = (call_s - prefill_s).max(1e-9);
            let decoded = new_tokens.saturating_sub(batch);
            decode_rows.push(json!({
                "batch": batch,
                "placement": format!("{placement:?}").to_lowercase(),
                "prompt_len": args.prompt_len,
                "new_tokens": args.new_tokens,
                "first_prefill_s": first_prefill_s,
                "first_call_s": first_call_s,
                "prefill_s": prefill_s,
                "prefill_tokens_per_s": (batch * args.prompt_len) as f64 / prefill_s,
                "call_s": call_s,
                "new_tokens_per_s": new_tokens as f64 / call_s,
                "decode_tokens_per_s": decoded as f64 / decode_s,
                "decode_ms_per_step": decode_s * 1e3 / (args.new_tokens.max(2) - 1) as f64,
            }));
            eprintln!("{}", decode_rows.last().expect("pushed"));
        }
    }
    // Greedy tokens of the two placements on the same inputs: how often they agree (bf16
    // arithmetic over different shapes can flip a near-tie, after which a row diverges).
    let agreement = if args.placements.len() == 2 && !args.batches.is_empty() {
        let batch = args.batches[0];
        let prompts = prompt_rows(config, batch, args.prompt_len, 13);
        let images = image_inputs::<B::InnerBackend>(config, batch, args.tiles, &device);
        let seeds = vec![0; batch];
        let run = |placement| {
            let c = GenerateConfig {
                max_new_tokens: args.new_tokens,
                sampling: SamplingConfig::greedy(),
                stop_tokens: vec![],
                pad_token: 0,
                placement,
            };
            generate(&model, &prompts, Some(&images), &seeds, &c)
        };
        let (host, dev) = (run(Placement::Host), run(Placement::Device));
        let rows_equal = host.iter().zip(&dev).filter(|(a, b)| a == b).count();
        let first_token_equal = host
            .iter()
            .zip(&dev)
            .filter(|(a, b)| a.tokens.first() == b.tokens.first())
            .count();
        // The device placement's greedy tokens themselves, so that two builds (fused and
        // unfused) can be compared row by row (scripts/fusion_check.py).
        let device_tokens: Vec<&Vec<u32>> = dev.iter().map(|g| &g.tokens).collect();
        json!({"batch": batch, "rows": batch, "rows_identical": rows_equal,
               "first_token_identical": first_token_equal, "device_tokens": device_tokens})
    } else {
        Value::Null
    };
    stage("decoding done");
    // The training model is a second copy of the weights: the inference one goes first (at the
    // 11B shape, keeping it cost 21 GB of the LoRA step's memory).
    drop(model);
    let train_row = if args.train_steps > 0 {
        // Reseeded, so that builds with and without fusion train the same weights on the same
        // batches and their losses can be compared.
        B::seed(&device, 1);
        let mut model = config.init::<B>(&device).with_cross_attention_gates(0.5);
        let mut trainable = model.num_params();
        if let Some(rank) = args.lora_rank {
            let lora_config = text_decoder_lora(rank, args.lora_alpha);
            model = lora::attach(model, &lora_config, 0).expect("adapters attach");
            trainable = adapter_params(&mut model);
        }
        sync::<B>(&device);
        stage("training model initialised");
        let prompts = prompt_rows(config, args.train_batch, args.train_seq, 11);
        let masks: Vec<Vec<bool>> = prompts
            .iter()
            .map(|r| (0..r.len()).map(|j| j >= 4).collect())
            .collect();
        let batch = |_| {
            TrainBatch::from_sequences(
                config,
                &prompts,
                &masks,
                0,
                Some(image_inputs::<B>(
                    config,
                    args.train_batch,
                    args.tiles,
                    &device,
                )),
                &device,
            )
        };
        let warm: Vec<TrainBatch<B>> = (0..2).map(batch).collect();
        let timed: Vec<TrainBatch<B>> = (0..args.train_steps).map(batch).collect();
        let train_config = TrainConfig {
            learning_rate: 1e-4,
            warmup_steps: 0,
            read_every: 8,
            ..TrainConfig::default()
        };
        let t = Instant::now();
        let (model, warm_records) =
            train(model, &warm, &train_config, |_| ()).expect("warm-up steps");
        let first_s = t.elapsed().as_secs_f64();
        stage("two training steps done");
        let profile = sampling_profile::start();
        let t = Instant::now();
        let (model, records) = train(model, &timed, &train_config, |_| ()).expect("timed steps");
        let total_s = t.elapsed().as_secs_f64();
        sampling_profile::finish(profile);
        stage("timed training steps done");
        let phases = (args.train_phases > 0).then(|| {
            let loss = |b: &TrainBatch<B>| {
                let logits = model.forward(
                    b.input_ids.clone(),
                    b.images.as_ref(),
                    b.cross_attention_mask.clone(),
                );
                masked_nll(logits, b.input_ids.clone(), b.loss_mask.clone())
            };
            let n = args.train_phases;
            let t = Instant::now();
            for i in 0..n {
                let _ = loss(&timed[i % timed.len()]).inner();
            }
            sync::<B>(&device);
            let forward_ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
            let t = Instant::now();
            for i in 0..n {
                let _ = GradientsParams::from_grads(loss(&timed[i % timed.len()]).backward(), &model);
            }
            sync::<B>(&device);
            let forward_backward_ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
            stage("training phases done");
            json!({"passes": n, "forward_ms": forward_ms, "forward_backward_ms": forward_backward_ms})
        });
        json!({
            "batch": args.train_batch,
            "seq": args.train_seq,
            "lora_rank": args.lora_rank,
            "lora_alpha": args.lora_rank.map(|_| args.lora_alpha),
            "trainable_params": trainable,
            "steps": records.len(),
            "warm_up_two_steps_s": first_s,
            "step_ms": total_s * 1e3 / records.len() as f64,
            "padded_tokens_per_s": (args.train_batch * args.train_seq * records.len()) as f64 / total_s,
            "optimizer": std::env::var("JUDGEFLOW_OPTIMIZER").unwrap_or_else(|_| "default".into()),
            "phases": phases,
            "final_loss": records.last().map(|r| r.loss),
            "losses": warm_records.iter().chain(&records).map(|r| r.loss).collect::<Vec<_>>(),
        })
    } else {
        Value::Null
    };
    json!({
        "script": "speed",
        "backend": std::any::type_name::<B::InnerBackend>(),
        "preset": args.config.as_ref().map_or(args.preset.clone(), |p| p.display().to_string()),
        "params": params,
        "init_s": init_s,
        "tiles": args.tiles,
        "sampling": format!("{sampling:?}"),
        "decode": decode_rows,
        "greedy_host_vs_device": agreement,
        "train": train_row,
        "memory": stages,
    })
}

/// A sampling profile of the timed training steps, every thread, when the binary is built with
/// the `pprof` feature and `JUDGEFLOW_PPROF=FILE` is set: FILE gets one line a distinct stack,
/// `thread;outermost;...;innermost COUNT` (the collapsed form flame-graph tools read), sampled
/// at 999 Hz of CPU time. Why: the GPU machine has no perf, gdb or py-spy, and issue 10's
/// training step is bound by the host's threads (notes/gpu.md, session 20).
mod sampling_profile {
    #[cfg(feature = "pprof")]
    pub type Guard = Option<(pprof::ProfilerGuard<'static>, std::path::PathBuf)>;
    /// Without the `pprof` feature: nothing to hold.
    #[cfg(not(feature = "pprof"))]
    pub struct Guard;

    #[cfg(feature = "pprof")]
    pub fn start() -> Guard {
        let path = std::path::PathBuf::from(std::env::var_os("JUDGEFLOW_PPROF")?);
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(999)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .expect("the sampling profiler starts");
        Some((guard, path))
    }

    #[cfg(not(feature = "pprof"))]
    pub fn start() -> Guard {
        if std::env::var_os("JUDGEFLOW_PPROF").is_some() {
            eprintln!("JUDGEFLOW_PPROF is set, but this build has no `pprof` feature: no profile");
        }
        Guard
    }

    #[cfg(feature = "pprof")]
    pub fn finish(guard: Guard) {
        use std::io::Write;
        let Some((guard, path)) = guard else { return };
        let report = guard.report().build().expect("the profile's report");
        let mut lines: Vec<(String, isize)> = report
            .data
            .iter()
            .map(|(frames, count)| {
                let mut stack = vec![frames.thread_name_or_id()];
                for frame in frames.frames.iter().rev() {
                    for symbol in frame.iter().rev() {
                        stack.push(symbol.name().replace(';', ":"));
                    }
                }
                (stack.join(";"), *count)
            })
            .collect();
        lines.sort();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("profile file"));
        for (stack, count) in &lines {
            writeln!(out, "{stack} {count}").expect("profile written");
        }
        let samples: isize = lines.iter().map(|(_, c)| c).sum();
        eprintln!(
            "sampling profile: {samples} samples, {} stacks -> {}",
            lines.len(),
            path.display()
        );
    }

    #[cfg(not(feature = "pprof"))]
    pub fn finish(_: Guard) {}
}

/// The norms (`judgeflow_model::norms`: on CUDA judgeflow's kernels, one autodiff node) on `A`
/// against burn's composites in f32 on the CPU, from the same (device-rounded) inputs: the
/// output and the gradients of the input, scale and shift of `sum(y * w)`, each as
/// [`max_rel_err`]; beside them burn's composite on `A` itself (what `JUDGEFLOW_NORM=burn`
/// runs). Shapes: `tiny`'s text rows, its vision rows, and a head-split view (not contiguous:
/// the cross-attention's query norm).
fn norm_check<A: AutodiffBackend>() -> Vec<Value> {
    use burn::module::Param;
    use burn::nn::{LayerNormConfig, RmsNormConfig};
    use judgeflow_model::norms::{layer_norm, rms_norm};
    type C = burn::backend::Autodiff<judgeflow_model::backend::CpuBackend>;
    let device = A::Device::default();
    let cpu = Default::default();
    let cases: [(&str, bool, [usize; 4], bool); 3] = [
        ("rms text rows", false, [64, 1, 37, 512], false),
        ("layer vision rows", true, [64, 1, 65, 256], false),
        (
            "rms query heads (a permuted view)",
            false,
            [64, 37, 8, 64],
            true,
        ),
    ];
    let mut rows = Vec::new();
    for (name, centered, shape, permuted) in cases {
        let d = shape[3];
        let x0 = Tensor::<A, 4>::random(shape, Distribution::Normal(0.3, 2.0), &device);
        let x0 = if permuted { x0.swap_dims(1, 2) } else { x0 };
        let w = Tensor::<A, 4>::random(x0.dims(), Distribution::Normal(0.0, 1.0), &device);
        let gamma = Tensor::<A, 1>::random([d], Distribution::Normal(1.0, 0.5), &device);
        let beta = Tensor::<A, 1>::random([d], Distribution::Normal(0.0, 0.5), &device);
        let to_cpu =
            |t: Tensor<A, 4>| Tensor::<C, 4>::from_data(t.into_data().convert::<f32>(), &cpu);
        let to_cpu1 =
            |t: Tensor<A, 1>| Tensor::<C, 1>::from_data(t.into_data().convert::<f32>(), &cpu);
        let run = |ours: bool| -> (
            Tensor<A, 4>,
            Tensor<A, 4>,
            Tensor<A, 1>,
            Option<Tensor<A, 1>>,
        ) {
            let x = x0.clone().require_grad();
            let (y, g, b) = if centered {
                let mut n = LayerNormConfig::new(d).init::<A>(&device);
                n.gamma = Param::from_tensor(gamma.clone());
                n.beta = Some(Param::from_tensor(beta.clone()));
                let y = if ours {
                    layer_norm(&n, 1e-5, x.clone())
                } else {
                    n.forward(x.clone())
                };
                (y, n.gamma.val(), n.beta.as_ref().map(|b| b.val()))
            } else {
                let mut n = RmsNormConfig::new(d).init::<A>(&device);
                n.gamma = Param::from_tensor(gamma.clone());
                let y = if ours {
                    rms_norm(&n, x.clone())
                } else {
                    n.forward(x.clone())
                };
                (y, n.gamma.val(), None)
            };
            let gr = (y.clone() * w.clone()).sum().backward();
            let dx = Tensor::from_inner(x.grad(&gr).expect("dx"));
            let dg = Tensor::from_inner(g.grad(&gr).expect("dgamma"));
            let db = b.map(|b| Tensor::from_inner(b.grad(&gr).expect("dbeta")));
            (y.detach(), dx, dg, db)
        };
        // The CPU's f32 reference.
        let (ry, rdx, rdg, rdb) = {
            let x = to_cpu(x0.clone()).require_grad();
            let wc = to_cpu(w.clone());
            let (y, g, b) = if centered {
                let mut n = LayerNormConfig::new(d).init::<C>(&cpu);
                n.gamma = Param::from_tensor(to_cpu1(gamma.clone()));
                n.beta = Some(Param::from_tensor(to_cpu1(beta.clone())));
                let y = n.forward(x.clone());
                (y, n.gamma.val(), n.beta.as_ref().map(|b| b.val()))
            } else {
                let mut n = RmsNormConfig::new(d).init::<C>(&cpu);
                n.gamma = Param::from_tensor(to_cpu1(gamma.clone()));
                (n.forward(x.clone()), n.gamma.val(), None)
            };
            let gr = (y.clone() * wc).sum().backward();
            (
                y.inner(),
                x.grad(&gr).expect("dx"),
                g.grad(&gr).expect("dgamma"),
                b.map(|b| b.grad(&gr).expect("dbeta")),
            )
        };
        let mut row = json!({ "case": name, "shape": shape, "permuted": permuted });
        for (label, ours) in [("kernels", true), ("burn", false)] {
            let (y, dx, dg, db) = run(ours);
            let e = |a: Vec<f32>, b: Vec<f32>| max_rel_err(&a, &b);
            let v4 = |t: Tensor<A, 4>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
            let v1 = |t: Tensor<A, 1>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
            let c4 = |t: Tensor<judgeflow_model::backend::CpuBackend, 4>| {
                t.into_data().to_vec::<f32>().unwrap()
            };
            let c1 = |t: Tensor<judgeflow_model::backend::CpuBackend, 1>| {
                t.into_data().to_vec::<f32>().unwrap()
            };
            let ey = e(v4(y), c4(ry.clone()));
            let edx = e(v4(dx), c4(rdx.clone()));
            let edg = e(v1(dg), c1(rdg.clone()));
            let edb = db.map(|db| e(v1(db), c1(rdb.clone().expect("reference dbeta"))));
            eprintln!(
                "norm check {name} {label}: y {ey:.2e}, dx {edx:.2e}, dgamma {edg:.2e}, dbeta {}",
                edb.map_or("-".into(), |v| format!("{v:.2e}"))
            );
            row[label] = json!({ "y": ey, "dx": edx, "dgamma": edg, "dbeta": edb });
        }
        rows.push(row);
    }
    rows
}

/// The attention softmax (`judgeflow_model::attention_softmax`: on CUDA one node, judgeflow's
/// kernels) on `A` against the CPU's f32 composite from the same (device-rounded) scores: the
/// probabilities and the scores' gradient of `sum(p * w)`, each as [`max_rel_err`]. Shapes:
/// `tiny`'s text self-attention with a causal mask shared by the batch, and a vision-like one
/// with a per-row padding mask that forbids every key of some queries.
fn score_softmax_check<A: AutodiffBackend>() -> Vec<Value> {
    use judgeflow_model::attention_softmax::{fused, score_softmax};
    use judgeflow_model::layers::MASK_VALUE;
    type C = burn::backend::Autodiff<judgeflow_model::backend::CpuBackend>;
    if !fused::<A>() {
        eprintln!("score softmax check: no kernels on this backend");
        return Vec::new();
    }
    let device = A::Device::default();
    let cpu = Default::default();
    let cases: [(&str, [usize; 4], usize); 2] = [
        ("text causal", [64, 8, 37, 37], 1),
        ("vision padded", [16, 8, 65, 65], 16),
    ];
    let mut rows = Vec::new();
    for (name, [b, h, s, t], mb) in cases {
        let flags: Vec<bool> = (0..mb * s * t)
            .map(|i| {
                let (bi, q, k) = (i / (s * t), (i / t) % s, i % t);
                if mb == 1 {
                    k > q
                } else {
                    k >= t - bi || (bi == 3 && q >= s - 5)
                }
            })
            .collect();
        let mask_data = burn::tensor::TensorData::new(flags, [mb, 1, s, t]);
        let scores = Tensor::<A, 4>::random([b, h, s, t], Distribution::Normal(0.0, 3.0), &device);
        let w = Tensor::<A, 4>::random([b, h, s, t], Distribution::Normal(0.0, 1.0), &device);
        let scale = 0.125;
        let x = scores.clone().require_grad();
        let probs = score_softmax(
            x.clone(),
            Some(Tensor::from_data(mask_data.clone(), &device)),
            scale,
        );
        let grads = (probs.clone() * w.clone()).sum().backward();
        let dx = x.grad(&grads).expect("dscores");
        let xc =
            Tensor::<C, 4>::from_data(scores.into_data().convert::<f32>(), &cpu).require_grad();
        let wc = Tensor::<C, 4>::from_data(w.into_data().convert::<f32>(), &cpu);
        let mc = Tensor::<C, 4, Bool>::from_data(mask_data, &cpu).expand([b, h, s, t]);
        let pc =
            burn::tensor::activation::softmax((xc.clone() * scale).mask_fill(mc, MASK_VALUE), 3);
        let gc = (pc.clone() * wc).sum().backward();
        let dxc = xc.grad(&gc).expect("reference dscores");
        let v = |d: burn::tensor::TensorData| d.convert::<f32>().to_vec::<f32>().unwrap();
        let ep = max_rel_err(&v(probs.into_data()), &v(pc.into_data()));
        let ed = max_rel_err(&v(dx.into_data()), &v(dxc.into_data()));
        eprintln!("score softmax check {name}: probs {ep:.2e}, dscores {ed:.2e}");
        rows.push(json!({ "case": name, "shape": [b, h, s, t], "probs": ep, "dscores": ed }));
    }
    rows
}
