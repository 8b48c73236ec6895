//! `op = "vote"`: pairs from the sampled answers to closed-ended prompts.
//!
//! `method = "majority"` (the paper's label-free method): answers are normalised
//! ([`normalize_answer`]); the most frequent answer wins if it has at least `min_votes` votes
//! and no other answer ties it; the preferred answer is a sample with the majority answer and
//! the rejected one a sample with a different answer (seeded choices): with `rejected =
//! "random"` (the paper) a different answer drawn uniformly among the distinct ones, with
//! `"runner_up"` the most frequent different answer (a harder, more plausible negative). `method = "oracle"`: the
//! gold answer decides instead (a sample equal to gold against one that is not). Prompts
//! without a valid pair are listed in `unpaired` with the reason. `max_pairs` caps the output
//! (a seeded subset), so that majority and oracle can be compared at matched data size.
//!
//! `label_correct` records whether the preferred answer equals the gold answer where one is
//! known: a diagnostic of label quality, never used for training.

use std::collections::BTreeMap;

use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::{PAIRS, SAMPLES, UNPAIRED};
use rand::SeedableRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::frames::{bins, bools, strs, texts};
use crate::model_kit::row_seed;
use crate::pairs::{PairRow, UnpairedRow, normalize_answer, pairs_frame, unpaired_frame};

choice_enum! {
    /// Who decides which answer is preferred.
    pub enum Method {
        Majority = "majority",
        Oracle = "oracle",
    }
}

choice_enum! {
    /// Which different answer is rejected.
    pub enum Rejected {
        Random = "random",
        RunnerUp = "runner_up",
    }
}

operator_params! {
    /// The vote's parameters.
    pub struct VoteParams {
        /// who decides which answer is preferred
        method: Method = Method::Majority,
        /// majority: votes the winning answer needs
        min_votes: usize [1..=1024] = 2,
        /// which different answer is rejected: a random one (the paper) or the most frequent
        rejected: Rejected = Rejected::Random,
        /// pairs per prompt (distinct rejected answers first)
        pairs_per_prompt: usize [1..=64] = 1,
        /// keep at most this many pairs (0: all), a seeded subset
        max_pairs: usize [0..=100_000_000] = 0,
    }
}

/// Majority (or oracle) vote over sampled answers.
pub struct Vote;

impl TypedOperator for Vote {
    type Params = VoteParams;
    fn name(&self) -> &'static str {
        "vote"
    }
    fn version(&self) -> u32 {
        // 2: `rejected` (random by default; 1 always took the runner-up).
        2
    }
    fn doc(&self) -> &'static str {
        "closed-ended pairs: majority answer preferred over a different sampled answer (or gold decides: oracle)"
    }
    fn inputs(&self, _: &VoteParams) -> Vec<Port> {
        vec![Port::frame("samples", &SAMPLES)]
    }
    fn outputs(&self, _: &VoteParams) -> Vec<Port> {
        vec![
            Port::frame("pairs", &PAIRS),
            Port::frame("unpaired", &UNPAIRED),
        ]
    }
    fn run(&self, p: &VoteParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("samples")?;
        let ids = texts(&df, "prompt_id")?;
        let open = bools(&df, "open")?;
        let answers = texts(&df, "answer")?;
        let gold = strs(&df, "gold_answer")?;
        let questions = texts(&df, "question")?;
        let tasks = texts(&df, "task")?;
        let sources = texts(&df, "source")?;
        let images = bins(&df, "image")?;
        let oracle = p.method == Method::Oracle;
        let min_votes = p.min_votes;
        let per_prompt = p.pairs_per_prompt;
        let runner_up = p.rejected == Rejected::RunnerUp;

        // Rows of each closed prompt, in first-appearance order.
        let mut prompts: Vec<(String, Vec<usize>)> = Vec::new();
        let mut at: BTreeMap<&str, usize> = BTreeMap::new();
        for i in 0..df.height() {
            if open[i] != Some(false) {
                continue;
            }
            let slot = *at.entry(ids[i].as_str()).or_insert_with(|| {
                prompts.push((ids[i].clone(), Vec::new()));
                prompts.len() - 1
            });
            prompts[slot].1.push(i);
        }

        let mut pairs = Vec::new();
        let mut unpaired = Vec::new();
        for (prompt_id, rows) in &prompts {
            let first = rows[0];
            let mut rng = ChaCha8Rng::seed_from_u64(row_seed(ctx.seed, &[prompt_id]));
            let norm: Vec<String> = rows
                .iter()
                .map(|&r| normalize_answer(&answers[r]))
                .collect();
            let gold_norm = gold[first].as_deref().map(normalize_answer);
            let decided = if oracle {
                match &gold_norm {
                    None => Err("no gold answer (oracle needs one)".to_string()),
                    Some(g) if !norm.contains(g) => Err("no sample matches the gold answer".into()),
                    Some(g) => Ok(g.clone()),
                }
            } else {
                majority(&norm, min_votes)
            };
            let winner = match decided {
                Ok(w) => w,
                Err(reason) => {
                    unpaired.push(UnpairedRow {
                        prompt_id: prompt_id.clone(),
                        task: tasks[first].clone(),
                        reason,
                    });
                    continue;
                }
            };
            let good: Vec<usize> = (0..rows.len()).filter(|&k| norm[k] == winner).collect();
            // Rejected candidates: one sample per distinct other answer (empty answers never
            // count as an answer), most frequent first.
            let mut others: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (k, answer) in norm.iter().enumerate().take(rows.len()) {
                if *answer != winner && !answer.is_empty() {
                    others.entry(answer.as_str()).or_default().push(k);
                }
            }
            if others.is_empty() {
                unpaired.push(UnpairedRow {
                    prompt_id: prompt_id.clone(),
                    task: tasks[first].clone(),
                    reason: "every sample gives the same answer".into(),
                });
                continue;
            }
            let mut distinct: Vec<Vec<usize>> = others.into_values().collect();
            if runner_up {
                distinct.sort_by_key(|v| std::cmp::Reverse(v.len()));
            } else {
                distinct.shuffle(&mut rng);
            }
            for (j, candidates) in distinct.iter().take(per_prompt).enumerate() {
                let c = rows[*good.choose(&mut rng).expect("the winner has samples")];
                let r = rows[*candidates.choose(&mut rng).expect("non-empty")];
                pairs.push(PairRow {
                    pair_id: format!("{prompt_id}-v{j}"),
                    prompt_id: prompt_id.clone(),
                    image: images[first].clone(),
                    question: questions[first].clone(),
                    chosen: answers[c].clone(),
                    rejected: answers[r].clone(),
                    task: tasks[first].clone(),
                    kind: if oracle { "oracle" } else { "majority" }.into(),
                    source: sources[first].clone(),
                    label_correct: gold_norm.as_ref().map(|g| *g == winner),
                });
            }
        }
        let cap = p.max_pairs;
        if cap > 0 && pairs.len() > cap {
            let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
            pairs.shuffle(&mut rng);
            pairs.truncate(cap);
            pairs.sort_by(|a, b| a.pair_id.cmp(&b.pair_id));
        }
        tracing::info!(
            node = ctx.node,
            prompts = prompts.len(),
            pairs = pairs.len(),
            unpaired = unpaired.len(),
            "voted"
        );
        ctx.write_frame("pairs", &mut pairs_frame(pairs)?)?;
        ctx.write_frame("unpaired", &mut unpaired_frame(unpaired)?)?;
        Ok(())
    }
}

/// The majority answer among normalised answers, or why there is none.
fn majority(norm: &[String], min_votes: usize) -> Result<String, String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in norm.iter().filter(|a| !a.is_empty()) {
        *counts.entry(a).or_default() += 1;
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    match ranked.as_slice() {
        [] => Err("no non-empty answer".into()),
        [(_, n), ..] if *n < min_votes => Err(format!(
            "the most common answer has {n} votes, below min_votes = {min_votes}"
        )),
        [(_, n), (_, m), ..] if n == m => Err(format!(
            "a tie between the two most common answers ({n} votes each)"
        )),
        [(w, _), ..] => Ok((*w).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::majority;

    #[test]
    fn majority_needs_votes_and_no_tie() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(majority(&v(&["2", "2", "3"]), 2), Ok("2".into()));
        assert!(majority(&v(&["2", "3"]), 1).unwrap_err().contains("tie"));
        assert!(
            majority(&v(&["2", "3", "4"]), 2)
                .unwrap_err()
                .contains("below")
        );
        assert!(majority(&v(&["", ""]), 1).is_err());
        assert_eq!(majority(&v(&["", "", "5"]), 1), Ok("5".into()));
    }
}
