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
use judgeflow_engine::{Operator, ParamKind, ParamSpec, Params, Port, RunContext};
use judgeflow_model::chat::sft_example;
use judgeflow_model::config::MllamaConfig;
use judgeflow_model::tokenizer::{JudgeTokenizer, train_world_tokenizer};
use judgeflow_model::train::{LossRecord, TrainBatch, TrainConfig, train};
use judgeflow_schemas::{LOSS, SFT};
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
    DeviceChoice, ImageCache, OnDevice, TrainTask, check_device, device_choice, device_param,
    gpus_for, load_judge, train_on,
};

/// Rows are padded to a multiple of this many tokens, so few distinct shapes occur (each new
/// shape costs a kernel compilation and autotune on GPU backends).
const PAD_MULTIPLE: usize = 16;
/// Batches whose rows are sorted by length together (less padding), before shuffling batches.
const LENGTH_GROUP: usize = 32;

/// Fine-tunes the judge.
pub struct Train;

impl Operator for Train {
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
    fn params(&self) -> Vec<ParamSpec> {
        let mut params = vec![
            ParamSpec::new("objective", ParamKind::Choice(&["pretrain", "judge"]), "what the data is"),
            ParamSpec::new(
                "init",
                ParamKind::Choice(&["scratch", "base", "previous"]),
                "starting weights: a fresh `preset`, the `base` input, or the `previous` input",
            )
            .default("scratch"),
            ParamSpec::new("preset", ParamKind::Choice(&["micro", "tiny"]), "model size for init = scratch")
                .default("micro"),
            ParamSpec::new("vocab_size", ParamKind::Int { min: 264, max: 65_536 }, "world tokenizer size (init = scratch)")
                .default(512),
            ParamSpec::new("image_size", ParamKind::Int { min: 0, max: 1120 }, "init = scratch: the vision tower's tile side in pixels, a multiple of its 8-px patches (0: the preset's, 64); draw the world at the same size, or images are resized")
                .default(0),
            ParamSpec::new("gate_init", ParamKind::Float { min: 0.0, max: 1.0 }, "cross-attention gates at init = scratch (mllama: 0; from scratch 0 never learns to look)")
                .default(0.5),
            ParamSpec::new("format_fraction", ParamKind::Float { min: 0.0, max: 1.0 }, "pretrain: share of extra judge-format examples (random verdicts)")
                .default(0.25),
            ParamSpec::new("judge_verdicts", ParamKind::Choice(&["as_given", "random"]), "pretrain: `random` redraws the verdict of every judge-format row in the data with a fair coin, keeping its reasoning: the control whose base judge writes the format but judges at chance")
                .default("as_given"),
            ParamSpec::new("balance_ab", ParamKind::Bool, "judge: equal numbers of A and B verdicts").default(true),
            ParamSpec::new("verdict_weight", ParamKind::Float { min: 0.0, max: 1000.0 }, "loss weight of a response's verdict letter against 1 for every other token (the verdict is 1 token of ~15-45)")
                .default(1.0),
            ParamSpec::new("epochs", ParamKind::Int { min: 1, max: 1000 }, "passes over the data (when steps = 0)").default(1),
            ParamSpec::new("steps", ParamKind::Int { min: 0, max: 10_000_000 }, "optimizer steps; 0 means `epochs` passes").default(0),
            ParamSpec::new("batch_size", ParamKind::Int { min: 1, max: 4096 }, "sequences per step").default(16),
            ParamSpec::new("lr", ParamKind::Float { min: 0.0, max: 1.0 }, "peak learning rate").default(1e-3),
            ParamSpec::new("warmup_steps", ParamKind::Int { min: 0, max: 1_000_000 }, "linear warmup").default(20),
            ParamSpec::new("min_lr_ratio", ParamKind::Float { min: 0.0, max: 1.0 }, "cosine floor as a share of the peak").default(0.1),
            ParamSpec::new("weight_decay", ParamKind::Float { min: 0.0, max: 1.0 }, "AdamW decoupled weight decay").default(0.01),
            ParamSpec::new("max_grad_norm", ParamKind::Float { min: 0.0, max: 1e6 }, "global gradient clipping; 0 disables").default(1.0),
            ParamSpec::new("max_seq_len", ParamKind::Int { min: 16, max: 131_072 }, "longer examples are dropped (and counted)").default(512),
            device_param(),
        ];
        params.extend(crate::train_lora::params());
        params
    }
    fn inputs(&self, params: &Params) -> Vec<Port> {
        let init = params.str("init");
        let base = Port::artifact("base", "checkpoint");
        let previous = Port::artifact("previous", "checkpoint");
        vec![
            Port::frame("data", &SFT),
            if init == "base" {
                base
            } else {
                base.optional()
            },
            if init == "previous" {
                previous
            } else {
                previous.optional()
            },
        ]
    }
    fn outputs(&self, _: &Params) -> Vec<Port> {
        vec![
            Port::artifact("model", "checkpoint"),
            Port::frame("loss", &LOSS),
        ]
    }
    fn gpus(&self, params: &Params) -> u32 {
        gpus_for(params)
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("data")?;
        let rows = Rows {
            images: bins(&df, "image")?,
            prompts: texts(&df, "prompt")?,
            responses: texts(&df, "response")?,
        };
        let init_dir = match ctx.params.str("init") {
            "base" => Some(ctx.input_dir("base")?.to_path_buf()),
            "previous" => Some(ctx.input_dir("previous")?.to_path_buf()),
            _ => None,
        };
        let out_dir = ctx.output_dir("model")?;
        let choice = device_choice(ctx.params);
        let job = Job {
            node: ctx.node.to_string(),
            params: ctx.params.clone(),
            seed: ctx.seed,
            rows,
            init_dir,
            out_dir,
            choice,
            bar: ctx.progress(0, "steps"),
        };
        let node = ctx.node.to_string();
        let records = train_on(&node, OnDevice::new(choice, &ctx.gpus), job)?;
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
    params: Params,
    seed: u64,
    rows: Rows,
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
        let objective = p.str("objective");
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
        if objective == "judge" && p.bool("balance_ab") {
            items = balance_verdicts(items, &mut rng);
        }
        if objective == "pretrain" {
            if p.str("judge_verdicts") == "random" {
                randomize_verdicts(&mut items, &mut rng);
            }
            let extra = format_examples(&self.rows, p.float("format_fraction"), &mut rng);
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
                let tokenizer = world_tokenizer(&items, p.usize("vocab_size"))?;
                let vocab = tokenizer.model_vocab_size();
                let image = tokenizer.special().image as usize;
                let mut config = match p.str("preset") {
                    "tiny" => MllamaConfig::tiny(vocab, image),
                    _ => MllamaConfig::micro(vocab, image),
                };
                let side = p.usize("image_size");
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
                    .with_cross_attention_gates(p.float("gate_init") as f32);
                (model, tokenizer)
            }
        };

        let model =
            crate::train_lora::prepare(&self.node, model, p, self.init_dir.as_deref(), self.seed)?;
        let max_len = p.usize("max_seq_len");
        let verdict_weight = p.float("verdict_weight") as f32;
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

        let batch_size = p.usize("batch_size");
        let batches = make_batches(
            &model,
            &tokenizer,
            &self.rows.images,
            &examples,
            batch_size,
            &mut rng,
            &device,
        )?;
        let steps = match p.usize("steps") {
            0 => batches.len() * p.usize("epochs"),
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

        let max_grad_norm = p.float("max_grad_norm");
        let config = TrainConfig {
            learning_rate: p.float("lr"),
            min_lr_ratio: p.float("min_lr_ratio"),
            warmup_steps: p.usize("warmup_steps").min(steps / 2),
            weight_decay: p.float("weight_decay") as f32,
            max_grad_norm: (max_grad_norm > 0.0).then_some(max_grad_norm),
            // On a GPU, reading the loss every step drains the queue; the values are the same.
            read_every: if self.choice == DeviceChoice::Cuda {
                8
            } else {
                1
            },
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
            &model.valid(),
            &tokenizer,
            p,
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

/// Batches of `batch_size` examples: rows sorted by length within windows of
/// [`LENGTH_GROUP`] batches, padded to a multiple of [`PAD_MULTIPLE`].
fn make_batches<B: AutodiffBackend>(
    model: &judgeflow_model::model::MllamaForConditionalGeneration<B>,
    tokenizer: &JudgeTokenizer,
    images: &[Vec<u8>],
    examples: &[Example],
    batch_size: usize,
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> miette::Result<Vec<TrainBatch<B>>> {
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
    // cubecl 0.10 keeps every uploaded host buffer until its next kernel launch and counts their
    // bytes in a u32: uploading a whole large training set with no kernel in between passed
    // 4 GiB and panicked in its device thread ("attempt to add with overflow",
    // drop_queue/policy.rs, 12,000 scenes at 96 px). A sync every 256 MiB releases them.
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
        uploaded += bytes.iter().map(|b| b.len()).sum::<usize>() * 4 + seq * rows.len() * 8;
        batches.push(TrainBatch::from_weighted_sequences(
            model.config(),
            &ids,
            &masks,
            pad,
            Some(inputs),
            device,
        ));
        if uploaded >= 256 << 20 {
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
