//! `op = "train"`: supervised fine-tuning of the judge on an SFT frame.
//!
//! Two objectives:
//! - `pretrain`: the base model, from scratch (`init = "scratch"`) on the world's caption/QA
//!   corpus. No preference data is involved. The world tokenizer is trained here, on the
//!   corpus and the judge's prompt format. Because a model trained from scratch has never seen
//!   the judge's *format*, a share of examples (`format_fraction`) are format examples: the
//!   judge prompt over the row's gold answer and a corrupted (or another row's) answer, with
//!   the gold answer as reasoning and a verdict drawn **at random** — they teach how to write
//!   a verdict, never which answer is better, so the base judge starts near chance. (The
//!   paper's base model, an instruction-tuned Llama, already has this format.)
//! - `judge`: the kept judgements (prompt → reasoning + verdict); with `balance_ab`, A and B
//!   verdicts are balanced by dropping the majority letter's surplus (seeded), so the judge
//!   cannot lower its loss by preferring a position.
//!
//! `init` picks the starting weights: `scratch` (a `preset`), `base` (the `base` input) or
//! `previous` (the `previous` input: the last iteration's judge). `adapter = "lora"` trains LoRA
//! adapters on frozen starting weights instead of all weights (`train_lora`).

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_model::chat::sft_example;
use judgeflow_model::config::MllamaConfig;
use judgeflow_model::tokenizer::{JudgeTokenizer, train_world_tokenizer};
use judgeflow_model::train::{LossRecord, TrainBatch, TrainConfig, train};
use judgeflow_schemas::{LOSS, SCENES, SFT};
use judgeflow_world::{CorruptionKind, WordLists, corrupt_text};
use miette::miette;
use polars::prelude::Column;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::frames::{bins, frame, texts};
use crate::judge_format::{
    self, Verdict, judge_prompt, judge_response, parse_verdict, reasoning_of,
};
use crate::model_kit::{
    DeviceChoice, DeviceParams, ImageCache, TrainTask, check_device, load_judge, train_on,
};
use crate::train_lora::LoraParams;

/// Rows are padded to a multiple of this many tokens, so few distinct shapes occur (each new
/// shape costs a kernel compilation and autotune on GPU backends).
const PAD_MULTIPLE: usize = 16;
/// Batches whose rows are sorted by length together (less padding), before shuffling batches.
const LENGTH_GROUP: usize = 32;

choice_enum! {
    /// What the data is.
    pub enum Objective { Pretrain = "pretrain", Judge = "judge" }
}

choice_enum! {
    /// The starting weights.
    pub enum Init { Scratch = "scratch", Base = "base", Previous = "previous" }
}

choice_enum! {
    /// The model size for `init = "scratch"`.
    pub enum Preset { Micro = "micro", Tiny = "tiny" }
}

choice_enum! {
    /// The verdicts of judge-format rows in pretraining data.
    pub enum JudgeVerdicts { AsGiven = "as_given", Random = "random" }
}

operator_params! {
    /// The training run's parameters.
    pub struct TrainParams {
        /// what the data is
        objective: Objective,
        /// starting weights: a fresh `preset`, the `base` input, or the `previous` input
        init: Init = Init::Scratch,
        /// model size for init = scratch
        preset: Preset = Preset::Micro,
        /// world tokenizer size (init = scratch)
        vocab_size: usize [264..=65_536] = 512,
        /// init = scratch: the vision tower's tile side in pixels, a multiple of its 8-px
        /// patches (0: the preset's, 64); draw the world at the same size, or images are resized
        image_size: usize [0..=1120] = 0,
        /// cross-attention gates at init = scratch (mllama: 0; from scratch 0 never learns to
        /// look)
        gate_init: f64 [0.0..=1.0] = 0.5,
        /// pretrain: share of extra judge-format examples (random verdicts)
        format_fraction: f64 [0.0..=1.0] = 0.25,
        /// pretrain: `random` redraws the verdict of every judge-format row in the data with a
        /// fair coin, keeping its reasoning: the control whose base judge writes the format but
        /// judges at chance
        judge_verdicts: JudgeVerdicts = JudgeVerdicts::AsGiven,
        /// judge: equal numbers of A and B verdicts
        balance_ab: bool = true,
        /// loss weight of a response's verdict letter against 1 for every other token (the
        /// verdict is 1 token of ~15-45)
        verdict_weight: f64 [0.0..=1000.0] = 1.0,
        /// passes over the data (when steps = 0)
        epochs: usize [1..=1000] = 1,
        /// optimizer steps; 0 means `epochs` passes
        steps: usize [0..=10_000_000] = 0,
        /// sequences per step
        batch_size: usize [1..=4096] = 16,
        /// peak learning rate
        lr: f64 [0.0..=1.0] = 1e-3,
        /// linear warmup
        warmup_steps: usize [0..=1_000_000] = 20,
        /// cosine floor as a share of the peak
        min_lr_ratio: f64 [0.0..=1.0] = 0.1,
        /// AdamW decoupled weight decay
        weight_decay: f64 [0.0..=1.0] = 0.01,
        /// global gradient clipping; 0 disables
        max_grad_norm: f64 [0.0..=1e6] = 1.0,
        /// longer examples are dropped (and counted)
        max_seq_len: usize [16..=131_072] = 512,
        /// pretrain: weight of a per-patch shape classifier's loss on the vision tower (needs
        /// the `scenes` input; 0: off)
        patch_probe: f64 [0.0..=1000.0] = 0.0,
        ..device: DeviceParams,
        ..lora: LoraParams,
    }
}

/// Fine-tunes the judge.
pub struct Train;

impl TypedOperator for Train {
    type Params = TrainParams;
    fn name(&self) -> &'static str {
        "train"
    }
    fn version(&self) -> u32 {
        // 2: the loss frame no longer has a wall-clock `seconds` column.
        2
    }
    fn doc(&self) -> &'static str {
        "SFT of the judge: `pretrain` (base model from scratch on the world corpus) or `judge` (on kept judgements)"
    }
    fn inputs(&self, p: &TrainParams) -> Vec<Port> {
        let base = Port::artifact("base", "checkpoint");
        let previous = Port::artifact("previous", "checkpoint");
        vec![
            Port::frame("data", &SFT),
            if p.init == Init::Base {
                base
            } else {
                base.optional()
            },
            if p.init == Init::Previous {
                previous
            } else {
                previous.optional()
            },
            if p.patch_probe > 0.0 {
                Port::frame("scenes", &SCENES)
            } else {
                Port::frame("scenes", &SCENES).optional()
            },
        ]
    }
    fn outputs(&self, _: &TrainParams) -> Vec<Port> {
        vec![
            Port::artifact("model", "checkpoint"),
            Port::frame("loss", &LOSS),
        ]
    }
    fn gpus(&self, p: &TrainParams) -> u32 {
        p.device.gpus()
    }
    fn run(&self, p: &TrainParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("data")?;
        let rows = Rows {
            images: bins(&df, "image")?,
            prompts: texts(&df, "prompt")?,
            responses: texts(&df, "response")?,
        };
        let scenes = if p.patch_probe > 0.0 {
            Some(ctx.input_frame("scenes")?)
        } else {
            None
        };
        let init_dir = match p.init {
            Init::Base => Some(ctx.input_dir("base")?.to_path_buf()),
            Init::Previous => Some(ctx.input_dir("previous")?.to_path_buf()),
            Init::Scratch => None,
        };
        let out_dir = ctx.output_dir("model")?;
        let place = p.device.on(ctx);
        let job = Job {
            node: ctx.node.to_string(),
            params: p.clone(),
            seed: ctx.seed,
            rows,
            scenes,
            init_dir,
            out_dir,
            choice: place.choice,
            bar: ctx.progress(0, "steps"),
        };
        let node = ctx.node.to_string();
        let records = train_on(&node, place, job)?;
        let mut loss = frame(vec![
            Column::new(
                "step".into(),
                records.iter().map(|r| r.step as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "loss".into(),
                records.iter().map(|r| r.loss).collect::<Vec<_>>(),
            ),
            Column::new(
                "lr".into(),
                records.iter().map(|r| r.lr).collect::<Vec<_>>(),
            ),
            Column::new(
                "tokens".into(),
                records.iter().map(|r| r.tokens as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "grad_norm".into(),
                records.iter().map(|r| r.grad_norm).collect::<Vec<_>>(),
            ),
        ])?;
        ctx.write_frame("loss", &mut loss)?;
        Ok(())
    }
}

/// The SFT frame's columns.
struct Rows {
    images: Vec<Vec<u8>>,
    prompts: Vec<String>,
    responses: Vec<String>,
}

/// One training run, generic over the backend through [`TrainTask`].
struct Job {
    node: String,
    params: TrainParams,
    seed: u64,
    rows: Rows,
    /// The world's scenes, for the patch probe's labels (`patch_probe > 0`).
    scenes: Option<polars::prelude::DataFrame>,
    init_dir: Option<std::path::PathBuf>,
    out_dir: std::path::PathBuf,
    choice: DeviceChoice,
    bar: judgeflow_engine::NodeProgress,
}

/// An example ready to batch: token ids, loss weight per token, index of its image row.
struct Example {
    ids: Vec<u32>,
    weights: Vec<f32>,
    image: usize,
}

impl TrainTask for Job {
    type Output = Vec<LossRecord>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> miette::Result<Self::Output> {
        let p = &self.params;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let objective = p.objective;
        // (image row, prompt, response) triples to train on.
        let mut items: Vec<(usize, String, String)> = (0..self.rows.prompts.len())
            .map(|i| {
                (
                    i,
                    self.rows.prompts[i].clone(),
                    self.rows.responses[i].clone(),
                )
            })
            .collect();
        if objective == Objective::Judge && p.balance_ab {
            items = balance_verdicts(items, &mut rng);
        }
        if objective == Objective::Pretrain {
            if p.judge_verdicts == JudgeVerdicts::Random {
                randomize_verdicts(&mut items, &mut rng);
            }
            let extra = format_examples(&self.rows, p.format_fraction, &mut rng);
            items.extend(extra);
        }
        if items.is_empty() {
            return Err(miette!(
                code = "judgeflow::train::no_data",
                help = "upstream kept nothing: look at the filter's `stats` (judgeflow show PIPELINE filter --port stats)",
                "node `{}` has no examples to train on",
                self.node
            ));
        }

        let (model, tokenizer) = match &self.init_dir {
            Some(dir) => {
                let judge = load_judge::<B>(&self.node, dir, &device)?;
                (judge.model, judge.tokenizer)
            }
            None => {
                let tokenizer = world_tokenizer(&items, p.vocab_size)?;
                let vocab = tokenizer.model_vocab_size();
                let image = tokenizer.special().image as usize;
                let mut config = match p.preset {
                    Preset::Tiny => MllamaConfig::tiny(vocab, image),
                    Preset::Micro => MllamaConfig::micro(vocab, image),
                };
                let side = p.image_size;
                if side > 0 {
                    config.vision_config.image_size = side;
                }
                config.validate().map_err(|e| {
                    miette!(
                        code = "judgeflow::train::image_size",
                        help = "use a multiple of the patch size (8)",
                        "node `{}`: {e}",
                        self.node
                    )
                })?;
                B::seed(&device, self.seed);
                let model = config
                    .init(&device)
                    .with_cross_attention_gates(p.gate_init as f32);
                (model, tokenizer)
            }
        };

        let model = crate::train_lora::prepare(
            &self.node,
            model,
            &p.lora,
            self.init_dir.as_deref(),
            self.seed,
        )?;
        // `scenes` is read exactly when `patch_probe > 0`.
        let (model, probe_labels) = match &self.scenes {
            Some(scenes) => {
                let labels =
                    crate::patch_probe::labels_by_image(&self.node, scenes, model.config())?;
                (
                    model.with_patch_probe(crate::patch_probe::CLASSES),
                    Some(labels),
                )
            }
            _ => (model, None),
        };
        let max_len = p.max_seq_len;
        let verdict_weight = p.verdict_weight as f32;
        let mut examples = Vec::with_capacity(items.len());
        let mut too_long = 0;
        for (image, prompt, response) in &items {
            let e = sft_example(&tokenizer, prompt, response)
                .map_err(|e| miette!("node `{}`: an example does not tokenize: {e}", self.node))?;
            if e.input_ids.len() > max_len {
                too_long += 1;
                continue;
            }
            let mut weights: Vec<f32> = e
                .loss_mask
                .iter()
                .map(|&m| f32::from(u8::from(m)))
                .collect();
            if verdict_weight != 1.0
                && let Some(at) = verdict_token(&tokenizer, &e.input_ids[e.prompt_len..], response)
            {
                weights[e.prompt_len + at] = verdict_weight;
            }
            examples.push(Example {
                ids: e.input_ids,
                weights,
                image: *image,
            });
        }
        if too_long > 0 {
            tracing::warn!(node = %self.node, too_long, max_len, "dropped examples longer than max_seq_len");
        }
        if examples.is_empty() {
            return Err(miette!(
                code = "judgeflow::train::no_data",
                help = "raise `max_seq_len`",
                "node `{}`: all {too_long} examples are longer than max_seq_len = {max_len}",
                self.node
            ));
        }

        let batch_size = p.batch_size;
        let data = TrainData {
            images: &self.rows.images,
            examples: &examples,
            probe_labels: probe_labels.as_ref(),
        };
        let batches = make_batches(&model, &tokenizer, &data, batch_size, &mut rng, &device)?;
        let steps = match p.steps {
            0 => batches.len() * p.epochs,
            n => n,
        };
        // The step schedule: passes over the batches, each in a fresh order.
        let mut schedule = Vec::with_capacity(steps);
        while schedule.len() < steps {
            let mut order: Vec<usize> = (0..batches.len()).collect();
            order.shuffle(&mut rng);
            schedule.extend(order.into_iter().map(|i| batches[i].clone()));
        }
        schedule.truncate(steps);

        let max_grad_norm = p.max_grad_norm;
        let config = TrainConfig {
            learning_rate: p.lr,
            min_lr_ratio: p.min_lr_ratio,
            warmup_steps: p.warmup_steps.min(steps / 2),
            weight_decay: p.weight_decay as f32,
            max_grad_norm: (max_grad_norm > 0.0).then_some(max_grad_norm),
            // On a GPU, reading the loss every step drains the queue; the values are the same.
            read_every: if self.choice == DeviceChoice::Cuda {
                8
            } else {
                1
            },
            patch_loss_weight: p.patch_probe,
            ..TrainConfig::default()
        };
        self.bar.set_length(steps as u64);
        // Wall time goes to the log (and the entry's manifest), never into the loss frame: a
        // frame is content, and a re-run that trains byte-identical weights must write a
        // byte-identical frame, or its consumers re-run for nothing.
        let start = Instant::now();
        let bar = &self.bar;
        let (model, records) = train(model, &schedule, &config, |r| {
            tracing::debug!(node = %self.node, step = r.step, seconds = start.elapsed().as_secs_f64(), loss = r.loss, "step");
            bar.inc(1);
            if r.step % 10 == 0 {
                bar.message(format!("loss {:.3}", r.loss));
            }
        })
        .map_err(|e| miette!("node `{}`: {e}", self.node))?;
        tracing::info!(
            node = %self.node,
            device = ?self.choice,
            steps,
            examples = examples.len(),
            first_loss = records.first().map(|r| r.loss),
            last_loss = records.last().map(|r| r.loss),
            seconds = start.elapsed().as_secs_f64(),
            "trained"
        );
        check_device::<B>(&self.node, &device)?;
        crate::train_lora::save(
            &self.node,
            &model.valid().without_patch_probe(),
            &tokenizer,
            &p.lora,
            self.init_dir.as_deref(),
            &self.out_dir,
        )?;
        Ok(records)
    }
}

/// Drops the surplus of the more frequent verdict letter so both letters are equally common.
fn balance_verdicts(
    items: Vec<(usize, String, String)>,
    rng: &mut ChaCha8Rng,
) -> Vec<(usize, String, String)> {
    let (mut a, mut b): (Vec<_>, Vec<_>) = items
        .into_iter()
        .filter(|(_, _, r)| parse_verdict(r).is_some())
        .partition(|(_, _, r)| parse_verdict(r).map(|v| v.0) == Some(Verdict::A));
    let n = a.len().min(b.len());
    a.shuffle(rng);
    b.shuffle(rng);
    a.truncate(n);
    b.truncate(n);
    let mut out: Vec<_> = a.into_iter().chain(b).collect();
    out.sort_by_key(|(i, _, _)| *i);
    out
}

/// Redraws the verdict of every item whose response has one, keeping the reasoning before it.
fn randomize_verdicts(items: &mut [(usize, String, String)], rng: &mut ChaCha8Rng) {
    for (_, _, response) in items.iter_mut() {
        if parse_verdict(response).is_some() {
            let verdict = if rng.random_bool(0.5) {
                Verdict::A
            } else {
                Verdict::B
            };
            *response = judge_response(reasoning_of(response), verdict);
        }
    }
}

/// Judge-format examples over the corpus: the row's answer against a corrupted one (or another
/// row's answer when no corruption applies), in random order, with a verdict drawn at random.
fn format_examples(
    rows: &Rows,
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<(usize, String, String)> {
    let words = WordLists::default();
    let n = rows.prompts.len();
    let mut out = Vec::new();
    if n < 2 {
        return out;
    }
    for i in 0..n {
        if !rng.random_bool(fraction) {
            continue;
        }
        let gold = &rows.responses[i];
        let other = match corrupt_text(gold, &words, &CorruptionKind::ALL, rng) {
            Some(c) => c.text,
            None => {
                let j = (i + rng.random_range(1..n)) % n;
                rows.responses[j].clone()
            }
        };
        if other == *gold {
            continue;
        }
        let (a, b) = if rng.random_bool(0.5) {
            (gold.as_str(), other.as_str())
        } else {
            (other.as_str(), gold.as_str())
        };
        let verdict = if rng.random_bool(0.5) {
            Verdict::A
        } else {
            Verdict::B
        };
        out.push((
            i,
            judge_prompt(&rows.prompts[i], a, b),
            judge_response(&format!("In the image: {gold}"), verdict),
        ));
    }
    out
}

/// The index, within `response_ids` (a response's tokens, as `sft_example` encodes them), of the
/// token that spells the verdict letter of `response` alone; `None` without a verdict line or
/// when the letter shares a token with neighbouring text.
fn verdict_token(
    tokenizer: &JudgeTokenizer,
    response_ids: &[u32],
    response: &str,
) -> Option<usize> {
    let k = judge_format::verdict_token(tokenizer, response_ids, response)?;
    let piece = tokenizer.decode(&response_ids[k..=k], true).ok()?;
    (piece.trim().len() == 1).then_some(k)
}

/// The world tokenizer, trained on everything the model will read and write.
fn world_tokenizer(
    items: &[(usize, String, String)],
    vocab_size: usize,
) -> miette::Result<JudgeTokenizer> {
    let texts = items.iter().flat_map(|(_, p, r)| [p.as_str(), r.as_str()]);
    train_world_tokenizer(texts, vocab_size).map_err(|e| {
        miette!(
            code = "judgeflow::train::tokenizer",
            "training the world tokenizer: {e}"
        )
    })
}

/// What batches are made of: the examples, the image rows they point into, and the patch
/// probe's labels by image when the probe is on.
struct TrainData<'a> {
    images: &'a [Vec<u8>],
    examples: &'a [Example],
    probe_labels: Option<&'a std::collections::HashMap<blake3::Hash, Vec<i64>>>,
}

/// Batches of `batch_size` examples: rows sorted by length within windows of
/// [`LENGTH_GROUP`] batches, padded to a multiple of [`PAD_MULTIPLE`].
fn make_batches<B: AutodiffBackend>(
    model: &judgeflow_model::model::MllamaForConditionalGeneration<B>,
    tokenizer: &JudgeTokenizer,
    data: &TrainData<'_>,
    batch_size: usize,
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> miette::Result<Vec<TrainBatch<B>>> {
    let TrainData {
        images,
        examples,
        probe_labels,
    } = *data;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(rng);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks_mut(batch_size * LENGTH_GROUP) {
        window.sort_by_key(|&i| examples[i].ids.len());
        groups.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    let mut cache = ImageCache::new(model);
    let pad = tokenizer.pad_id();
    let mut batches = Vec::with_capacity(groups.len());
    // cubecl 0.10 keeps every uploaded host buffer in a drop queue and sums their bytes in a u32
    // that only a kernel launch resets (it flushes the queue once 64 MiB are staged; a sync does
    // not: `cubecl-cuda` 0.10 `Command::sync` waits on a fence and leaves the queue alone).
    // Uploading a whole large training set with no kernel in between passed 4 GiB and panicked
    // in its device thread ("attempt to add with overflow", drop_queue/policy.rs; 12,000 scenes
    // at 96 px). So every 256 MiB one small kernel runs, and the sync makes it run under
    // fusion too, which defers kernels until something waits for them.
    let mut uploaded = 0usize;
    for rows in groups {
        let longest = rows
            .iter()
            .map(|&i| examples[i].ids.len())
            .max()
            .unwrap_or(1);
        let seq = longest.div_ceil(PAD_MULTIPLE) * PAD_MULTIPLE;
        let mut ids = Vec::with_capacity(rows.len());
        let mut masks = Vec::with_capacity(rows.len());
        for &i in &rows {
            let mut row = examples[i].ids.clone();
            let mut mask = examples[i].weights.clone();
            row.resize(seq, pad);
            mask.resize(seq, 0.0);
            ids.push(row);
            masks.push(mask);
        }
        let bytes: Vec<&[u8]> = rows
            .iter()
            .map(|&i| images[examples[i].image].as_slice())
            .collect();
        let inputs = cache.batch::<B>(
            &bytes,
            &|k| format!("training row {}", examples[rows[k]].image),
            device,
        )?;
        // The f32 pixels and the i64 ids and f32 weights, not the PNG bytes: session 5 counted
        // the PNGs (~1 KiB against 108 KiB of pixels at 96 px) and still overflowed.
        uploaded += inputs.pixel_values.shape().num_elements() * 4 + seq * rows.len() * 12;
        let batch = TrainBatch::from_weighted_sequences(
            model.config(),
            &ids,
            &masks,
            pad,
            Some(inputs),
            device,
        );
        batches.push(match probe_labels {
            Some(by_image) => batch.with_patch_labels(
                &crate::patch_probe::batch_labels(by_image, &bytes, model.config()),
                device,
            ),
            None => batch,
        });
        if uploaded >= 256 << 20 {
            let last = batches.last().expect("a batch was just pushed");
            let _launch = last.loss_mask.clone().sum();
            B::sync(device).map_err(|e| {
                miette!(
                    code = "judgeflow::model::device",
                    help = "on a GPU this is usually memory: lower the node's `batch_size`",
                    "the backend failed while uploading training batches: {e:?}"
                )
            })?;
            uploaded = 0;
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randomized_verdicts_keep_reasoning_and_carry_no_signal() {
        let mut items: Vec<(usize, String, String)> = (0..400)
            .map(|i| {
                (
                    i,
                    "p".into(),
                    judge_response(&format!("In the image: thing {i}."), Verdict::A),
                )
            })
            .collect();
        items.push((400, "q".into(), "two red circles".into()));
        randomize_verdicts(&mut items, &mut ChaCha8Rng::seed_from_u64(3));
        let a = items[..400]
            .iter()
            .filter(|(_, _, r)| parse_verdict(r).map(|v| v.0) == Some(Verdict::A))
            .count();
        assert!((160..240).contains(&a), "{a} of 400 still A");
        assert!(
            items[..400]
                .iter()
                .enumerate()
                .all(|(i, (_, _, r))| reasoning_of(r) == format!("In the image: thing {i}."))
        );
        assert_eq!(
            items[400].2, "two red circles",
            "rows without a verdict are untouched"
        );
    }

    #[test]
    fn the_verdict_token_spells_the_letter() {
        let responses = [
            "In the image: two red circles. Overall Judgment: Answer B is better.",
            "In the image: a blue square left of a green star. Overall Judgment: Answer A is better.",
        ];
        let tokenizer = train_world_tokenizer(responses.iter().copied(), 300).expect("tokenizer");
        for r in responses {
            let ids = tokenizer.encode(r).expect("encodes");
            let at = verdict_token(&tokenizer, &ids, r).expect("found");
            let letter = tokenizer.decode(&ids[at..=at], true).expect("decodes");
            assert_eq!(letter.trim(), &r[r.len() - 12..r.len() - 11], "{r}");
        }
        assert_eq!(
            verdict_token(
                &tokenizer,
                &tokenizer.encode("no verdict").expect("ok"),
                "no verdict"
            ),
            None
        );
    }

    #[test]
    fn balancing_equalises_letters_and_drops_unparseable() {
        let mk = |i: usize, v: &str| {
            (
                i,
                "p".to_string(),
                format!("r Overall Judgment: Answer {v} is better."),
            )
        };
        let items = vec![
            mk(0, "A"),
            mk(1, "A"),
            mk(2, "A"),
            mk(3, "B"),
            (4, "p".into(), "no verdict".into()),
        ];
        let out = balance_verdicts(items, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out.iter()
                .filter(|(_, _, r)| r.contains("Answer A"))
                .count(),
            1
        );
        assert!(out.iter().any(|(i, _, _)| *i == 3));
    }

    #[test]
    fn format_examples_carry_no_preference() {
        let rows = Rows {
            images: vec![vec![]; 400],
            prompts: (0..400)
                .map(|i| format!("How many circles are there? {i}"))
                .collect(),
            responses: (0..400)
                .map(|i| format!("There are {} red circles.", ["two", "three"][i % 2]))
                .collect(),
        };
        let ex = format_examples(&rows, 1.0, &mut ChaCha8Rng::seed_from_u64(7));
        assert!(ex.len() > 350, "{}", ex.len());
        // How often the verdict names the gold answer's position: about half, i.e. no signal.
        let gold_wins = ex
            .iter()
            .filter(|(i, prompt, response)| {
                let gold = &rows.responses[*i];
                let gold_is_a = prompt.contains(&format!("Answer A: {gold}"));
                let verdict = parse_verdict(response).expect("format examples parse").0;
                (verdict == Verdict::A) == gold_is_a
            })
            .count() as f64
            / ex.len() as f64;
        assert!((0.4..0.6).contains(&gold_wins), "{gold_wins}");
    }
}
