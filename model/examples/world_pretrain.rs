//! Pretrains a judge preset on the synthetic world and measures it: training tokens/s and loss
//! curve, greedy accuracy on closed-ended world questions against a majority-class baseline,
//! generation tokens/s, and where a training step's time goes.
//!
//! ```text
//! cargo run --release -p judgeflow-model --example world_pretrain -- \
//!     --preset micro --scenes 300 --steps 150 --out /tmp/world_micro
//! cargo run --release -p judgeflow-model --features cuda --example world_pretrain -- \
//!     --preset tiny --device cuda --scenes 4000 --steps 1500 --batch 64 --out /tmp/world_tiny
//! ```
//!
//! Phases, all in one process on one backend:
//!
//! 1. data: training scenes (seeds `seed << 32 | i`) and held-out scenes (the same with bit 63
//!    set, so disjoint); `corpus_for` rows become chat SFT examples; the world tokenizer is
//!    trained on the training corpus only; images are rendered and preprocessed (64 px, 1 tile);
//! 2. warm-up: `train()` on a throw-away copy of the model, one step per distinct padded batch
//!    shape, so that kernel compilation and autotuning stay out of the throughput numbers;
//! 3. training: one `train()` call over `--steps` batches (epochs reshuffled), timed as a whole;
//! 4. profile: a few hand-rolled steps on a copy of the trained model, timing forward (loss read
//!    back) and backward + AdamW separately, with device syncs in between;
//! 5. matmul: a standalone `[batch*seq, hidden] x [hidden, intermediate]` product on the same
//!    backend, whose TFLOP/s turns the step's FLOP estimate into a "matmul share" of its time;
//! 6. evaluation: batched greedy generation on the held-out closed questions, timing prefill and
//!    each decode step through `decode`'s per-step callback; then one generation throughput run
//!    with no stop tokens.
//!
//! `--out DIR` writes `loss_curve.csv` (`step,loss,lr,tokens,grad_norm,seconds`, `seconds` being
//! the wall time at the end of each step) and `summary.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use judgeflow_model::chat::{prompt_ids, sft_example};
use judgeflow_model::config::MllamaConfig;
use judgeflow_model::generate::{GenerateConfig, Placement, SamplingConfig, decode};
use judgeflow_model::model::{ImageInputs, MllamaForConditionalGeneration};
use judgeflow_model::preprocess::{
    PreprocessConfig, PreprocessedImage, preprocess_bytes, stack_images,
};
use judgeflow_model::tokenizer::{DEFAULT_WORLD_VOCAB_SIZE, JudgeTokenizer, train_world_tokenizer};
use judgeflow_model::train::{LossRecord, TrainBatch, TrainConfig, masked_nll, train};
use judgeflow_world::{TaskType, WorldConfig, corpus_for, draw_scene, prompts_for, render_png};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const USAGE: &str = "usage: world_pretrain [--preset micro|tiny] [--device cpu|cuda] [--scenes N] \
[--eval-scenes N] [--steps N] [--batch N] [--lr X] [--warmup N] [--max-new-tokens N] \
[--eval-batch N] [--bench-new-tokens N] [--profile-steps N] [--pad-multiple N] [--length-group N] \
[--gate-init X] [--seed N] [--out DIR]";

/// Model size.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Preset {
    Micro,
    Tiny,
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeviceKind {
    Cpu,
    Cuda,
}

/// Command-line settings.
#[derive(Debug, Clone)]
struct Args {
    preset: Preset,
    device: DeviceKind,
    scenes: usize,
    eval_scenes: usize,
    steps: usize,
    batch: usize,
    lr: f64,
    warmup: usize,
    max_new_tokens: usize,
    eval_batch: usize,
    bench_new_tokens: usize,
    profile_steps: usize,
    pad_multiple: usize,
    length_group: usize,
    gate_init: f32,
    seed: u64,
    out: Option<PathBuf>,
}

/// Parses `--key value` pairs; preset-dependent defaults (batch, learning rate) apply to keys
/// not given.
fn parse_args() -> Result<Args, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|a| a == "--help" || a == "-h") {
        return Err(USAGE.to_string());
    }
    if !raw.len().is_multiple_of(2) {
        return Err(format!("every option takes a value\n{USAGE}"));
    }
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for pair in raw.chunks(2) {
        let key = pair[0]
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --key, got {:?}\n{USAGE}", pair[0]))?;
        given.insert(key, &pair[1]);
    }
    fn num<T: std::str::FromStr>(
        given: &mut BTreeMap<&str, &str>,
        key: &str,
        default: T,
    ) -> Result<T, String> {
        given.remove(key).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}"))
        })
    }
    let preset = match given.remove("preset").unwrap_or("micro") {
        "micro" => Preset::Micro,
        "tiny" => Preset::Tiny,
        other => return Err(format!("--preset: unknown {other:?} (micro|tiny)")),
    };
    let device = match given.remove("device").unwrap_or("cpu") {
        "cpu" => DeviceKind::Cpu,
        "cuda" => DeviceKind::Cuda,
        other => return Err(format!("--device: unknown {other:?} (cpu|cuda)")),
    };
    let (default_batch, default_lr) = match preset {
        Preset::Micro => (16, 3e-3),
        Preset::Tiny => (64, 1e-3),
    };
    let steps = num(&mut given, "steps", 600)?;
    let args = Args {
        preset,
        device,
        scenes: num(&mut given, "scenes", 2000)?,
        eval_scenes: num(&mut given, "eval-scenes", 200)?,
        steps,
        batch: num(&mut given, "batch", default_batch)?,
        lr: num(&mut given, "lr", default_lr)?,
        warmup: num(&mut given, "warmup", (steps / 10).min(100))?,
        max_new_tokens: num(&mut given, "max-new-tokens", 8)?,
        eval_batch: num(&mut given, "eval-batch", 64)?,
        bench_new_tokens: num(&mut given, "bench-new-tokens", 32)?,
        profile_steps: num(&mut given, "profile-steps", 10)?,
        pad_multiple: num(&mut given, "pad-multiple", 16)?,
        length_group: num(&mut given, "length-group", 32)?,
        gate_init: num(&mut given, "gate-init", 0.5)?,
        seed: num(&mut given, "seed", 0)?,
        out: given.remove("out").map(PathBuf::from),
    };
    if let Some(key) = given.keys().next() {
        return Err(format!("unknown option --{key}\n{USAGE}"));
    }
    if args.scenes == 0 || args.eval_scenes == 0 || args.steps == 0 || args.batch == 0 {
        return Err("--scenes, --eval-scenes, --steps and --batch must be positive".into());
    }
    if args.eval_batch == 0 || args.pad_multiple == 0 || args.length_group == 0 {
        return Err("--eval-batch, --pad-multiple and --length-group must be positive".into());
    }
    if args.seed >= 1 << 31 {
        return Err("--seed must be below 2^31".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let summary = match args.device {
        DeviceKind::Cpu => {
            run::<judgeflow_model::backend::CpuTrainBackend>(&args, Default::default())
        }
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            run::<judgeflow_model::backend::CudaTrainBackend>(&args, Default::default())
        }
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => {
            eprintln!("--device cuda needs the binary built with --features cuda");
            std::process::exit(2);
        }
    };
    if let Some(dir) = &args.out {
        let path = dir.join("summary.json");
        let text = serde_json::to_string_pretty(&summary).expect("summary serialises");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("wrote {} and loss_curve.csv", path.display());
    }
}

/// One question about one scene, with the index of the scene's image.
struct Sample {
    task: TaskType,
    question: String,
    answer: String,
    image: usize,
}

/// Scenes drawn from `seeds`: their questions (all of `corpus_for` for training, the closed ones
/// of `prompts_for` for evaluation) and their preprocessed images.
fn world_split(
    seeds: impl Iterator<Item = u64>,
    training: bool,
) -> (Vec<Sample>, Vec<PreprocessedImage>) {
    let world = WorldConfig::default();
    let tiles = PreprocessConfig::new(world.image_size as usize, 1);
    let mut samples = Vec::new();
    let mut images = Vec::new();
    for seed in seeds {
        let scene = draw_scene(&world, seed);
        let mut rng = judgeflow_world::rng(seed ^ 0x5eed_c0de);
        let rows: Vec<(TaskType, String, String)> = if training {
            corpus_for(&scene, &mut rng)
                .into_iter()
                .map(|r| (r.task, r.question, r.answer))
                .collect()
        } else {
            prompts_for(&scene, &mut rng)
                .into_iter()
                .filter(|p| !p.open)
                .map(|p| (p.task, p.question, p.answer))
                .collect()
        };
        let image = images.len();
        images.push(preprocess_bytes(&render_png(&scene), &tiles).expect("world PNGs decode"));
        samples.extend(rows.into_iter().map(|(task, question, answer)| Sample {
            task,
            question,
            answer,
            image,
        }));
    }
    (samples, images)
}

/// Token counts of one training batch.
#[derive(Debug, Clone, Copy, Default)]
struct BatchTokens {
    /// Tokens of real (unpadded) sequence content.
    real: usize,
    /// Target tokens (response and `<|eot_id|>`).
    response: usize,
    /// `batch * padded length`: what the device computes on.
    padded: usize,
}

/// A training batch on the device plus its token counts and padded length.
struct Batch<B: Backend> {
    batch: TrainBatch<B>,
    tokens: BatchTokens,
    seq: usize,
}

/// Stacks the images of `rows` (indices into `images`) into model inputs on `device`.
fn image_inputs<B: Backend>(
    rows: &[usize],
    images: &[PreprocessedImage],
    device: &B::Device,
) -> ImageInputs<B> {
    let picked: Vec<PreprocessedImage> = rows.iter().map(|&i| images[i].clone()).collect();
    let stacked = stack_images(&picked);
    ImageInputs::from_host(
        stacked.pixel_values,
        stacked.pixel_shape,
        stacked.aspect_ratio_ids,
        stacked.aspect_ratio_mask,
        device,
    )
}

/// `steps` batches of `batch` SFT examples, drawn epoch by epoch in a fresh random order and
/// grouped by length (`--length-group`), each right-padded to a multiple of `pad_multiple` tokens
/// so that only a few shapes occur (one kernel compilation / autotune per shape on GPU backends).
fn training_batches<B: Backend>(
    config: &MllamaConfig,
    tokenizer: &JudgeTokenizer,
    samples: &[Sample],
    images: &[PreprocessedImage],
    args: &Args,
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> Vec<Batch<B>> {
    let examples: Vec<_> = samples
        .iter()
        .map(|s| sft_example(tokenizer, &s.question, &s.answer).expect("world text encodes"))
        .collect();
    let mut order: Vec<usize> = Vec::new();
    while order.len() < args.steps * args.batch {
        let mut epoch: Vec<usize> = (0..examples.len()).collect();
        epoch.shuffle(rng);
        order.extend(epoch);
    }
    // Length grouping: within each window of `length_group` batches, rows are sorted by length
    // before being cut into batches, and the window's batches are then shuffled.
    let mut batch_rows: Vec<&[usize]> = Vec::new();
    for window in order.chunks_mut(args.batch * args.length_group) {
        window.sort_by_key(|&r| examples[r].input_ids.len());
        let start = batch_rows.len();
        batch_rows.extend(window.chunks(args.batch));
        batch_rows[start..].shuffle(rng);
    }
    let pad = tokenizer.pad_id();
    batch_rows
        .into_iter()
        .take(args.steps)
        .map(|rows| {
            let longest = rows.iter().map(|&r| examples[r].input_ids.len()).max();
            let seq = longest.unwrap_or(1).div_ceil(args.pad_multiple) * args.pad_multiple;
            let mut tokens = BatchTokens {
                padded: rows.len() * seq,
                ..BatchTokens::default()
            };
            let (mut ids, mut masks) = (Vec::new(), Vec::new());
            for &r in rows {
                let e = &examples[r];
                tokens.real += e.input_ids.len();
                tokens.response += e.num_targets();
                let mut row = e.input_ids.clone();
                let mut mask = e.loss_mask.clone();
                row.resize(seq, pad);
                mask.resize(seq, false);
                ids.push(row);
                masks.push(mask);
            }
            let image_rows: Vec<usize> = rows.iter().map(|&r| samples[r].image).collect();
            let images = image_inputs(&image_rows, images, device);
            let batch = TrainBatch::from_sequences(config, &ids, &masks, pad, Some(images), device);
            Batch { batch, tokens, seq }
        })
        .collect()
}

/// Blocks until the device has finished all queued work.
fn sync<B: Backend>(device: &B::Device) {
    B::sync(device).expect("device sync");
}

/// Mean forward and backward+optimizer seconds over `steps` hand-rolled training steps (after
/// one untimed step that allocates the optimizer state) on a copy of `model`, with batches
/// spread evenly over the schedule so that their shapes are representative.
fn profile_steps<B: AutodiffBackend>(
    model: &MllamaForConditionalGeneration<B>,
    batches: &[Batch<B>],
    steps: usize,
    lr: f64,
    device: &B::Device,
) -> (f64, f64) {
    let mut model = model.clone();
    let mut optimizer = AdamWConfig::new().init::<B, MllamaForConditionalGeneration<B>>();
    let (mut forward, mut backward) = (0.0, 0.0);
    let stride = (batches.len() / (steps + 1)).max(1);
    for (i, b) in batches
        .iter()
        .step_by(stride)
        .cycle()
        .take(steps + 1)
        .enumerate()
    {
        sync::<B>(device);
        let t0 = Instant::now();
        let logits = model.forward(
            b.batch.input_ids.clone(),
            b.batch.images.as_ref(),
            b.batch.cross_attention_mask.clone(),
        );
        let loss = masked_nll(logits, b.batch.input_ids.clone(), b.batch.loss_mask.clone())
            / b.tokens.response.max(1) as f64;
        loss.clone().into_data();
        sync::<B>(device);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
        sync::<B>(device);
        if i > 0 {
            forward += (t1 - t0).as_secs_f64();
            backward += t1.elapsed().as_secs_f64();
        }
    }
    (forward / steps as f64, backward / steps as f64)
}

/// Achieved TFLOP/s of `[m, k] x [k, n]` on the inference backend, timed over enough repetitions
/// to take about half a second.
fn matmul_tflops<B: Backend>(m: usize, k: usize, n: usize, device: &B::Device) -> f64 {
    let a = Tensor::<B, 2>::random([m, k], Distribution::Default, device);
    let b = Tensor::<B, 2>::random([k, n], Distribution::Default, device);
    let time = |reps: usize| {
        sync::<B>(device);
        let start = Instant::now();
        for _ in 0..reps {
            let _ = a.clone().matmul(b.clone());
        }
        sync::<B>(device);
        start.elapsed().as_secs_f64()
    };
    time(3);
    let once = time(1).max(1e-6);
    let reps = ((0.5 / once) as usize).clamp(3, 10_000);
    2.0 * (m * k * n) as f64 * reps as f64 / time(reps) / 1e12
}

/// Lowercase, trimmed, without trailing punctuation: how answers are compared.
fn normalise(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_string()
}

/// Timings of batched generation runs.
#[derive(Debug, Default)]
struct GenTiming {
    /// Wall time of the `decode` calls.
    seconds: f64,
    /// From the call to the first logits on the host: image encoding and prompt prefill.
    prefill_seconds: f64,
    /// Prompt tokens (left padding included) prefilled.
    prefill_tokens: usize,
    /// From the first to the last logits on the host.
    decode_seconds: f64,
    /// Single-token decode forward passes (each for the whole batch).
    decode_steps: usize,
    /// Row-tokens those decode steps produced (`batch * decode_steps`).
    decode_row_tokens: usize,
    /// Tokens returned plus stop tokens.
    generated_tokens: usize,
}

/// Greedy generation for `prompts` with their images, recording prefill and decode timings.
fn timed_generate<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    prompts: &[Vec<u32>],
    images: &ImageInputs<B>,
    config: &GenerateConfig,
    timing: &mut GenTiming,
) -> Vec<Vec<u32>> {
    let start = Instant::now();
    let mut stamps: Vec<Instant> = Vec::new();
    let seeds = vec![0; prompts.len()];
    let out = decode(model, prompts, Some(images), &seeds, config, |_| {
        stamps.push(Instant::now())
    });
    timing.seconds += start.elapsed().as_secs_f64();
    if let (Some(first), Some(last)) = (stamps.first(), stamps.last()) {
        timing.prefill_seconds += (*first - start).as_secs_f64();
        timing.decode_seconds += (*last - *first).as_secs_f64();
    }
    let steps = stamps.len().saturating_sub(1);
    timing.decode_steps += steps;
    timing.decode_row_tokens += steps * prompts.len();
    timing.prefill_tokens += prompts.len() * prompts.iter().map(Vec::len).max().unwrap_or(0);
    timing.generated_tokens += out
        .iter()
        .map(|g| {
            g.tokens.len()
                + usize::from(g.finish != judgeflow_model::generate::FinishReason::Length)
        })
        .sum::<usize>();
    out.into_iter().map(|g| g.tokens).collect()
}

/// Per-task evaluation counts.
#[derive(Debug, Default)]
struct TaskScore {
    n: usize,
    correct: usize,
    gold: BTreeMap<String, usize>,
}

/// Runs the whole measurement on backend `B` and returns the summary (also printed as a table).
fn run<B: AutodiffBackend>(args: &Args, device: B::Device) -> Value {
    let t_data = Instant::now();
    let base = args.seed << 32;
    let (train_samples, train_images) =
        world_split((0..args.scenes as u64).map(|i| base | i), true);
    let (eval_samples, eval_images) = world_split(
        (0..args.eval_scenes as u64).map(|i| 1 << 63 | base | i),
        false,
    );
    let corpus = train_samples
        .iter()
        .flat_map(|s| [s.question.as_str(), s.answer.as_str()]);
    let tokenizer =
        train_world_tokenizer(corpus, DEFAULT_WORLD_VOCAB_SIZE).expect("tokenizer trains");
    let image_id = tokenizer.special().image as usize;
    let config = match args.preset {
        Preset::Micro => MllamaConfig::micro(tokenizer.model_vocab_size(), image_id),
        Preset::Tiny => MllamaConfig::tiny(tokenizer.model_vocab_size(), image_id),
    };
    if let Some(dir) = &args.out {
        // The HF config of the exact model trained here, so the PyTorch baseline
        // (scripts/hf_mllama_timing.py --config) times the same shapes.
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        std::fs::write(dir.join("config.json"), config.to_json()).expect("config.json written");
    }
    B::seed(&device, args.seed);
    let model = config
        .init(&device)
        .with_cross_attention_gates(args.gate_init);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let batches = training_batches(
        &config,
        &tokenizer,
        &train_samples,
        &train_images,
        args,
        &mut rng,
        &device,
    );
    let data_seconds = t_data.elapsed().as_secs_f64();
    let params = model.num_params();
    let embed_params = model.language_model.model.embed_tokens.num_params();
    let text_params = model.language_model.num_params();
    let vision_params = model.vision_model.num_params() + model.multi_modal_projector.num_params();
    println!(
        "data: {} training rows from {} scenes, {} held-out closed questions from {} scenes, \
         vocab {}, {params} parameters, {:.1}s",
        train_samples.len(),
        args.scenes,
        eval_samples.len(),
        args.eval_scenes,
        tokenizer.vocab_size(),
        data_seconds
    );

    let train_config = TrainConfig {
        learning_rate: args.lr,
        min_lr_ratio: 0.1,
        warmup_steps: args.warmup,
        weight_decay: 0.01,
        ..TrainConfig::default()
    };

    // Warm-up: one step per distinct shape, on a copy that is thrown away.
    let mut shapes: Vec<usize> = batches.iter().map(|b| b.seq).collect();
    shapes.sort_unstable();
    shapes.dedup();
    let warm: Vec<TrainBatch<B>> = shapes
        .iter()
        .map(|&s| {
            batches
                .iter()
                .find(|b| b.seq == s)
                .expect("shape occurs")
                .batch
                .clone()
        })
        .collect();
    let t_warm = Instant::now();
    // One shape at a time, so a slow first compile/autotune shows up with its shape.
    for (batch, seq) in warm.iter().zip(&shapes) {
        let t = Instant::now();
        train(
            model.clone(),
            std::slice::from_ref(batch),
            &train_config,
            |_| (),
        )
        .expect("no checkpointing");
        sync::<B>(&device);
        println!(
            "  warm-up shape seq {seq}: {:.2}s",
            t.elapsed().as_secs_f64()
        );
    }
    let warmup_seconds = t_warm.elapsed().as_secs_f64();
    println!(
        "warm-up: {} shapes {shapes:?} in {warmup_seconds:.2}s",
        shapes.len()
    );

    let schedule: Vec<TrainBatch<B>> = batches.iter().map(|b| b.batch.clone()).collect();
    let t_train = Instant::now();
    // Each step reads its loss back, so the host clock at the callback is the step's end.
    let report_every = (args.steps / 20).max(1);
    let mut step_ends = Vec::with_capacity(args.steps);
    let (model, records) = train(model, &schedule, &train_config, |r| {
        step_ends.push(t_train.elapsed().as_secs_f64());
        if r.step % report_every == 0 || r.step == 1 {
            println!(
                "  step {:>5}  loss {:.4}  grad-norm {:.3}  lr {:.2e}  {:.1}s",
                r.step,
                r.loss,
                r.grad_norm,
                r.lr,
                step_ends[r.step - 1]
            );
        }
    })
    .expect("no checkpointing");
    sync::<B>(&device);
    let train_seconds = t_train.elapsed().as_secs_f64();
    let totals = batches
        .iter()
        .fold(BatchTokens::default(), |t, b| BatchTokens {
            real: t.real + b.tokens.real,
            response: t.response + b.tokens.response,
            padded: t.padded + b.tokens.padded,
        });
    let step_seconds = train_seconds / args.steps as f64;
    println!(
        "train: {} steps in {train_seconds:.1}s, loss {:.3} -> {:.3}",
        args.steps,
        records[0].loss,
        records.last().expect("steps > 0").loss
    );
    if let Some(dir) = &args.out {
        write_loss_curve(dir, &records, &step_ends);
    }

    let (forward_seconds, backward_seconds) = profile_steps(
        &model,
        &batches,
        args.profile_steps.max(1),
        args.lr,
        &device,
    );

    // FLOP model of one training step (mean padded batch): dense 6·P·T, split into the text
    // decoder (on text tokens, embedding lookups excluded) and the vision side (on patches);
    // attention scores and mixing (QKᵀ, PV) on top.
    let text = &config.text_config;
    let vision = &config.vision_config;
    let mean_seq = totals.padded as f64 / (args.steps * args.batch) as f64;
    let b = args.batch as f64;
    let patches = vision.padded_num_patches() as f64;
    let vision_tokens = config.vision_tokens_per_image() as f64;
    let cross_layers = text.cross_attention_layers.len() as f64;
    let self_layers = text.num_hidden_layers as f64 - cross_layers;
    let vision_layers = (vision.num_hidden_layers + vision.num_global_layers) as f64;
    let dense_flops = 6.0
        * ((text_params - embed_params) as f64 * b * mean_seq + vision_params as f64 * b * patches);
    let attention_flops = 3.0
        * 4.0
        * b
        * (self_layers * mean_seq * mean_seq * text.hidden_size as f64
            + cross_layers * mean_seq * vision_tokens * text.hidden_size as f64
            + vision_layers * patches * patches * vision.hidden_size as f64);
    let naive_flops = 6.0 * params as f64 * totals.real as f64 / args.steps as f64;
    let (mm_m, mm_k, mm_n) = (
        args.batch * mean_seq.round() as usize,
        text.hidden_size,
        text.intermediate_size,
    );
    let tflops = matmul_tflops::<B::InnerBackend>(mm_m, mm_k, mm_n, &device);
    let matmul_seconds = (dense_flops + attention_flops) / (tflops * 1e12);

    let eval_model = model.valid();
    let (scores, eval_timing) = evaluate(
        &eval_model,
        &tokenizer,
        &eval_samples,
        &eval_images,
        args,
        &device,
    );
    let bench = generation_bench(
        &eval_model,
        &tokenizer,
        &eval_samples,
        &eval_images,
        args,
        &device,
    );

    let backend = <B::InnerBackend as Backend>::name(&device);
    let summary = json!({
        "preset": format!("{:?}", args.preset).to_lowercase(),
        "backend": backend,
        "args": {
            "scenes": args.scenes, "eval_scenes": args.eval_scenes, "steps": args.steps,
            "batch": args.batch, "lr": args.lr, "warmup": args.warmup,
            "max_new_tokens": args.max_new_tokens, "eval_batch": args.eval_batch,
            "pad_multiple": args.pad_multiple, "length_group": args.length_group,
            "gate_init": args.gate_init,
            "seed": args.seed,
        },
        "model": {
            "params": params, "text_params": text_params, "embedding_params": embed_params,
            "vision_params": vision_params, "vocab": tokenizer.vocab_size(),
        },
        "data": {
            "train_rows": train_samples.len(), "eval_questions": eval_samples.len(),
            "seconds": data_seconds,
        },
        "train": train_json(&records, totals, train_seconds, step_seconds, warmup_seconds, &shapes),
        "time_breakdown": {
            "train_step_seconds": step_seconds,
            "profiled_forward_seconds": forward_seconds,
            "profiled_backward_optimizer_seconds": backward_seconds,
            "train_overhead_seconds": step_seconds - forward_seconds - backward_seconds,
            "matmul_shape": [mm_m, mm_k, mm_n],
            "matmul_tflops": tflops,
            "step_dense_flops": dense_flops,
            "step_attention_flops": attention_flops,
            "step_naive_6pt_flops": naive_flops,
            "step_seconds_at_matmul_rate": matmul_seconds,
            "matmul_share_of_step": matmul_seconds / step_seconds,
        },
        "eval": eval_json(&scores, &eval_timing, args),
        "generation_bench": gen_json(&bench, args.eval_batch.min(eval_samples.len())),
    });
    print_table(&summary);
    summary
}

/// Writes `loss_curve.csv`; `seconds` is `step * mean step time` (see the module docs).
fn write_loss_curve(dir: &std::path::Path, records: &[LossRecord], step_ends: &[f64]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let mut csv = String::from("step,loss,lr,tokens,grad_norm,seconds\n");
    for r in records {
        csv += &format!(
            "{},{:.6},{:.6e},{},{:.6},{:.4}\n",
            r.step,
            r.loss,
            r.lr,
            r.tokens,
            r.grad_norm,
            step_ends[r.step - 1]
        );
    }
    let path = dir.join("loss_curve.csv");
    std::fs::write(&path, csv).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Greedy answers to every held-out closed question, in batches of `--eval-batch`; returns
/// per-task counts and the generation timings.
fn evaluate<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    tokenizer: &JudgeTokenizer,
    samples: &[Sample],
    images: &[PreprocessedImage],
    args: &Args,
    device: &B::Device,
) -> (BTreeMap<&'static str, TaskScore>, GenTiming) {
    let special = tokenizer.special();
    let config = GenerateConfig {
        max_new_tokens: args.max_new_tokens,
        sampling: SamplingConfig::greedy(),
        stop_tokens: vec![special.eot_id, special.end_of_text],
        pad_token: tokenizer.pad_id(),
        placement: Placement::Host,
    };
    let mut scores: BTreeMap<&'static str, TaskScore> = BTreeMap::new();
    let mut timing = GenTiming::default();
    for chunk in samples.chunks(args.eval_batch) {
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|s| prompt_ids(tokenizer, &s.question).expect("world text encodes"))
            .collect();
        let rows: Vec<usize> = chunk.iter().map(|s| s.image).collect();
        let inputs = image_inputs(&rows, images, device);
        let outputs = timed_generate(model, &prompts, &inputs, &config, &mut timing);
        for (s, tokens) in chunk.iter().zip(outputs) {
            let answer = tokenizer
                .decode(&tokens, true)
                .expect("generated ids decode");
            let gold = normalise(&s.answer);
            let score = scores.entry(s.task.name()).or_default();
            score.n += 1;
            score.correct += usize::from(normalise(&answer) == gold);
            *score.gold.entry(gold).or_default() += 1;
        }
    }
    (scores, timing)
}

/// One batch of `--eval-batch` held-out prompts generating exactly `--bench-new-tokens` tokens
/// each (no stop tokens): decode throughput at a fixed length.
fn generation_bench<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    tokenizer: &JudgeTokenizer,
    samples: &[Sample],
    images: &[PreprocessedImage],
    args: &Args,
    device: &B::Device,
) -> GenTiming {
    let chunk = &samples[..args.eval_batch.min(samples.len())];
    let prompts: Vec<Vec<u32>> = chunk
        .iter()
        .map(|s| prompt_ids(tokenizer, &s.question).expect("world text encodes"))
        .collect();
    let rows: Vec<usize> = chunk.iter().map(|s| s.image).collect();
    let inputs = image_inputs(&rows, images, device);
    let config = GenerateConfig {
        max_new_tokens: args.bench_new_tokens,
        sampling: SamplingConfig::greedy(),
        stop_tokens: vec![],
        pad_token: tokenizer.pad_id(),
        placement: Placement::Host,
    };
    let mut timing = GenTiming::default();
    timed_generate(model, &prompts, &inputs, &config, &mut timing);
    timing
}

/// The training section of the summary.
fn train_json(
    records: &[LossRecord],
    totals: BatchTokens,
    seconds: f64,
    step_seconds: f64,
    warmup_seconds: f64,
    shapes: &[usize],
) -> Value {
    let tail = &records[records.len().saturating_sub(10)..];
    json!({
        "steps": records.len(),
        "seconds": seconds,
        "step_seconds": step_seconds,
        "tokens_real": totals.real,
        "tokens_response": totals.response,
        "tokens_padded": totals.padded,
        "tokens_per_second_real": totals.real as f64 / seconds,
        "tokens_per_second_response": totals.response as f64 / seconds,
        "tokens_per_second_padded": totals.padded as f64 / seconds,
        "warmup_seconds": warmup_seconds,
        "warmup_shapes": shapes,
        "loss_first": records[0].loss,
        "loss_last10_mean": tail.iter().map(|r| r.loss).sum::<f64>() / tail.len() as f64,
    })
}

/// The evaluation section: accuracy overall and per task next to the majority-class baseline
/// (the most frequent gold answer of the task in the held-out set itself).
fn eval_json(scores: &BTreeMap<&'static str, TaskScore>, timing: &GenTiming, args: &Args) -> Value {
    let mut tasks = serde_json::Map::new();
    let (mut n, mut correct, mut majority_correct) = (0, 0, 0);
    for (task, s) in scores {
        let (majority, count) = s
            .gold
            .iter()
            .max_by_key(|&(_, &c)| c)
            .map(|(a, &c)| (a.clone(), c))
            .unwrap_or_default();
        n += s.n;
        correct += s.correct;
        majority_correct += count;
        tasks.insert(
            task.to_string(),
            json!({
                "n": s.n,
                "accuracy": s.correct as f64 / s.n as f64,
                "majority_answer": majority,
                "majority_baseline": count as f64 / s.n as f64,
            }),
        );
    }
    json!({
        "questions": n,
        "accuracy": correct as f64 / n.max(1) as f64,
        "majority_baseline": majority_correct as f64 / n.max(1) as f64,
        "tasks": tasks,
        "generation": gen_json(timing, args.eval_batch),
    })
}

/// Generation timings as JSON: prefill tokens/s, per-step decode latency and tokens/s.
fn gen_json(t: &GenTiming, batch: usize) -> Value {
    json!({
        "batch": batch,
        "seconds": t.seconds,
        "generated_tokens": t.generated_tokens,
        "generated_tokens_per_second": t.generated_tokens as f64 / t.seconds,
        "prefill_seconds": t.prefill_seconds,
        "prefill_tokens_per_second": t.prefill_tokens as f64 / t.prefill_seconds,
        "decode_steps": t.decode_steps,
        "decode_ms_per_step": 1e3 * t.decode_seconds / t.decode_steps.max(1) as f64,
        "decode_row_tokens_per_second": t.decode_row_tokens as f64 / t.decode_seconds.max(1e-9),
    })
}

/// Prints the human summary.
fn print_table(s: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let tr = &s["train"];
    let tb = &s["time_breakdown"];
    let ev = &s["eval"];
    let bench = &s["generation_bench"];
    println!(
        "\n== {} on {} ({} params) ==",
        s["preset"].as_str().unwrap_or("?"),
        s["backend"].as_str().unwrap_or("?"),
        s["model"]["params"]
    );
    println!(
        "training   {} steps x batch {}: {:.1}s ({:.1} ms/step), loss {:.3} -> {:.3} (last-10 mean)",
        tr["steps"],
        s["args"]["batch"],
        f(&tr["seconds"]),
        1e3 * f(&tr["step_seconds"]),
        f(&tr["loss_first"]),
        f(&tr["loss_last10_mean"])
    );
    println!(
        "           tokens/s: {:.0} real, {:.0} response, {:.0} padded; warm-up {:.2}s ({} shapes)",
        f(&tr["tokens_per_second_real"]),
        f(&tr["tokens_per_second_response"]),
        f(&tr["tokens_per_second_padded"]),
        f(&tr["warmup_seconds"]),
        tr["warmup_shapes"].as_array().map_or(0, Vec::len)
    );
    println!(
        "step time  forward {:.1} ms | backward+AdamW {:.1} ms | rest of train() {:.1} ms \
         (host work, one read-back per step)",
        1e3 * f(&tb["profiled_forward_seconds"]),
        1e3 * f(&tb["profiled_backward_optimizer_seconds"]),
        1e3 * f(&tb["train_overhead_seconds"])
    );
    println!(
        "matmul     {}: {:.3} TFLOP/s; step = {:.2} GFLOP dense + {:.2} GFLOP attention \
         (6PT: {:.2}) -> {:.1} ms at that rate = {:.0}% of the step",
        tb["matmul_shape"]
            .as_array()
            .map(|d| d.iter().map(Value::to_string).collect::<Vec<_>>().join("x"))
            .unwrap_or_default(),
        f(&tb["matmul_tflops"]),
        f(&tb["step_dense_flops"]) / 1e9,
        f(&tb["step_attention_flops"]) / 1e9,
        f(&tb["step_naive_6pt_flops"]) / 1e9,
        1e3 * f(&tb["step_seconds_at_matmul_rate"]),
        100.0 * f(&tb["matmul_share_of_step"])
    );
    println!(
        "eval       {} closed questions: accuracy {:.3} (majority baseline {:.3})",
        ev["questions"],
        f(&ev["accuracy"]),
        f(&ev["majority_baseline"])
    );
    println!(
        "           {:<11} {:>5} {:>9} {:>9}  majority",
        "task", "n", "accuracy", "baseline"
    );
    if let Some(tasks) = ev["tasks"].as_object() {
        for (task, t) in tasks {
            println!(
                "           {:<11} {:>5} {:>9.3} {:>9.3}  {}",
                task,
                t["n"],
                f(&t["accuracy"]),
                f(&t["majority_baseline"]),
                t["majority_answer"].as_str().unwrap_or("")
            );
        }
    }
    for (name, g) in [("eval gen", &ev["generation"]), ("gen bench", bench)] {
        println!(
            "{:<10} batch {}: {:.0} tokens/s generated; prefill {:.0} tokens/s ({:.2}s); \
             decode {:.2} ms/step = {:.0} row-tokens/s",
            name,
            g["batch"],
            f(&g["generated_tokens_per_second"]),
            f(&g["prefill_tokens_per_second"]),
            f(&g["prefill_seconds"]),
            f(&g["decode_ms_per_step"]),
            f(&g["decode_row_tokens_per_second"])
        );
    }
}
