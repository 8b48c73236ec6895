//! `op = "perception"`: does the base model see? Scores a model's answers to closed questions
//! about held-out scenes (a greedy `sample` of the bench source's `prompts`) per question form,
//! against that form's prior, and checks the science issue's gate.
//!
//! A judge can only learn to judge what its base model perceives: on a model that answers
//! colour questions and guesses the rest, self-training has nothing to select. So the pipelines
//! measure perception first and say whether it clears the gate: on every form, accuracy at
//! least `min_accuracy` and at least `min_gain` above the form's prior.
//!
//! - **Form**: a task (count, colour, shape, existence, spatial, comparison) split by whether
//!   its gold answers are yes/no or a word, since the prior of "yes or no" differs from that of
//!   "which colour" within one task (spatial questions come in both forms).
//! - **Prior**: the share of the form's most common gold answer among the scored items: what a
//!   model that never looks at the image can score by answering the same thing every time.
//! - Answers and gold are compared after [`normalize_answer`]; empty answers count as wrong.
//! - **Descriptions** (optional `captions` input, a greedy `sample` of the open prompts, with the
//!   `scenes` their images show): every claim of each description is read and checked against
//!   the scene graph ([`judgeflow_world::check_caption`]). Two rows: `caption/claims` is the
//!   share of claims that hold (the "≥ 85% of caption claims true"), `caption/objects`
//!   the share of the scenes' objects a true claim accounts for (saying little must not pass).
//!   Their prior is what a model that writes fluent descriptions without looking scores: each
//!   item's description replaced by the gold description of the next item's scene.
//! - `overall` is the closed questions' accuracy; it passes when every row passes.
//! - `gate = "fail"` fails the node when a form misses a threshold (nothing downstream runs);
//!   `"warn"` (the default) logs it and writes `passes = false`; the frame is written either way
//!   with `"warn"`.

use std::collections::{BTreeMap, HashMap};

use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::{FrameRow, PERCEPTION, PerceptionRow, SAMPLES, SCENES};
use judgeflow_world::{CaptionCheck, Scene, check_caption};
use miette::{IntoDiagnostic, miette};

use crate::evaluate::wilson;
use crate::frames::{bins, bools, scenes_by_image, strs, texts};
use crate::pairs::normalize_answer;

choice_enum! {
    /// What a form below the thresholds does.
    pub enum GateAction {
        Warn = "warn",
        Fail = "fail",
    }
}

operator_params! {
    /// The perception gate's parameters.
    pub struct PerceptionParams {
        /// every form must reach this accuracy
        min_accuracy: f64 [0.0..=1.0] = 0.85,
        /// ... and beat its prior by this much
        min_gain: f64 [0.0..=1.0] = 0.30,
        /// what a form below the thresholds does: log a warning, or fail the node
        gate: GateAction = GateAction::Warn,
    }
}

/// Scores closed answers per question form against the form's prior.
pub struct Perception;

impl TypedOperator for Perception {
    type Params = PerceptionParams;
    fn name(&self) -> &'static str {
        "perception"
    }
    fn version(&self) -> u32 {
        // 2: the optional `captions` and `scenes` inputs.
        2
    }
    fn doc(&self) -> &'static str {
        "closed-question accuracy per form on held-out scenes, against the form's prior: the base model's perception gate"
    }
    fn inputs(&self, _: &PerceptionParams) -> Vec<Port> {
        vec![
            Port::frame("samples", &SAMPLES),
            Port::frame("captions", &SAMPLES).optional(),
            Port::frame("scenes", &SCENES).optional(),
        ]
    }
    fn outputs(&self, _: &PerceptionParams) -> Vec<Port> {
        vec![Port::frame("perception", &PERCEPTION)]
    }
    fn run(&self, p: &PerceptionParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("samples")?;
        let open = bools(&df, "open")?;
        let tasks = texts(&df, "task")?;
        let gold = strs(&df, "gold_answer")?;
        let answers = texts(&df, "answer")?;
        let items: Vec<Item> = (0..df.height())
            .filter(|&i| open[i] == Some(false))
            .filter_map(|i| {
                Some(Item {
                    task: tasks[i].clone(),
                    gold: normalize_answer(gold[i].as_deref()?),
                    answer: normalize_answer(&answers[i]),
                })
            })
            .collect();
        if items.is_empty() {
            return Err(miette::miette!(
                code = "judgeflow::perception::no_items",
                help = "connect a `sample` of closed prompts with gold answers (e.g. the bench source's `prompts`)",
                "node `{}`: no closed question with a gold answer to score",
                ctx.node
            ));
        }
        let gate = Gate {
            min_accuracy: p.min_accuracy,
            min_gain: p.min_gain,
        };
        let captions = if ctx.has_input("captions") {
            caption_items(ctx)?
        } else {
            Vec::new()
        };
        let rows = score(&items, &captions, &gate);
        let failing: Vec<String> = rows
            .iter()
            .filter(|r| !r.passes)
            .map(|r| {
                format!(
                    "{}/{}: {:.3} (prior {:.3}, n {})",
                    r.task, r.form, r.accuracy, r.prior, r.n
                )
            })
            .collect();
        let mut out = PerceptionRow::into_frame(rows).into_diagnostic()?;
        if !failing.is_empty() {
            let what = format!(
                "node `{}`: the base model does not perceive well enough (gate: every form ≥ {:.2} and ≥ {:.2} above its prior): {}",
                ctx.node,
                gate.min_accuracy,
                gate.min_gain,
                failing.join("; ")
            );
            if p.gate == GateAction::Fail {
                return Err(miette::miette!(
                    code = "judgeflow::perception::gate",
                    help = "train the base model longer, on larger images (objects of at least 2 patches) or more scenes; or set gate = \"warn\"",
                    "{what}"
                ));
            }
            tracing::warn!("{what}");
        }
        ctx.write_frame("perception", &mut out)?;
        Ok(())
    }
}

/// The `captions` input's open answers with the scene each describes: the model's description
/// and, as the blind prior, the next item's gold description, both checked against the scene.
fn caption_items(ctx: &RunContext<'_>) -> miette::Result<Vec<CaptionItem>> {
    let node = ctx.node;
    if !ctx.has_input("scenes") {
        return Err(miette!(
            code = "judgeflow::perception::no_scenes",
            help = "connect the bench source's `scenes` (e.g. `scenes = \"bench.scenes\"`)",
            "node `{node}`: `captions` are checked against scene graphs, but no `scenes` input is connected"
        ));
    }
    let scenes: HashMap<blake3::Hash, Scene> = scenes_by_image(
        node,
        &ctx.input_frame("scenes")?,
        "judgeflow::perception::scene_graph",
    )?
    .into_iter()
    .collect();
    let df = ctx.input_frame("captions")?;
    let open = bools(&df, "open")?;
    let images = bins(&df, "image")?;
    let gold = strs(&df, "gold_answer")?;
    let answers = texts(&df, "answer")?;
    let ids = texts(&df, "prompt_id")?;
    let mut found = Vec::new();
    for i in (0..df.height()).filter(|&i| open[i] == Some(true)) {
        let scene = scenes.get(&blake3::hash(&images[i])).ok_or_else(|| {
            miette!(
                code = "judgeflow::perception::unknown_image",
                help = "sample the open prompts of the same source whose `scenes` are connected",
                "node `{node}`: the image of description `{}` is none of the `scenes` input's",
                ids[i]
            )
        })?;
        found.push((scene, answers[i].as_str(), gold[i].as_deref()));
    }
    if found.is_empty() {
        return Err(miette!(
            code = "judgeflow::perception::no_captions",
            help = "sample the open prompts (`prompts = \"open\"`) into `captions`",
            "node `{node}`: the `captions` input holds no open-ended answer"
        ));
    }
    let n = found.len();
    Ok((0..n)
        .map(|i| {
            let (scene, answer, _) = found[i];
            // The next item of another scene lends its gold description.
            let blind = (1..n)
                .map(|k| found[(i + k) % n])
                .find(|(other, _, gold)| !std::ptr::eq(*other, scene) && gold.is_some())
                .and_then(|(_, _, gold)| gold)
                .unwrap_or("");
            CaptionItem {
                model: check_caption(scene, answer),
                blind: check_caption(scene, blind),
            }
        })
        .collect())
}

/// One description, checked, and its blind prior.
struct CaptionItem {
    model: CaptionCheck,
    blind: CaptionCheck,
}

/// The two description rows: claim precision and object coverage, each against its blind prior.
fn caption_rows(items: &[CaptionItem], gate: &Gate) -> Vec<PerceptionRow> {
    type Count = fn(&CaptionCheck) -> (usize, usize);
    let claims: Count = |c| (c.true_claims(), c.claims.len());
    let objects: Count = |c| (c.covered, c.objects);
    let sum = |f: Count, pick: fn(&CaptionItem) -> &CaptionCheck| {
        items
            .iter()
            .map(|it| f(pick(it)))
            .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
    };
    [("claims", claims), ("objects", objects)]
        .into_iter()
        .map(|(form, f)| {
            let (correct, n) = sum(f, |it| &it.model);
            let (prior_correct, prior_n) = sum(f, |it| &it.blind);
            let prior = if prior_n == 0 {
                0.0
            } else {
                prior_correct as f64 / prior_n as f64
            };
            gate.row("caption", form, correct, n, prior)
        })
        .collect()
}

/// One scored answer.
struct Item {
    task: String,
    gold: String,
    answer: String,
}

/// The thresholds every form must clear.
struct Gate {
    min_accuracy: f64,
    min_gain: f64,
}

impl Gate {
    /// A scored row: `correct` of `n` (no items: accuracy 0, no interval, fails), its
    /// interval, and whether it clears the thresholds over `prior`.
    fn row(&self, task: &str, form: &str, correct: usize, n: usize, prior: f64) -> PerceptionRow {
        let (accuracy, (lo, hi)) = if n == 0 {
            (0.0, (0.0, 0.0))
        } else {
            (correct as f64 / n as f64, wilson(correct, n))
        };
        PerceptionRow {
            task: task.to_string(),
            form: form.to_string(),
            accuracy,
            accuracy_lo: lo,
            accuracy_hi: hi,
            correct: correct as i64,
            n: n as i64,
            prior,
            passes: n > 0 && accuracy >= self.min_accuracy && accuracy - prior >= self.min_gain,
            min_accuracy: self.min_accuracy,
            min_gain: self.min_gain,
        }
    }
}

/// Scores per (task, form), sorted by task then form, then the description rows when there are
/// descriptions, then `overall` (the closed questions: its prior is the item-weighted mean of
/// their forms' priors; it passes when every row passes).
fn score(items: &[Item], captions: &[CaptionItem], gate: &Gate) -> Vec<PerceptionRow> {
    let mut groups: BTreeMap<(&str, &'static str), Vec<&Item>> = BTreeMap::new();
    for it in items {
        let form = if it.gold == "yes" || it.gold == "no" {
            "yes_no"
        } else {
            "word"
        };
        groups.entry((it.task.as_str(), form)).or_default().push(it);
    }
    let mut rows = Vec::new();
    let (mut all_correct, mut prior_mass) = (0usize, 0.0f64);
    for ((task, form), group) in groups {
        let n = group.len();
        let correct = group.iter().filter(|it| it.answer == it.gold).count();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for it in &group {
            *counts.entry(it.gold.as_str()).or_default() += 1;
        }
        let prior = *counts.values().max().expect("non-empty") as f64 / n as f64;
        all_correct += correct;
        prior_mass += prior * n as f64;
        rows.push(gate.row(task, form, correct, n, prior));
    }
    if !captions.is_empty() {
        rows.extend(caption_rows(captions, gate));
    }
    let n = items.len();
    let passes = rows.iter().all(|r| r.passes);
    rows.push(PerceptionRow {
        passes,
        ..gate.row("overall", "all", all_correct, n, prior_mass / n as f64)
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(task: &str, gold: &str, answer: &str) -> Item {
        Item {
            task: task.into(),
            gold: gold.into(),
            answer: answer.into(),
        }
    }

    #[test]
    fn forms_priors_and_the_gate() {
        let gate = Gate {
            min_accuracy: 0.85,
            min_gain: 0.30,
        };
        let mut items = Vec::new();
        // Colour: 10 items, 4 gold "red"; all right.
        for k in 0..10 {
            let g = if k < 4 {
                "red"
            } else {
                ["blue", "green"][k % 2]
            };
            items.push(item("color", g, g));
        }
        // Spatial yes/no: 10 items, 5 yes; "yes" always: accuracy = prior = 0.5.
        for k in 0..10 {
            items.push(item("spatial", ["yes", "no"][k % 2], "yes"));
        }
        // Spatial word form: 4 items, all right.
        for g in ["left", "right", "left", "above"] {
            items.push(item("spatial", g, g));
        }
        let rows = score(&items, &[], &gate);
        let find = |t: &str, f: &str| {
            rows.iter()
                .find(|r| r.task == t && r.form == f)
                .unwrap_or_else(|| panic!("{t}/{f} in {rows:?}"))
        };
        let color = find("color", "word");
        assert_eq!((color.correct, color.n), (10, 10));
        assert!((color.prior - 0.4).abs() < 1e-12);
        assert!(color.passes);
        let yn = find("spatial", "yes_no");
        assert!((yn.accuracy - 0.5).abs() < 1e-12 && (yn.prior - 0.5).abs() < 1e-12);
        assert!(!yn.passes, "at its prior: fails the gain");
        let word = find("spatial", "word");
        assert!((word.prior - 0.5).abs() < 1e-12);
        assert!(word.passes);
        let overall = rows.last().expect("overall");
        assert_eq!(
            (overall.task.as_str(), overall.n, overall.correct),
            ("overall", 24, 19)
        );
        assert!(!overall.passes, "one form fails, so the gate fails");
        assert!(overall.accuracy_lo < overall.accuracy && overall.accuracy < overall.accuracy_hi);
    }

    #[test]
    fn descriptions_score_their_claims_and_coverage_against_a_blind_prior() {
        let gate = Gate {
            min_accuracy: 0.85,
            min_gain: 0.30,
        };
        let config = judgeflow_world::WorldConfig {
            min_objects: 3,
            ..Default::default()
        };
        let scenes: Vec<Scene> = (0..40)
            .map(|seed| judgeflow_world::draw_scene(&config, seed))
            .collect();
        let gold = |k: usize| judgeflow_world::caption(&scenes[k], &mut judgeflow_world::rng(7));
        // A faithful describer, with another scene's gold description as the blind prior.
        let faithful: Vec<CaptionItem> = (0..scenes.len())
            .map(|i| CaptionItem {
                model: check_caption(&scenes[i], &gold(i)),
                blind: check_caption(&scenes[i], &gold((i + 1) % scenes.len())),
            })
            .collect();
        let rows = caption_rows(&faithful, &gate);
        assert_eq!(rows.len(), 2);
        for row in &rows {
            assert_eq!(row.task, "caption");
            assert_eq!(row.correct, row.n, "{row:?}");
            assert!(
                row.prior < 0.55,
                "another scene's description is mostly false: {row:?}"
            );
            assert!(row.passes, "{row:?}");
        }
        // A describer that names one object correctly and nothing else: every claim true, most
        // objects missed, so coverage fails the gate.
        let terse: Vec<CaptionItem> = faithful
            .iter()
            .zip(&scenes)
            .map(|(it, scene)| {
                let o = scene.objects[0];
                let same = scene.count(Some(o.size), Some(o.color), Some(o.shape));
                let text = format!(
                    "We can see {} {} {} {}.",
                    same,
                    o.size.name(),
                    o.color.name(),
                    if same == 1 {
                        o.shape.name()
                    } else {
                        o.shape.plural()
                    }
                );
                CaptionItem {
                    model: check_caption(scene, &text),
                    blind: it.blind.clone(),
                }
            })
            .collect();
        let rows = score(&[item("color", "red", "red")], &terse, &gate);
        let claims = rows
            .iter()
            .find(|r| r.form == "claims")
            .expect("claims row");
        let objects = rows
            .iter()
            .find(|r| r.form == "objects")
            .expect("objects row");
        assert_eq!(claims.correct, claims.n);
        assert!(objects.accuracy < 0.5 && !objects.passes, "{objects:?}");
        assert!(!rows.last().expect("overall").passes);
    }
}
