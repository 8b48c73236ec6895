//! `op = "source"`, `kind = "scenes"` and `kind = "scenes_bench"`: the synthetic world.
//!
//! Training scenes and benchmark scenes come from disjoint seed sets: a scene's seed is a hash
//! of the node seed and its index with the top bit cleared for training scenes and set for the
//! benchmark, so no benchmark image can ever be a training image, whatever seeds users pick.

use crate::frames::frame_error;
use crate::judge_corpus::JudgeReasoning;
use judgeflow_engine::{Port, RunContext, TypedOperator, operator_params};
use judgeflow_schemas::{
    BENCH, BenchRow, FrameRow, PROMPTS, PromptRow, SCENES, SFT, SceneRow, SftRow,
};
use judgeflow_world::{Color, Dimension, Prompt, Scene, Shape, WorldConfig};
use miette::miette;
use polars::prelude::*;
use rand::seq::SliceRandom;

/// Which half of the seed space a scene comes from.
#[derive(Clone, Copy)]
enum Split {
    Train,
    Bench,
}

fn scene_seed(node_seed: u64, index: u64, split: Split) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"judgeflow.scene.v1");
    h.update(&node_seed.to_le_bytes());
    h.update(&index.to_le_bytes());
    let raw = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    match split {
        Split::Train => raw & !(1 << 63),
        Split::Bench => raw | (1 << 63),
    }
}

operator_params! {
    /// The world's parameters (both kinds).
    pub struct WorldParams {
        /// family member
        #[allow(dead_code)] // the engine reads it: it selects the operator
        kind: String,
        /// number of scenes to draw
        count: u64 [1..=1_000_000],
        /// side of the square images in pixels
        image_size: u32 [32..=1024] = 64,
        /// fewest objects per scene
        min_objects: usize [1..=12] = 1,
        /// most objects per scene
        max_objects: usize [1..=12] = 4,
        /// difficulty: background texture and pixel noise
        noise: f64 [0.0..=1.0] = 0.0,
        /// shapes that may be drawn
        shapes: Vec<String> = Shape::ALL.iter().map(|s| s.name()).collect::<Vec<&str>>(),
        /// colours that may be drawn
        colors: Vec<String> = Color::ALL.iter().map(|c| c.name()).collect::<Vec<&str>>(),
    }
}

fn world_config(p: &WorldParams) -> miette::Result<WorldConfig> {
    let pick = |name: &str, given: &[String], all: &[&'static str]| -> miette::Result<Vec<usize>> {
        given
            .iter()
            .map(|s| {
                all.iter().position(|a| a == s).ok_or_else(|| {
                    miette!(
                        code = "judgeflow::world::vocabulary",
                        help = format!("allowed: {}", all.join(", ")),
                        "unknown entry `{s}` in `{name}`"
                    )
                })
            })
            .collect()
    };
    let shape_names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
    let color_names: Vec<&str> = Color::ALL.iter().map(|c| c.name()).collect();
    let cfg = WorldConfig {
        image_size: p.image_size,
        min_objects: p.min_objects,
        max_objects: p.max_objects,
        noise: p.noise as f32,
        shapes: pick("shapes", &p.shapes, &shape_names)?
            .into_iter()
            .map(|i| Shape::ALL[i])
            .collect(),
        colors: pick("colors", &p.colors, &color_names)?
            .into_iter()
            .map(|i| Color::ALL[i])
            .collect(),
        ..WorldConfig::default()
    };
    cfg.validate().map_err(|e| {
        miette!(
            code = "judgeflow::world::config",
            help = "adjust image_size, max_objects or the vocabularies",
            "{e}"
        )
    })?;
    Ok(cfg)
}

fn draw(
    ctx: &RunContext<'_>,
    p: &WorldParams,
    split: Split,
) -> miette::Result<Vec<(Scene, Vec<u8>)>> {
    let cfg = world_config(p)?;
    let count = p.count;
    let progress = ctx.progress(count, "scenes");
    Ok((0..count)
        .map(|i| {
            let scene = judgeflow_world::draw_scene(&cfg, scene_seed(ctx.seed, i, split));
            let png = judgeflow_world::render_png(&scene);
            progress.inc(1);
            (scene, png)
        })
        .collect())
}

/// A scene's prompts. Prompts and corpus draw phrasing from their own RNG streams so that
/// changing one never reshuffles the other.
fn prompts_of(scene: &Scene) -> Vec<judgeflow_world::Prompt> {
    judgeflow_world::prompts_for(
        scene,
        &mut judgeflow_world::rng(scene.seed ^ 0x5052_4f4d_5054),
    )
}

/// The `prompts` frame of `scenes` (`prompts[i]` asked about scene `i`).
fn prompts_frame(
    scenes: &[(Scene, Vec<u8>)],
    prompts: &[Vec<judgeflow_world::Prompt>],
    source: &str,
) -> polars::prelude::PolarsResult<DataFrame> {
    let mut rows = Vec::new();
    for ((scene, png), asked) in scenes.iter().zip(prompts) {
        for (j, pr) in asked.iter().enumerate() {
            rows.push(PromptRow {
                prompt_id: format!("{:016x}-{j}", scene.seed),
                image: png.clone(),
                question: pr.question.clone(),
                gold_answer: Some(pr.answer.clone()),
                task: pr.task.name().to_string(),
                open: pr.open,
                source: source.to_string(),
            });
        }
    }
    PromptRow::into_frame(rows)
}

/// The `scenes` frame: each scene's PNG and its gold scene graph.
fn scenes_frame(scenes: &[(Scene, Vec<u8>)]) -> polars::prelude::PolarsResult<DataFrame> {
    SceneRow::into_frame(
        scenes
            .iter()
            .map(|(scene, png)| SceneRow {
                scene_id: scene.seed,
                image: png.clone(),
                scene_graph: scene.to_json(),
                n_objects: scene.objects.len() as i64,
            })
            .collect(),
    )
}

/// Training scenes: the scenes with their graphs, the prompts (open and closed, with gold
/// answers) and the base model's pretraining corpus.
pub struct ScenesSource;

operator_params! {
    /// The training world's parameters.
    pub struct ScenesParams {
        ..world: WorldParams,
        /// judge-format corpus rows per scene whose verdict follows from an independent
        /// description (the gold answer against another scene's answer): a base judge that
        /// is weak but not random; 0 adds none
        judge_examples: f64 [0.0..=16.0] = 0.0,
        /// share of those rows whose worse answer is the gold answer with one claim corrupted
        /// (as hard as the bench's pairs) instead of another scene's answer; 0 keeps the rows
        /// of the version without it
        judge_hard_share: f64 [0.0..=1.0] = 0.0,
        /// what those rows' reasoning says: `describe` (an independent description of the
        /// image), `compare` (the description, then each answer restated claim by claim,
        /// each claim marked true or false), `compare_final` (as `compare`, but a justified
        /// answer, see `reasoning_judged`, restated by its final answer alone: "the answer is
        /// 1 (true).") or `compare_counts` (as `compare`, but a justified answer restated by
        /// the counts it claims, each marked against the image, then its final answer: "1
        /// green shape (false), the answer is 1 (false).")
        judge_reasoning: JudgeReasoning = JudgeReasoning::Describe,
        /// reading rows per scene: two answers drawn as for the judge rows (same
        /// `judge_hard_share`), and one of them, named by its letter, asked for word for word;
        /// the only rows whose answer is in the text rather than the image. 0 adds none
        quote_examples: f64 [0.0..=16.0] = 0.0,
        /// existence question pairs per scene that differ in one word: a thing the scene has
        /// ("Is there a red circle ...?" yes) and the same question with its colour or shape
        /// changed to one it lacks (no); answerable only by reading the word against the
        /// image. 0 adds none
        binding_examples: f64 [0.0..=16.0] = 0.0,
        /// how those pairs are asked: `question` ("Is there a red square in the image?", yes
        /// or no) or `claim` (one claim a row, with its object's size, "a large red square",
        /// restated and marked as a `compare` judge reasoning marks an answer's claims:
        /// "a large red square (false).")
        binding_format: BindingFormat = BindingFormat::Question,
        /// questions per scene asked with their reasoning (a counting, comparison or spatial
        /// question, "... Explain your answer."), answered in the justified form of the bench's
        /// reasoning pairs ("There is 1 red circle: a small one, so the answer is 1."): corpus
        /// rows, and closed-ended prompts of task `reasoning` in the `prompts` frame, which
        /// `sample` answers with `prompts = "reasoning"`. Not in judge-format or reading rows
        /// unless `reasoning_judged`. 0 adds none
        reasoning_examples: f64 [0.0..=16.0] = 0.0,
        /// judge-format and reading rows draw from those questions too (a justified answer
        /// against another scene's justified answer to the same question, or against itself
        /// with one claim corrupted so that its final answer changes; `compare` marks the whole
        /// answer by its final answer), so the base judge restates and checks justified answers
        /// as it does captions and short answers. false: they are never judged in the corpus
        reasoning_judged: bool = false,
        /// more judge-format rows per scene, drawn from the questions asked with their
        /// reasoning alone (two among a scene's many prompts make ~2% of `judge_examples`'
        /// rows), reasoned as `judge_reasoning` says; none without `reasoning_examples`.
        /// 0 adds none
        reasoning_judge_examples: f64 [0.0..=16.0] = 0.0,
    }
}

judgeflow_engine::choice_enum! {
    /// How the scenes source asks its binding pairs.
    pub enum BindingFormat { Question = "question", Claim = "claim" }
}

impl TypedOperator for ScenesSource {
    type Params = ScenesParams;
    fn name(&self) -> &'static str {
        "source"
    }
    fn kind(&self) -> Option<&'static str> {
        Some("scenes")
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "synthetic scenes with gold scene graphs, prompts with gold answers, and a pretraining corpus"
    }
    fn inputs(&self, _: &ScenesParams) -> Vec<Port> {
        Vec::new()
    }
    fn outputs(&self, _: &ScenesParams) -> Vec<Port> {
        vec![
            Port::frame("prompts", &PROMPTS),
            Port::frame("scenes", &SCENES),
            Port::frame("corpus", &SFT),
        ]
    }
    fn run(&self, p: &ScenesParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let scenes = draw(ctx, &p.world, Split::Train)?;

        let mut corpus = Vec::new();
        let mut scene_prompts = Vec::with_capacity(scenes.len());
        let mut asked = Vec::with_capacity(scenes.len());
        let mut justified = Vec::with_capacity(scenes.len());
        for (scene, png) in &scenes {
            scene_prompts.push(prompts_of(scene));
            // From a stream of their own: with `reasoning_examples = 0` the prompts and the
            // corpus are the ones before they existed.
            let mut reasoning_rng = judgeflow_world::rng(scene.seed ^ 0x5245_4153_4f4e);
            let n = crate::judge_corpus::rows_for_scene(p.reasoning_examples, &mut reasoning_rng);
            let reasoning = judgeflow_world::reasoning_prompts(scene, n, &mut reasoning_rng);
            let mut rng = judgeflow_world::rng(scene.seed ^ 0x434f_5250_5553);
            for (j, row) in judgeflow_world::corpus_for(scene, &mut rng)
                .into_iter()
                .enumerate()
            {
                corpus.push(SftRow {
                    example_id: format!("{:016x}-c{j}", scene.seed),
                    image: png.clone(),
                    prompt: row.question,
                    response: row.answer,
                });
            }
            for (k, pr) in reasoning.iter().enumerate() {
                corpus.push(SftRow {
                    example_id: format!("{:016x}-r{k}", scene.seed),
                    image: png.clone(),
                    prompt: pr.question.clone(),
                    response: pr.answer.clone(),
                });
            }
            // The prompts frame asks both; judge-format and reading rows draw from
            // `scene_prompts` alone unless `reasoning_judged`.
            asked.push(
                [
                    scene_prompts.last().expect("just pushed").as_slice(),
                    &reasoning,
                ]
                .concat(),
            );
            justified.push(reasoning);
        }
        // Judge-format rows last, from their own RNG stream per scene: with `judge_examples = 0`
        // the corpus is exactly what it was before they existed.
        let refs: Vec<&Scene> = scenes.iter().map(|(s, _)| s).collect();
        let judged = if p.reasoning_judged {
            &asked
        } else {
            &scene_prompts
        };
        // Judge-format rows over `prompts`, `per_scene` a scene, from each scene's stream `salt`.
        let judge_rows = |prompts: &[Vec<Prompt>], per_scene: f64, salt: u64| {
            crate::judge_corpus::judge_rows(
                &refs,
                prompts,
                per_scene,
                p.judge_hard_share,
                p.judge_reasoning,
                |i| judgeflow_world::rng(refs[i].seed ^ salt),
            )
            .into_iter()
            .map(|r| (r.scene, r.prompt, r.response))
        };
        let judge = judge_rows(judged, p.judge_examples, 0x4a55_4447_4520);
        // Judge-format rows over the justified answers alone, from a stream of their own: with
        // `reasoning_judge_examples = 0` the corpus is the one before they existed.
        let judge_justified = judge_rows(&justified, p.reasoning_judge_examples, 0x4a55_5354_4946);
        // Reading rows after them, from a stream of their own: with `quote_examples = 0` the
        // corpus is the one before they existed.
        let quotes =
            crate::judge_corpus::quote_rows(judged, p.quote_examples, p.judge_hard_share, |i| {
                judgeflow_world::rng(refs[i].seed ^ 0x5155_4f54_4520)
            })
            .into_iter()
            .map(|r| (r.scene, r.prompt, r.response));
        // Binding pairs last, from a stream of their own: with `binding_examples = 0` the
        // corpus is the one before they existed.
        let bindings = refs.iter().enumerate().flat_map(|(i, scene)| {
            let mut rng = judgeflow_world::rng(scene.seed ^ 0x4249_4e44_4e47);
            let n = crate::judge_corpus::rows_for_scene(p.binding_examples, &mut rng);
            match p.binding_format {
                BindingFormat::Question => judgeflow_world::binding_pairs(scene, n, &mut rng),
                BindingFormat::Claim => judgeflow_world::binding_claims(scene, n, &mut rng),
            }
            .into_iter()
            .map(move |q| (i, q.question, q.answer))
        });
        let tagged: [(&str, Vec<_>); 4] = [
            ("j", judge.collect()),
            ("q", quotes.collect()),
            ("b", bindings.collect()),
            ("jr", judge_justified.collect()),
        ];
        for (tag, rows) in tagged {
            for (k, (scene, prompt, response)) in rows.into_iter().enumerate() {
                corpus.push(SftRow {
                    example_id: format!("{:016x}-{tag}{k}", refs[scene].seed),
                    image: scenes[scene].1.clone(),
                    prompt,
                    response,
                });
            }
        }
        let mut scenes_df =
            scenes_frame(&scenes).map_err(frame_error(ctx.node, "building the scenes frame"))?;
        let mut prompts_df = prompts_frame(&scenes, &asked, "scenes")
            .map_err(frame_error(ctx.node, "building the prompts frame"))?;
        let mut corpus_df = SftRow::into_frame(corpus)
            .map_err(frame_error(ctx.node, "building the corpus frame"))?;
        ctx.write_frame("scenes", &mut scenes_df)?;
        ctx.write_frame("prompts", &mut prompts_df)?;
        ctx.write_frame("corpus", &mut corpus_df)?;
        Ok(())
    }
}

/// The gold preference benchmark: three pairs per scene (general, hallucination, reasoning),
/// from seeds disjoint from every training scene, with exactly balanced, shuffled A/B order and
/// exactly balanced, shuffled wishes for which answer is longer.
pub struct ScenesBenchSource;

impl TypedOperator for ScenesBenchSource {
    type Params = WorldParams;
    fn name(&self) -> &'static str {
        "source"
    }
    fn kind(&self) -> Option<&'static str> {
        Some("scenes_bench")
    }
    fn version(&self) -> u32 {
        // 2: pairs without a length shortcut (world/src/bench.rs). 3: the `prompts` port.
        // 4: the `scenes` port. 5: no rejected answer claims more objects than the world's
        // scenes hold (a one-object world's reasoning pairs had "There are 2 diamonds").
        // 6: a one-object world's reasoning pairs draw counting or comparison on a coin, each
        // question with both answers (its counting pairs favoured the answer that finds
        // something 90% of the time); other worlds' pairs unchanged.
        6
    }
    fn doc(&self) -> &'static str {
        "gold preference pairs on held-out synthetic scenes (general / hallucination / reasoning)"
    }
    fn inputs(&self, _: &WorldParams) -> Vec<Port> {
        Vec::new()
    }
    fn outputs(&self, _: &WorldParams) -> Vec<Port> {
        vec![
            Port::frame("bench", &BENCH),
            // The training world's prompt families asked about the held-out scenes, with gold
            // answers: what a perception probe (greedy `sample` + `perception`) scores.
            Port::frame("prompts", &PROMPTS),
            // The held-out scenes' gold graphs: what `perception` checks a description's
            // claims against.
            Port::frame("scenes", &SCENES),
        ]
    }
    fn run(&self, p: &WorldParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let scenes = draw(ctx, p, Split::Bench)?;
        // Which way each pair's rejected answer should differ in length: exactly half of each
        // dimension's pairs longer, shuffled. Independent coins would leave the text baselines
        // ±0.022 of 0.5 at 500 pairs per dimension (one standard deviation); a balanced share
        // leaves only what the scenes' fallbacks add.
        let mut length_rng = judgeflow_world::rng(ctx.seed ^ 0x6c65_6e67_7468);
        let wants: Vec<Vec<bool>> = (0..3)
            .map(|_| {
                let mut longer: Vec<bool> = (0..scenes.len()).map(|i| i % 2 == 0).collect();
                longer.shuffle(&mut length_rng);
                longer
            })
            .collect();
        let mut rows = Vec::new();
        for (s, (scene, png)) in scenes.iter().enumerate() {
            let mut rng = judgeflow_world::rng(scene.seed);
            let longer = [wants[0][s], wants[1][s], wants[2][s]];
            for pair in
                judgeflow_world::bench_pairs_directed(scene, longer, p.max_objects, &mut rng)
            {
                rows.push((scene.seed, png, pair));
            }
        }
        // Balanced order: half the pairs put the better answer first, shuffled by the node seed.
        let mut chosen_first: Vec<bool> = (0..rows.len()).map(|i| i % 2 == 0).collect();
        chosen_first.shuffle(&mut judgeflow_world::rng(ctx.seed));
        let mut bench = Vec::with_capacity(rows.len());
        for (i, ((seed, png, pair), first)) in rows.into_iter().zip(chosen_first).enumerate() {
            let (a, b, better) = if first {
                (pair.chosen, pair.rejected, "A")
            } else {
                (pair.rejected, pair.chosen, "B")
            };
            let dimension = match pair.dimension {
                Dimension::General => "general",
                Dimension::Hallucination => "hallucination",
                Dimension::Reasoning => "reasoning",
            };
            bench.push(BenchRow {
                pair_id: format!("{seed:016x}-{i}"),
                image: png.clone(),
                question: pair.question,
                answer_a: a,
                answer_b: b,
                better: better.to_string(),
                dimension: dimension.to_string(),
                source: "scenes_bench".to_string(),
            });
        }
        let mut df = BenchRow::into_frame(bench)
            .map_err(frame_error(ctx.node, "building the bench frame"))?;
        ctx.write_frame("bench", &mut df)?;
        let asked: Vec<_> = scenes.iter().map(|(scene, _)| prompts_of(scene)).collect();
        ctx.write_frame(
            "prompts",
            &mut prompts_frame(&scenes, &asked, "scenes_bench")
                .map_err(frame_error(ctx.node, "building the prompts frame"))?,
        )?;
        ctx.write_frame(
            "scenes",
            &mut scenes_frame(&scenes)
                .map_err(frame_error(ctx.node, "building the scenes frame"))?,
        )?;
        Ok(())
    }
}
