//! `op = "corrupt"`: pairs from open-ended answers: the model's answer is preferred over a
//! corrupted copy of it.
//!
//! `method = "rules"` edits the answer with word lists from the node's parameters (colours,
//! sizes, shapes, numbers, relation pairs): an attribute swapped, a count changed, a relation
//! flipped, or a mention of an object added. `method = "model"` asks the `model` input to
//! rewrite the answer with an error of a given kind and rejects rewrites that do not change the
//! answer. Answers that no edit applies to are listed in `unpaired`, never silently dropped.
//! Only the first sample of each open prompt is used.

use burn::prelude::Backend;
use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::{PAIRS, SAMPLES, UNPAIRED};
use judgeflow_world::{CorruptionKind, Placement, WordLists, corrupt_text_placed};
use miette::miette;
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use crate::frames::{bins, bools, ints, texts};
use crate::model_kit::{
    GenerateParams, ImageCache, InferTask, Request, generate_all, infer, load_judge, row_seed,
};
use crate::pairs::{PairRow, UnpairedRow, normalize_answer, pairs_frame, unpaired_frame};

/// Corrupts open-ended answers.
pub struct Corrupt;

const KINDS: [&str; 4] = ["attribute", "count", "spatial", "hallucination"];

choice_enum! {
    /// How the worse answer is made.
    pub enum Method {
        Rules = "rules",
        Model = "model",
    }
}

choice_enum! {
    /// rules: where a hallucination puts the object it adds.
    pub enum HallucinationPlace {
        After = "after",
        Anywhere = "anywhere",
    }
}

operator_params! {
    /// The corruption's parameters.
    pub struct CorruptParams {
        /// how the worse answer is made
        method: Method = Method::Rules,
        /// error kinds to inject: attribute, count, spatial, hallucination
        kinds: Vec<String> = KINDS.to_vec(),
        /// rules: colour words
        colors: Vec<String> = WordLists::default().colors,
        /// rules: size words
        sizes: Vec<String> = WordLists::default().sizes,
        /// rules: singular shape nouns
        shapes: Vec<String> = WordLists::default().shapes,
        /// rules: number words, index = value
        numbers: Vec<String> = WordLists::default().numbers,
        /// rules: opposite relation words as `a/b`
        relations: Vec<String> = WordLists::default()
            .relations
            .iter()
            .map(|(a, b)| format!("{a}/{b}"))
            .collect::<Vec<String>>(),
        /// rules: where a hallucination adds its object: `after` one of the answer's sentences
        /// (the added claim never first), or `anywhere` (first as often as after any sentence)
        hallucination_place: HallucinationPlace = HallucinationPlace::After,
        /// model: most tokens per rewrite
        max_tokens: usize [1..=8192] = 96,
        ..generate: GenerateParams { sampling.temperature = 0.0 },
    }
}

impl TypedOperator for Corrupt {
    type Params = CorruptParams;
    fn name(&self) -> &'static str {
        "corrupt"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "open-ended pairs: the model's answer preferred over a corrupted copy (rules or model rewrite)"
    }
    fn inputs(&self, p: &CorruptParams) -> Vec<Port> {
        let model = Port::artifact("model", "checkpoint");
        vec![
            Port::frame("samples", &SAMPLES),
            if p.method == Method::Model {
                model
            } else {
                model.optional()
            },
        ]
    }
    fn outputs(&self, _: &CorruptParams) -> Vec<Port> {
        vec![
            Port::frame("pairs", &PAIRS),
            Port::frame("unpaired", &UNPAIRED),
        ]
    }
    fn gpus(&self, p: &CorruptParams) -> u32 {
        if p.method == Method::Model {
            p.generate.device.gpus()
        } else {
            0
        }
    }
    fn run(&self, p: &CorruptParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("samples")?;
        let open = bools(&df, "open")?;
        let index = ints(&df, "sample_index")?;
        let ids = texts(&df, "prompt_id")?;
        let answers = texts(&df, "answer")?;
        let questions = texts(&df, "question")?;
        let tasks = texts(&df, "task")?;
        let sources = texts(&df, "source")?;
        let images = bins(&df, "image")?;
        let rows: Vec<usize> = (0..df.height())
            .filter(|&i| open[i] == Some(true) && index[i] == 0)
            .collect();
        let kinds = parse_kinds(&p.kinds)?;

        // The corrupted answer of each row, or why there is none.
        let edits: Vec<Result<(String, String), String>> = match p.method {
            Method::Model => {
                let job = Rewrite {
                    node: ctx.node.to_string(),
                    params: p.clone(),
                    seed: ctx.seed,
                    model_dir: ctx.input_dir("model")?.to_path_buf(),
                    rows: rows
                        .iter()
                        .map(|&i| (ids[i].clone(), images[i].clone(), answers[i].clone()))
                        .collect(),
                    kinds: kinds.clone(),
                };
                infer(ctx.node, p.generate.device.on(ctx), job)?
            }
            Method::Rules => {
                let words = word_lists(p)?;
                let placement = match p.hallucination_place {
                    HallucinationPlace::After => Placement::After,
                    HallucinationPlace::Anywhere => Placement::Anywhere,
                };
                rows.iter()
                    .map(|&i| {
                        let mut rng = ChaCha8Rng::seed_from_u64(row_seed(ctx.seed, &[&ids[i]]));
                        corrupt_text_placed(&answers[i], &words, &kinds, placement, &mut rng)
                            .map(|c| (c.text, c.kind.name().to_string()))
                            .ok_or_else(|| {
                                "no corruption of the requested kinds applies".to_string()
                            })
                    })
                    .collect()
            }
        };
        let mut pairs = Vec::new();
        let mut unpaired = Vec::new();
        for (&i, edit) in rows.iter().zip(edits) {
            match edit {
                Ok((rejected, kind)) => pairs.push(PairRow {
                    pair_id: format!("{}-c", ids[i]),
                    prompt_id: ids[i].clone(),
                    image: images[i].clone(),
                    question: questions[i].clone(),
                    chosen: answers[i].clone(),
                    rejected,
                    task: tasks[i].clone(),
                    kind,
                    source: sources[i].clone(),
                    label_correct: None,
                }),
                Err(reason) => unpaired.push(UnpairedRow {
                    prompt_id: ids[i].clone(),
                    task: tasks[i].clone(),
                    reason,
                }),
            }
        }
        tracing::info!(
            node = ctx.node,
            answers = rows.len(),
            pairs = pairs.len(),
            skipped = unpaired.len(),
            "corrupted"
        );
        ctx.write_frame("pairs", &mut pairs_frame(pairs)?)?;
        ctx.write_frame("unpaired", &mut unpaired_frame(unpaired)?)?;
        Ok(())
    }
}

fn parse_kinds(names: &[String]) -> miette::Result<Vec<CorruptionKind>> {
    names
        .iter()
        .map(|n| {
            CorruptionKind::ALL
                .into_iter()
                .find(|k| k.name() == n)
                .ok_or_else(|| {
                    miette!(
                        code = "judgeflow::corrupt::kind",
                        help = "the kinds are attribute, count, spatial, hallucination",
                        "unknown corruption kind `{n}`"
                    )
                })
        })
        .collect()
}

fn word_lists(params: &CorruptParams) -> miette::Result<WordLists> {
    let relations = params
        .relations
        .iter()
        .map(|r| {
            r.split_once('/')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| {
                    miette!(
                        code = "judgeflow::corrupt::relation",
                        "relation `{r}` is not of the form `a/b`"
                    )
                })
        })
        .collect::<miette::Result<Vec<_>>>()?;
    Ok(WordLists {
        colors: params.colors.clone(),
        sizes: params.sizes.clone(),
        shapes: params.shapes.clone(),
        numbers: params.numbers.clone(),
        relations,
    })
}

/// The rewrite instruction for one error kind.
fn rewrite_prompt(answer: &str, kind: CorruptionKind) -> String {
    let error = match kind {
        CorruptionKind::Attribute => "one wrong colour, size or shape",
        CorruptionKind::Count => "one wrong number of objects",
        CorruptionKind::Spatial => "one wrong position between two objects",
        CorruptionKind::Hallucination => "one extra object that is not in the image",
    };
    format!(
        "Rewrite this description of the image so that it contains {error}, changing nothing else.\nDescription: {answer}"
    )
}

/// Model rewrites: one per row with a seeded error kind.
struct Rewrite {
    node: String,
    params: CorruptParams,
    seed: u64,
    model_dir: std::path::PathBuf,
    rows: Vec<(String, Vec<u8>, String)>,
    kinds: Vec<CorruptionKind>,
}

impl InferTask for Rewrite {
    type Output = Vec<Result<(String, String), String>>;

    fn run<B: Backend>(self, device: B::Device) -> miette::Result<Self::Output> {
        let judge = load_judge::<B>(&self.node, &self.model_dir, &device)?;
        let mut images = ImageCache::new(&judge.model);
        let mut kinds = Vec::with_capacity(self.rows.len());
        let requests: Vec<Request<'_>> = self
            .rows
            .iter()
            .map(|(id, image, answer)| {
                let mut rng = ChaCha8Rng::seed_from_u64(row_seed(self.seed, &[id]));
                let kind = *self
                    .kinds
                    .choose(&mut rng)
                    .unwrap_or(&CorruptionKind::Attribute);
                kinds.push(kind);
                Request {
                    image,
                    question: rewrite_prompt(answer, kind),
                    seed: row_seed(self.seed, &[id, "rewrite"]),
                    label: format!("prompt `{id}`"),
                    start: "",
                }
            })
            .collect();
        let replies = generate_all(
            &judge,
            &mut images,
            &requests,
            &self.params.generate.sampling.config(),
            self.params.max_tokens,
            self.params.generate.batch_size,
            &[],
            &device,
            |_| (),
        )?;
        Ok(replies
            .into_iter()
            .zip(&self.rows)
            .zip(kinds)
            .map(|((reply, (_, _, answer)), kind)| {
                let text = reply.text.trim().to_string();
                if text.is_empty() || normalize_answer(&text) == normalize_answer(answer) {
                    Err("the model's rewrite did not change the answer".to_string())
                } else {
                    Ok((text, kind.name().to_string()))
                }
            })
            .collect())
    }
}
