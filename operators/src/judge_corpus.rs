//! Judge-format pretraining rows whose verdicts follow from their reasoning: the base judge's
//! starting point.
//!
//! The paper's base judge is an instruction-tuned model: it can already compare two answers
//! against an image, weakly. A model trained from scratch on captions and questions cannot, and
//! if its only judge-format examples carry random verdicts (`train`'s `format_fraction`, kept
//! as the control) the first iteration's filter merely injects labels. These rows teach the
//! format *and* a weak version of the skill, without a single bench-like pair:
//!
//! - the question is one of the scene's own prompts, the better answer its gold answer;
//! - the worse answer is **another scene's** gold answer to the same question (for captions:
//!   another scene's caption), so it is wrong about this image in many ways at once: an easy
//!   negative, unlike the bench's and the corruptions' single-error answers;
//! - with probability `hard_share` (0 by default), the worse answer is instead the gold answer
//!   with **one claim corrupted** (an attribute, a count or a spatial relation, by the world's
//!   corruption rules; another scene's answer when no rule applies): a negative as hard as the
//!   bench's, which a judge separates only by checking that claim against the image;
//! - the reasoning is an **independently drawn** caption of the scene ("In the image: ..."),
//!   never a copy of either answer, and the verdict names the position of the answer that
//!   agrees with it. A and B are drawn with a fair coin per row.
//! - with `reasoning = compare`, the reasoning goes on to restate each answer claim by claim,
//!   each claim marked `(true)` or `(false)` against the scene graph (a closed answer is one
//!   claim; a description whose claims all hold but that leaves objects out says so). The
//!   verdict then follows from marks written next to the claims they judge: each decision
//!   the model learns is one claim against the image and the description just above it, not
//!   a whole description held against two answers at once. The answers, their positions and
//!   the description are those of `describe`: the two modes differ in the reasoning only.
//!
//! Reading rows ([`quote_rows`]) draw their answer pairs the same way and ask for one answer by
//! its letter, word for word: the one skill a judge needs that no other row rewards.
//!
//! Contract: every row's verdict names the gold answer's position; the two answers differ after
//! normalisation; rows depend only on the scenes, their prompts and `seed` (not on row order
//! elsewhere); with `hard_share = 0` no extra random draw is made, so the rows are exactly those
//! of the version without hard negatives; `reasoning` changes no draw. A reading row's answer is
//! the shown answer its letter names.

use std::collections::BTreeMap;

use judgeflow_engine::choice_enum;
use judgeflow_world::{
    CorruptionKind, Prompt, Scene, TaskType, WordLists, check_caption, corrupt_text,
};
use rand::Rng;
use rand::seq::IndexedRandom;

use crate::judge_format::{Verdict, judge_prompt, judge_response};
use crate::pairs::normalize_answer;

/// One judge-format row: which scene it shows, the judge prompt, the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JudgeRow {
    pub scene: usize,
    pub prompt: String,
    pub response: String,
    /// Where the gold answer was shown.
    pub gold_at: Verdict,
    /// What the worse answer is.
    pub negative: Negative,
}

choice_enum! {
    /// What a judge-format row's reasoning says before its verdict.
    pub enum JudgeReasoning {
        Describe = "describe",
        Compare = "compare",
        CompareFinal = "compare_final",
        CompareCounts = "compare_counts",
    }
}

/// Where a row's worse answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negative {
    /// Another scene's gold answer to the same question: wrong in many ways at once.
    OtherScene,
    /// The gold answer with one claim corrupted.
    Corrupted(CorruptionKind),
}

/// `per_scene` rows per scene on average (the integer part always, the fraction as a coin),
/// over `scenes[i]` with its prompts `prompts[i]`; `rng_for(i)` gives scene `i`'s own stream;
/// `hard_share` of the rows (a coin per row) get a corrupted gold answer as their negative;
/// `reasoning` picks what the reasoning says (the rows are otherwise the same).
pub(crate) fn judge_rows<R: Rng>(
    scenes: &[&Scene],
    prompts: &[Vec<Prompt>],
    per_scene: f64,
    hard_share: f64,
    reasoning: JudgeReasoning,
    rng_for: impl FnMut(usize) -> R,
) -> Vec<JudgeRow> {
    let pool = AnswerPool::new(prompts);
    let mut out = Vec::new();
    pool.each_pair(per_scene, hard_share, rng_for, |s, pair, rng| {
        let (a, b) = pair.shown();
        let description = judgeflow_world::caption(scenes[s], rng);
        let mut text = format!("In the image: {description}");
        if reasoning != JudgeReasoning::Describe {
            let gold = normalize_answer(&pair.prompt.answer);
            for (letter, answer) in [("A", a), ("B", b)] {
                text.push_str(&format!(" Answer {letter}: "));
                text.push_str(&answer_checks(
                    scenes[s],
                    pair.prompt,
                    answer,
                    &gold,
                    reasoning,
                ));
            }
        }
        out.push(JudgeRow {
            scene: s,
            prompt: judge_prompt(&pair.prompt.question, a, b),
            response: judge_response(&text, pair.gold_at),
            gold_at: pair.gold_at,
            negative: pair.negative,
        });
    });
    out
}

/// A reading row: which scene it shows, a prompt that lists two answers and asks for one of
/// them word for word, and that answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QuoteRow {
    pub scene: usize,
    pub prompt: String,
    pub response: String,
}

/// Reading rows, drawn like [`judge_rows`]' answer pairs (the same question, the same kinds of
/// worse answer, the same positions) but asking for one answer, named by its letter, word for
/// word: the answer is in the text, not the image, so the row is learnt only by reading the
/// prompt back, which a judge must do before it can check an answer and which nothing else in
/// the corpus rewards (every other answer can be written from the image alone). The letter
/// asked for is a fair coin, independent of where the gold answer is.
pub(crate) fn quote_rows<R: Rng>(
    prompts: &[Vec<Prompt>],
    per_scene: f64,
    hard_share: f64,
    rng_for: impl FnMut(usize) -> R,
) -> Vec<QuoteRow> {
    let pool = AnswerPool::new(prompts);
    let mut out = Vec::new();
    pool.each_pair(per_scene, hard_share, rng_for, |s, pair, rng| {
        let (a, b) = pair.shown();
        let (letter, answer) = if rng.random_bool(0.5) {
            ("A", a)
        } else {
            ("B", b)
        };
        out.push(QuoteRow {
            scene: s,
            prompt: format!(
                "Question: {}\nAnswer A: {a}\nAnswer B: {b}\nRepeat answer {letter} word for word.",
                pair.prompt.question
            ),
            response: answer.to_string(),
        });
    });
    out
}

/// How many of a per-scene row count a scene gets: the integer part always, the fraction as a
/// coin from the scene's own stream.
pub(crate) fn rows_for_scene<R: Rng>(per_scene: f64, rng: &mut R) -> usize {
    let whole = per_scene.floor() as usize;
    whole + usize::from(rng.random_bool(per_scene - whole as f64))
}

/// One drawn pair: a scene's prompt, its gold answer against a worse one, and where the gold
/// answer is shown.
struct Pair<'a> {
    prompt: &'a Prompt,
    worse: String,
    gold_at: Verdict,
    negative: Negative,
}

impl Pair<'_> {
    /// The answers as shown: (A, B).
    fn shown(&self) -> (&str, &str) {
        match self.gold_at {
            Verdict::A => (self.prompt.answer.as_str(), self.worse.as_str()),
            Verdict::B => (self.worse.as_str(), self.prompt.answer.as_str()),
        }
    }
}

/// Every scene's gold answers by question (open prompts share one key: any caption answers
/// any description request), where worse answers from other scenes are drawn.
struct AnswerPool<'a> {
    prompts: &'a [Vec<Prompt>],
    /// Each entry: (scene, answer, normalised answer).
    by_question: BTreeMap<&'a str, Vec<(usize, &'a str, String)>>,
    words: WordLists,
}

impl<'a> AnswerPool<'a> {
    fn new(prompts: &'a [Vec<Prompt>]) -> Self {
        let mut by_question: BTreeMap<&str, Vec<(usize, &str, String)>> = BTreeMap::new();
        for (s, ps) in prompts.iter().enumerate() {
            for p in ps {
                by_question.entry(Self::key(p)).or_default().push((
                    s,
                    p.answer.as_str(),
                    normalize_answer(&p.answer),
                ));
            }
        }
        Self {
            prompts,
            by_question,
            words: WordLists::default(),
        }
    }

    fn key(p: &Prompt) -> &str {
        if p.open { "" } else { p.question.as_str() }
    }

    /// `per_scene` pairs per scene on average (the integer part always, the fraction as a
    /// coin), each handed to `row` with the scene's own stream for whatever it draws next.
    fn each_pair<R: Rng>(
        &self,
        per_scene: f64,
        hard_share: f64,
        mut rng_for: impl FnMut(usize) -> R,
        mut row: impl FnMut(usize, &Pair<'a>, &mut R),
    ) {
        for (s, ps) in self.prompts.iter().enumerate() {
            if ps.is_empty() {
                continue;
            }
            let mut rng = rng_for(s);
            let n = rows_for_scene(per_scene, &mut rng);
            for _ in 0..n {
                if let Some(pair) = self.draw(s, ps, hard_share, &mut rng) {
                    row(s, &pair, &mut rng);
                }
            }
        }
    }

    fn draw<R: Rng>(
        &self,
        s: usize,
        ps: &'a [Prompt],
        hard_share: f64,
        rng: &mut R,
    ) -> Option<Pair<'a>> {
        let p = ps.choose(rng).expect("non-empty");
        let gold = normalize_answer(&p.answer);
        let others: Vec<&(usize, &str, String)> = self.by_question[Self::key(p)]
            .iter()
            .filter(|(t, _, a)| *t != s && *a != gold)
            .collect();
        let &&(_, other, _) = others.choose(rng)?;
        // The coin only when hard negatives are asked for: with `hard_share = 0` the stream is
        // the one rows were drawn from before they existed.
        let corrupted = (hard_share > 0.0 && rng.random_bool(hard_share))
            .then(|| corrupt_text(&p.answer, &self.words, &CorruptionKind::ALL, rng))
            .flatten()
            .filter(|c| normalize_answer(&c.text) != gold);
        let (worse, negative) = match corrupted {
            Some(c) => (c.text, Negative::Corrupted(c.kind)),
            None => (other.to_string(), Negative::OtherScene),
        };
        let gold_at = if rng.random_bool(0.5) {
            Verdict::A
        } else {
            Verdict::B
        };
        Some(Pair {
            prompt: p,
            worse,
            gold_at,
            negative,
        })
    }
}

/// One answer restated claim by claim with each claim's truth: "two red circles (true), one
/// blue square (false)." A closed answer is one claim, true when it is the gold answer; a
/// description none of whose sentences reads as a claim is one claim, true when it is the gold
/// description. An all-true description that leaves objects out says how many. A justified
/// answer ("There is 1 circle: a large blue one, so the answer is 1.") is restated whole with
/// `compare`, by its final answer alone with `compare_final` ("the answer is 1 (true)."), and
/// with `compare_counts` by the counts it claims, each marked against the scene, then its final
/// answer ("1 circle (false), the answer is 1 (false)."; a spatial answer, which counts nothing,
/// by its relation claim).
fn answer_checks(
    scene: &Scene,
    prompt: &Prompt,
    answer: &str,
    gold: &str,
    reasoning: JudgeReasoning,
) -> String {
    let mark = |holds: bool| if holds { "(true)" } else { "(false)" };
    let whole = |holds: bool| format!("{} {}.", answer.trim_end_matches('.'), mark(holds));
    if !prompt.open {
        let holds = normalize_answer(answer) == gold;
        let final_answer = |last: &str| {
            format!(
                "the answer is {} {}.",
                last.trim().trim_end_matches('.'),
                mark(holds)
            )
        };
        if prompt.task != TaskType::Reasoning {
            return whole(holds);
        }
        // Why: a small judge does not copy a whole justified answer back (session 23: half of
        // its verdicts on them broke); the final answer after "answer is" is a few tokens. But
        // the final answer alone is marked by whether it is the gold one, which a judge can
        // only know by answering the question itself (session 24: it did not learn to); the
        // counts a justified answer claims are marked against the image as a caption's groups
        // are, and the final answer follows from them.
        return match reasoning {
            JudgeReasoning::CompareFinal => match answer.rsplit_once("answer is") {
                Some((_, last)) => final_answer(last),
                None => whole(holds),
            },
            JudgeReasoning::CompareCounts => {
                // "so the answer is 2", or a corrupted "so the answer are 2": the last word.
                let Some((why, last)) = answer.rsplit_once("so the answer ") else {
                    return whole(holds);
                };
                let last = last.trim().rsplit(' ').next().unwrap_or_default();
                let mut claims = judgeflow_world::count_claims(scene, why);
                if claims.is_empty() {
                    claims = check_caption(scene, why).claims;
                }
                let marked: Vec<String> = claims
                    .iter()
                    .map(|c| format!("{} {}, ", c.text, mark(c.holds)))
                    .collect();
                format!("{}{}", marked.concat(), final_answer(last))
            }
            _ => whole(holds),
        };
    }
    let check = check_caption(scene, answer);
    if check.claims.is_empty() {
        return whole(normalize_answer(answer) == gold);
    }
    let claims: Vec<String> = check
        .claims
        .iter()
        .map(|c| format!("{} {}", c.text, mark(c.holds)))
        .collect();
    let mut text = claims.join(", ");
    let left_out = check.objects.saturating_sub(check.covered);
    if check.all_true() && left_out > 0 {
        let objects = if left_out == 1 { "object" } else { "objects" };
        text.push_str(&format!(", leaves out {left_out} {objects}"));
    }
    text.push('.');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge_format::{parse_verdict, reasoning_of, restates_answers};
    use judgeflow_world::{WorldConfig, draw_scene, prompts_for, rng};

    fn world(n: u64) -> (Vec<Scene>, Vec<Vec<Prompt>>) {
        let scenes: Vec<Scene> = (0..n)
            .map(|i| draw_scene(&WorldConfig::default(), i))
            .collect();
        let prompts = scenes
            .iter()
            .map(|s| prompts_for(s, &mut rng(s.seed)))
            .collect();
        (scenes, prompts)
    }

    /// [`world`], each scene's prompts with two questions asked with their reasoning added.
    fn world_with_reasoning(n: u64) -> (Vec<Scene>, Vec<Vec<Prompt>>) {
        let (scenes, mut prompts) = world(n);
        for (s, ps) in scenes.iter().zip(prompts.iter_mut()) {
            ps.extend(judgeflow_world::reasoning_prompts(
                s,
                2,
                &mut rng(s.seed ^ 7),
            ));
        }
        (scenes, prompts)
    }

    /// A `compare` row's restatements of the gold and the worse answer.
    fn restated(row: &JudgeRow) -> (&str, &str) {
        let reasoning = reasoning_of(&row.response);
        let (_, checks) = reasoning.split_once(" Answer A: ").expect("both restated");
        let (a, b) = checks.split_once(" Answer B: ").expect("B after A");
        match row.gold_at {
            Verdict::A => (a, b),
            Verdict::B => (b, a),
        }
    }

    #[test]
    fn verdicts_name_the_gold_answer_and_positions_are_balanced() {
        let (scenes, prompts) = world(300);
        let refs: Vec<&Scene> = scenes.iter().collect();
        let rows = judge_rows(&refs, &prompts, 1.0, 0.0, JudgeReasoning::Describe, |i| {
            rng(1000 + i as u64)
        });
        assert!(
            rows.len() > 250,
            "most scenes find a cross-scene negative: {}",
            rows.len()
        );
        for r in &rows {
            assert_eq!(
                parse_verdict(&r.response).map(|v| v.0),
                Some(r.gold_at),
                "{r:?}"
            );
            // The gold answer is one of the scene's gold answers, shown where the verdict says.
            let shown = r
                .prompt
                .lines()
                .find(|l| l.starts_with(&format!("Answer {}: ", r.gold_at.letter())))
                .expect("both answers shown");
            let shown = &shown[10..];
            assert!(prompts[r.scene].iter().any(|p| p.answer == shown), "{r:?}");
        }
        let a = rows.iter().filter(|r| r.gold_at == Verdict::A).count() as f64 / rows.len() as f64;
        assert!((0.42..0.58).contains(&a), "A share {a}");
    }

    #[test]
    fn the_reasoning_copies_neither_answer() {
        let (scenes, prompts) = world(200);
        let refs: Vec<&Scene> = scenes.iter().collect();
        let rows = judge_rows(&refs, &prompts, 2.0, 0.0, JudgeReasoning::Describe, |i| {
            rng(7 + i as u64)
        });
        let copies = rows
            .iter()
            .filter(|r| {
                let reasoning = r.response.split(" Overall Judgment").next().expect("text");
                let described = reasoning.trim_start_matches("In the image: ");
                r.prompt.lines().any(|l| {
                    l.strip_prefix("Answer A: ")
                        .or_else(|| l.strip_prefix("Answer B: "))
                        == Some(described)
                })
            })
            .count();
        // An independent caption can coincide with the gold caption by chance (few objects,
        // one phrasing); it must be rare.
        assert!(copies * 10 < rows.len(), "{copies} of {}", rows.len());
    }

    #[test]
    fn same_inputs_same_rows() {
        let (scenes, prompts) = world(40);
        let refs: Vec<&Scene> = scenes.iter().collect();
        let a = judge_rows(&refs, &prompts, 1.5, 0.5, JudgeReasoning::Describe, |i| {
            rng(i as u64)
        });
        let b = judge_rows(&refs, &prompts, 1.5, 0.5, JudgeReasoning::Describe, |i| {
            rng(i as u64)
        });
        assert_eq!(a, b);
    }

    #[test]
    fn hard_negatives_corrupt_one_claim_of_the_gold_answer_and_keep_the_verdict() {
        let (scenes, prompts) = world(300);
        let refs: Vec<&Scene> = scenes.iter().collect();
        let easy = judge_rows(&refs, &prompts, 1.0, 0.0, JudgeReasoning::Describe, |i| {
            rng(1000 + i as u64)
        });
        assert!(easy.iter().all(|r| r.negative == Negative::OtherScene));
        let hard = judge_rows(&refs, &prompts, 1.0, 1.0, JudgeReasoning::Describe, |i| {
            rng(1000 + i as u64)
        });
        let corrupted: Vec<&JudgeRow> = hard
            .iter()
            .filter(|r| matches!(r.negative, Negative::Corrupted(_)))
            .collect();
        assert!(
            corrupted.len() * 2 > hard.len(),
            "most rows find a rule that applies: {} of {}",
            corrupted.len(),
            hard.len()
        );
        let mut kinds = std::collections::BTreeSet::new();
        let mut captions = 0;
        for r in &corrupted {
            assert_eq!(
                parse_verdict(&r.response).map(|v| v.0),
                Some(r.gold_at),
                "{r:?}"
            );
            let answer = |letter: &str| {
                r.prompt
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("Answer {letter}: ")))
                    .expect("both answers shown")
            };
            let (gold, worse) = match r.gold_at {
                Verdict::A => (answer("A"), answer("B")),
                Verdict::B => (answer("B"), answer("A")),
            };
            assert!(prompts[r.scene].iter().any(|p| p.answer == gold), "{r:?}");
            assert_ne!(normalize_answer(gold), normalize_answer(worse), "{r:?}");
            // One claim changed: the corrupted answer keeps most of the gold answer's words,
            // unlike another scene's answer.
            // (Short answers, "2" against "3", have no other words to keep.)
            let gold_words: std::collections::BTreeSet<&str> = gold.split(' ').collect();
            if gold_words.len() >= 4 {
                let kept = worse.split(' ').filter(|w| gold_words.contains(w)).count();
                assert!(kept * 2 >= gold.split(' ').count(), "{gold:?} vs {worse:?}");
                captions += 1;
            }
            if let Negative::Corrupted(kind) = r.negative {
                kinds.insert(format!("{kind:?}"));
            }
        }
        assert!(
            kinds.len() >= 2,
            "more than one kind of corruption: {kinds:?}"
        );
        assert!(captions > 20, "captions are corrupted too: {captions}");
    }

    /// Questions asked with their reasoning in the pool: their rows restate each justified
    /// answer whole, marked by its final answer, and the verdict names the gold one.
    #[test]
    fn justified_answers_are_restated_whole_and_marked_by_their_final_answer() {
        let (scenes, prompts) = world_with_reasoning(300);
        let refs: Vec<&Scene> = scenes.iter().collect();
        let rows = judge_rows(&refs, &prompts, 2.0, 0.5, JudgeReasoning::Compare, |i| {
            rng(11 + i as u64)
        });
        let mut justified = 0;
        for r in rows
            .iter()
            .filter(|r| r.prompt.contains("so the answer is"))
        {
            justified += 1;
            assert_eq!(parse_verdict(&r.response).map(|v| v.0), Some(r.gold_at));
            let (gold, worse) = restated(r);
            assert!(
                gold.contains("so the answer is") && gold.ends_with("(true)."),
                "{r:?}"
            );
            assert!(worse.ends_with("(false)."), "{r:?}");
            assert_ne!(normalize_answer(gold), normalize_answer(worse), "{r:?}");
        }
        assert!(justified > 50, "{justified} rows over justified answers");
    }

    /// `compare_final`: the same rows as `compare`, but a justified answer is restated by its
    /// final answer alone, marked the same; every other answer as `compare` restates it.
    #[test]
    fn compare_final_restates_a_justified_answer_by_its_final_answer() {
        let (justified, same) = justified_rows_against_compare(JudgeReasoning::CompareFinal, 13);
        for f in &justified {
            let (gold, worse) = restated(f);
            assert!(
                gold.starts_with("the answer is ") && gold.ends_with(" (true)."),
                "{f:?}"
            );
            assert!(
                worse.starts_with("the answer is ") && worse.ends_with(" (false)."),
                "{f:?}"
            );
            assert!(!gold.contains(':') && !worse.contains(':'), "{f:?}");
            // The restated final answers are the shown answers' final answers.
            let shown_gold = answer_shown(&f.prompt, f.gold_at.letter());
            assert_eq!(
                normalize_answer(gold.trim_end_matches(" (true).")),
                normalize_answer(shown_gold),
                "{f:?}"
            );
        }
        assert!(
            justified.len() > 50 && same > 50,
            "{} justified, {same} others",
            justified.len()
        );
    }

    /// Rows with `reasoning` over [`world_with_reasoning`]'s 300 scenes, drawn with
    /// `rng(seed + i)`, against `compare` rows drawn the same way: the same prompts and
    /// verdicts, each verdict the gold answer's, and every row that judges no justified answer
    /// byte for byte `compare`'s. Returns the rows that judge justified answers, and how many
    /// others there were.
    fn justified_rows_against_compare(
        reasoning: JudgeReasoning,
        seed: u64,
    ) -> (Vec<JudgeRow>, usize) {
        let (scenes, prompts) = world_with_reasoning(300);
        let refs: Vec<&Scene> = scenes.iter().collect();
        let draw = |reasoning| {
            judge_rows(&refs, &prompts, 2.0, 0.5, reasoning, |i| {
                rng(seed + i as u64)
            })
        };
        let (whole, rows) = (draw(JudgeReasoning::Compare), draw(reasoning));
        assert_eq!(whole.len(), rows.len());
        let (mut justified, mut same) = (Vec::new(), 0);
        for (w, r) in whole.iter().zip(rows) {
            assert_eq!((&w.prompt, w.gold_at), (&r.prompt, r.gold_at));
            assert_eq!(parse_verdict(&r.response).map(|v| v.0), Some(r.gold_at));
            if w.prompt.contains("so the answer is") {
                justified.push(r);
            } else {
                same += 1;
                assert_eq!(w.response, r.response);
            }
        }
        (justified, same)
    }

    /// `compare_counts`: a justified answer is restated by the counts it claims, each marked
    /// against the scene, then its final answer; the gold answer's marks are all true, the
    /// worse answer's final answer false, and every restatement quotes its answer (what the
    /// filter's `faithful` asks). Every other row is `compare`'s, byte for byte.
    #[test]
    fn compare_counts_restates_a_justified_answer_by_its_counts_and_final_answer() {
        let (justified, same) = justified_rows_against_compare(JudgeReasoning::CompareCounts, 17);
        let (mut with_counts, mut wrong_count) = (0, 0);
        for c in &justified {
            let (gold, worse) = restated(c);
            assert!(
                gold.ends_with(" (true).") && worse.ends_with(" (false)."),
                "{c:?}"
            );
            assert!(!gold.contains("(false)"), "{c:?}");
            assert!(!gold.contains(':') && !worse.contains(':'), "{c:?}");
            with_counts += usize::from(gold.matches("(true)").count() > 1);
            wrong_count += usize::from(worse.matches("(false)").count() > 1);
            let (a, b) = (answer_shown(&c.prompt, "A"), answer_shown(&c.prompt, "B"));
            assert_eq!(
                restates_answers(reasoning_of(&c.response), a, b),
                Some(true),
                "{c:?}"
            );
        }
        let justified = justified.len();
        assert!(
            justified > 50 && same > 50,
            "{justified} justified, {same} others"
        );
        // Counting and comparison answers claim counts (spatial ones a relation); most worse
        // answers miscount something besides their final answer.
        assert!(
            with_counts * 10 > justified * 9,
            "{with_counts} of {justified}"
        );
        assert!(wrong_count * 2 > justified, "{wrong_count} of {justified}");
    }

    /// The answer shown under `letter` in a judge prompt.
    fn answer_shown<'p>(prompt: &'p str, letter: &str) -> &'p str {
        prompt
            .split(&format!("\nAnswer {letter}: "))
            .nth(1)
            .and_then(|t| t.lines().next())
            .expect("both answers shown")
    }

    #[test]
    fn compare_rows_mark_every_claim_and_differ_from_describe_only_in_the_reasoning() {
        let (scenes, prompts) = world(300);
        let refs: Vec<&Scene> = scenes.iter().collect();
        let describe = judge_rows(&refs, &prompts, 2.0, 0.5, JudgeReasoning::Describe, |i| {
            rng(5 + i as u64)
        });
        let compare = judge_rows(&refs, &prompts, 2.0, 0.5, JudgeReasoning::Compare, |i| {
            rng(5 + i as u64)
        });
        assert_eq!(describe.len(), compare.len());
        let (mut open, mut closed, mut left_out) = (0, 0, 0);
        for (d, c) in describe.iter().zip(&compare) {
            assert_eq!(
                (d.scene, &d.prompt, d.gold_at, d.negative),
                (c.scene, &c.prompt, c.gold_at, c.negative)
            );
            let described = reasoning_of(&d.response);
            let reasoning = reasoning_of(&c.response);
            let checks = reasoning
                .strip_prefix(described)
                .unwrap_or_else(|| panic!("starts with the description: {c:?}"));
            assert!(checks.starts_with(" Answer A: "), "A first: {c:?}");
            assert_eq!(parse_verdict(&c.response).map(|v| v.0), Some(c.gold_at));
            // The gold answer's restatement holds throughout; the other's has a false claim,
            // or leaves objects out.
            let (gold, worse) = restated(c);
            assert!(
                gold.contains("(true)") && !gold.contains("(false)"),
                "{c:?}"
            );
            assert!(!gold.contains("leaves out"), "{c:?}");
            assert!(
                worse.contains("(false)") || worse.contains("leaves out"),
                "{c:?}"
            );
            if worse.contains("leaves out") {
                left_out += 1;
            }
            if c.prompt.contains("Describe") || gold.matches("(true)").count() > 1 {
                open += 1;
            } else {
                closed += 1;
            }
        }
        assert!(open > 50 && closed > 50, "open {open}, closed {closed}");
        assert!(left_out * 10 < compare.len(), "left out {left_out}");
    }

    #[test]
    fn quote_rows_ask_for_one_shown_answer_and_either_letter() {
        let (_, prompts) = world(300);
        let rows = quote_rows(&prompts, 2.0, 0.5, |i| rng(11 + i as u64));
        assert!(rows.len() > 500, "{}", rows.len());
        let (mut a, mut gold) = (0, 0);
        for r in &rows {
            let line = |prefix: &str| {
                r.prompt
                    .lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .unwrap_or_else(|| panic!("{prefix:?} in {r:?}"))
            };
            let asked = if r.prompt.ends_with("Repeat answer A word for word.") {
                a += 1;
                line("Answer A: ")
            } else {
                assert!(
                    r.prompt.ends_with("Repeat answer B word for word."),
                    "{r:?}"
                );
                line("Answer B: ")
            };
            assert_eq!(r.response, asked, "{r:?}");
            assert_ne!(
                normalize_answer(line("Answer A: ")),
                normalize_answer(line("Answer B: "))
            );
            let question = line("Question: ");
            if prompts[r.scene]
                .iter()
                .any(|p| p.question == question && p.answer == r.response)
            {
                gold += 1;
            }
        }
        // Either letter, and the gold answer about as often as the worse one: the image does
        // not tell which to write.
        let share = |k: usize| k as f64 / rows.len() as f64;
        assert!((0.42..0.58).contains(&share(a)), "A asked {}", share(a));
        assert!(
            (0.42..0.58).contains(&share(gold)),
            "gold asked {}",
            share(gold)
        );
    }
}
