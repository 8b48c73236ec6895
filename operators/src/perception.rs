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
//! - `gate = "fail"` fails the node when a form misses a threshold (nothing downstream runs);
//!   `"warn"` (the default) logs it and writes `passes = false`; the frame is written either way
//!   with `"warn"`.

use std::collections::BTreeMap;

use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::{FrameRow, PERCEPTION, PerceptionRow, SAMPLES};
use miette::IntoDiagnostic;

use crate::evaluate::wilson;
use crate::frames::{bools, strs, texts};
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
        1
    }
    fn doc(&self) -> &'static str {
        "closed-question accuracy per form on held-out scenes, against the form's prior: the base model's perception gate"
    }
    fn inputs(&self, _: &PerceptionParams) -> Vec<Port> {
        vec![Port::frame("samples", &SAMPLES)]
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
        let rows = score(&items, &gate);
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

/// Scores per (task, form), sorted by task then form, then `overall` (whose prior is the
/// item-weighted mean of the forms' priors, and which passes when every form passes).
fn score(items: &[Item], gate: &Gate) -> Vec<PerceptionRow> {
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
        let accuracy = correct as f64 / n as f64;
        let (lo, hi) = wilson(correct, n);
        all_correct += correct;
        prior_mass += prior * n as f64;
        rows.push(PerceptionRow {
            task: task.to_string(),
            form: form.to_string(),
            accuracy,
            accuracy_lo: lo,
            accuracy_hi: hi,
            correct: correct as i64,
            n: n as i64,
            prior,
            passes: accuracy >= gate.min_accuracy && accuracy - prior >= gate.min_gain,
        });
    }
    let n = items.len();
    let (lo, hi) = wilson(all_correct, n);
    let passes = rows.iter().all(|r| r.passes);
    rows.push(PerceptionRow {
        task: "overall".into(),
        form: "all".into(),
        accuracy: all_correct as f64 / n as f64,
        accuracy_lo: lo,
        accuracy_hi: hi,
        correct: all_correct as i64,
        n: n as i64,
        prior: prior_mass / n as f64,
        passes,
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
        let rows = score(&items, &gate);
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
}
