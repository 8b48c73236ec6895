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
use judgeflow_model::train::{LossRecord, TrainConfig, TrainError, train};
use judgeflow_schemas::{FrameRow, LOSS, LossRow, SCENES, SFT};
use miette::{IntoDiagnostic, miette};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::frames::{bins, texts};
use crate::judge_format::token_spans;
use crate::model_kit::{DeviceChoice, DeviceParams, TrainTask, check_device, load_judge, train_on};
use crate::train_data::{
    Example, Rows, TrainData, balance_verdicts, format_examples, make_batches, mark_tokens,
    randomize_marks, randomize_verdicts, verdict_token, world_tokenizer,
};
use crate::train_lora::LoraParams;

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
    pub enum JudgeVerdicts {
        AsGiven = "as_given",
        Random = "random",
        RandomReasoning = "random_reasoning",
    }
}

choice_enum! {
    /// How a step's loss weighs its examples.
    pub enum LossPer { Token = "token", Example = "example" }
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
        /// init = scratch: text decoder layers (0: the preset's, micro 3, tiny 8); the preset's
        /// cross-attention layers are kept unless `cross_attention_every` places them. An mllama
        /// cross-attention layer replaces a self-attention layer, so depth is what lets a token
        /// be matched against an earlier one after the image has been read
        text_layers: usize [0..=64] = 0,
        /// init = scratch: a cross-attention layer every N text layers (the last layer is one);
        /// 0: the preset's (tiny: 2 of 8, at layers 3 and 7)
        cross_attention_every: usize [0..=64] = 0,
        /// cross-attention gates at init = scratch (mllama: 0; from scratch 0 never learns to
        /// look)
        gate_init: f64 [0.0..=1.0] = 0.5,
        /// pretrain: share of extra judge-format examples (random verdicts)
        format_fraction: f64 [0.0..=1.0] = 0.25,
        /// pretrain: `random` redraws the verdict of every judge-format row in the data with a
        /// fair coin, keeping its reasoning: the control whose base judge writes the format but
        /// judges at chance; `random_reasoning` also redraws every claim mark (`(true)`,
        /// `(false)`) of the reasoning, each with its own coin: a control whose base neither
        /// checks claims nor decides, so that any gain self-training makes on it is the labels'
        judge_verdicts: JudgeVerdicts = JudgeVerdicts::AsGiven,
        /// judge: equal numbers of A and B verdicts
        balance_ab: bool = true,
        /// loss weight of a response's verdict letter against 1 for every other token (the
        /// verdict is 1 token of ~15-45)
        verdict_weight: f64 [0.0..=1000.0] = 1.0,
        /// loss weight of the word of each claim mark (the `true` of `(true)`, the `false` of
        /// `(false)`) that a `compare` judge reasoning writes after every restated claim,
        /// against 1 for every other token: the marks are where the answers are checked
        mark_weight: f64 [0.0..=1000.0] = 1.0,
        /// `token`: the step's loss is the mean over its response tokens, so a one-word answer
        /// weighs a twentieth of a twenty-token caption; `example`: each example's tokens
        /// share one example's weight (the mean over examples of each one's mean), so a short
        /// answer counts as much as a long one
        loss_per: LossPer = LossPer::Token,
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
        // 2: the loss frame no longer has a wall-clock `seconds` column. 3: on CUDA burn's
        // AdamW by default, where the fused kernels ran (they diverge at `micro`: session 23),
        // and a non-finite loss is an error instead of a model. 4: on CUDA the fused kernels
        // with f32 master weights by default (session 25: they read the first step's moments
        // right now, and bf16 parameters dropped many fine-tuning updates). The CPU's results
        // are unchanged.
        4
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
    /// The kernel switches and, on CUDA, which AdamW runs (`JUDGEFLOW_OPTIMIZER`).
    fn environment(&self, p: &TrainParams) -> Vec<&'static str> {
        p.device
            .environment(&[judgeflow_model::fused_adamw::OPTIMIZER_VAR])
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
        // Bad adapter settings fail here, not after minutes of loading weights.
        let lora = crate::train_lora::fresh_config(ctx.node, &p.lora, init_dir.as_deref())?;
        let out_dir = ctx.output_dir("model")?;
        let place = p.device.on(ctx);
        let job = Job {
            node: ctx.node.to_string(),
            params: p.clone(),
            seed: ctx.seed,
            rows,
            scenes,
            init_dir,
            lora,
            out_dir,
            choice: place.choice,
            bar: ctx.progress(0, "steps"),
        };
        let node = ctx.node.to_string();
        let records = train_on(&node, place, job)?;
        let rows = records
            .iter()
            .map(|r| LossRow {
                step: r.step as i64,
                loss: r.loss,
                lr: r.lr,
                tokens: r.tokens as i64,
                grad_norm: r.grad_norm,
            })
            .collect();
        let mut loss = LossRow::into_frame(rows).into_diagnostic()?;
        ctx.write_frame("loss", &mut loss)?;
        Ok(())
    }
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
    /// Fresh adapters' settings (`adapter = "lora"` on starting weights), checked before loading.
    lora: Option<judgeflow_model::lora::LoraConfig>,
    out_dir: std::path::PathBuf,
    choice: DeviceChoice,
    bar: judgeflow_engine::NodeProgress,
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
            match p.judge_verdicts {
                JudgeVerdicts::AsGiven => {}
                JudgeVerdicts::Random => randomize_verdicts(&mut items, &mut rng),
                JudgeVerdicts::RandomReasoning => {
                    randomize_verdicts(&mut items, &mut rng);
                    randomize_marks(&mut items, &mut rng);
                }
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
                if p.text_layers > 0 {
                    config.text_config.num_hidden_layers = p.text_layers;
                }
                let every = p.cross_attention_every;
                let layers = config.text_config.num_hidden_layers;
                if every == 0 {
                    // Only a `text_layers` below the preset's can leave a layer out.
                    if let Some(&last) = config.text_config.cross_attention_layers.iter().max()
                        && last >= layers
                    {
                        return Err(miette!(
                            code = "judgeflow::train::text_layers",
                            help = format!(
                                "use at least {} text layers, or place the cross-attention \
                                 layers with `cross_attention_every`",
                                last + 1
                            ),
                            "node `{}`: text_layers = {layers} drops the preset's cross-attention \
                             layer {last}",
                            self.node
                        ));
                    }
                } else {
                    config.text_config.cross_attention_layers =
                        (0..layers).filter(|i| (i + 1) % every == 0).collect();
                    if every > layers {
                        return Err(miette!(
                            code = "judgeflow::train::cross_attention_every",
                            help = format!("use at most the model's {layers} text layers"),
                            "node `{}`: cross_attention_every = {every} leaves no cross-attention \
                             layer in {layers} text layers: the model could not see the image",
                            self.node
                        ));
                    }
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
            p.lora.adapter,
            self.lora.as_ref(),
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
        let mark_weight = p.mark_weight as f32;
        let mut examples = Vec::with_capacity(items.len());
        let mut too_long = 0;
        for (image, prompt, response) in &items {
            let e = sft_example(&tokenizer, prompt, response).map_err(|e| {
                miette!(
                    code = "judgeflow::train::tokenize",
                    "node `{}`: an example does not tokenize: {e}",
                    self.node
                )
            })?;
            if e.input_ids.len() > max_len {
                too_long += 1;
                continue;
            }
            // Where each response token's text lies, decoded once for both weights.
            let response_ids = &e.input_ids[e.prompt_len..];
            let spans = if verdict_weight != 1.0 || mark_weight != 1.0 {
                token_spans(&tokenizer, response_ids)
            } else {
                Vec::new()
            };
            let verdict_at = (verdict_weight != 1.0)
                .then(|| verdict_token(&tokenizer, response_ids, &spans, response))
                .flatten()
                .map(|at| e.prompt_len + at);
            let marks = if mark_weight != 1.0 {
                mark_tokens(&spans, response)
            } else {
                Vec::new()
            };
            let weighted = marks
                .into_iter()
                .map(|at| (e.prompt_len + at, mark_weight))
                .chain(verdict_at.map(|at| (at, verdict_weight)));
            let weights = loss_weights(&e.loss_mask, weighted, p.loss_per);
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
        .map_err(|e| match e {
            TrainError::Diverged { .. } => miette!(
                code = "judgeflow::train::diverged",
                help = "nothing was written; lower `lr`, or on CUDA choose the optimizer with \
                        JUDGEFLOW_OPTIMIZER (the fused kernels with f32 master weights are the \
                        default; `burn` is burn's AdamW)",
                "node `{}`: {e}",
                self.node
            ),
            e => miette!(code = "judgeflow::train::run", "node `{}`: {e}", self.node),
        })?;
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

/// Each token's loss weight: 1 for a response token (0 for the prompt), `weight` for each
/// `(position, weight)` of `weighted` (the verdict letter, the claim marks); with
/// [`LossPer::Example`] the weights are scaled to sum to 1, so that every example weighs the
/// same in a step whatever its length.
fn loss_weights(
    mask: &[bool],
    weighted: impl IntoIterator<Item = (usize, f32)>,
    per: LossPer,
) -> Vec<f32> {
    let mut weights: Vec<f32> = mask.iter().map(|&m| f32::from(u8::from(m))).collect();
    for (at, weight) in weighted {
        weights[at] = weight;
    }
    if per == LossPer::Example {
        let total: f32 = weights.iter().sum();
        if total > 0.0 {
            weights.iter_mut().for_each(|w| *w /= total);
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_example_weights_sum_to_one_and_keep_the_verdicts_share() {
        let mask = [false, false, true, true, true, true];
        let token = loss_weights(&mask, [(4, 3.0)], LossPer::Token);
        assert_eq!(token, [0.0, 0.0, 1.0, 1.0, 3.0, 1.0]);
        let example = loss_weights(&mask, [(4, 3.0)], LossPer::Example);
        assert_eq!(example, [0.0, 0.0, 1.0 / 6.0, 1.0 / 6.0, 0.5, 1.0 / 6.0]);
        // Marks and the verdict together.
        let both = loss_weights(&mask, [(2, 2.0), (3, 2.0), (4, 3.0)], LossPer::Token);
        assert_eq!(both, [0.0, 0.0, 2.0, 2.0, 3.0, 1.0]);
        // A one-token answer weighs as much as the four-token response above.
        let short = loss_weights(&[false, true], [], LossPer::Example);
        assert_eq!(short.iter().sum::<f32>(), example.iter().sum::<f32>());
        // A row with nothing to predict stays at zero.
        assert_eq!(
            loss_weights(&[false, false], [], LossPer::Example),
            [0.0, 0.0]
        );
    }
}
