//! `op = "evaluate"`: a judge's accuracy on a preference benchmark (the world's gold bench,
//! VL-RewardBench, Multimodal RewardBench — any `bench` frame).
//!
//! Scoring follows VL-RewardBench's official rules, made explicit by parameters: each item is
//! judged `samples` times, each time in a seeded random A/B order; the item's result is the
//! majority of its parsed verdicts; items whose verdicts tie, or that have no parsed verdict at
//! all, leave the denominator and are counted (`ties`, `unparseable`). `overall` pools all
//! items, `macro` is the mean of the dimensions' accuracies. `a_share` is the share of parsed
//! verdicts that named the answer shown first: 0.5 is unbiased.
//!
//! Every accuracy comes with a 95% interval (`accuracy_lo`, `accuracy_hi`): Wilson's score
//! interval of `correct` out of `n`; for `macro`, a normal interval of the mean of the
//! dimensions' accuracies with Agresti–Caffo-adjusted variances (so a dimension at 0 or 1 still
//! contributes uncertainty). Next to it, on exactly the items this node scored, the text-only
//! baselines a judge must beat to show it reads the image: the share of items where the better
//! answer is the shorter one (`shorter_wins`) or the longer one (`longer_wins`), by characters,
//! and the same by words (`*_words`); equal lengths count one half. `image = "blank"` scores a
//! blind judge: the same checkpoint with every image replaced by a uniform grey one of the same
//! size, so what it gets right it gets from the text; the `image` column records which.
//! `image = "other"` is the second blind judge: each item is shown a real picture of another
//! item (a seeded derangement of the distinct images, so never its own). A grey image is itself
//! evidence, that nothing is there: a judge that reads it well prefers every answer that
//! denies an object and scores below 0.5 wherever the better answers claim one. Another
//! scene's picture looks like the item's images and says nothing about its answers.

use std::collections::BTreeMap;

use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::{BENCH, FrameRow, JUDGEMENTS, METRICS, MetricsRow};
use miette::IntoDiagnostic;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::frames::{binary_column, bins, frame_error, strs, texts};
use crate::judge_format::Verdict;
use crate::judging::{JudgingParams, Shown, judge_items};
use crate::model_kit::row_seed;

choice_enum! {
    /// The image an item is judged with.
    pub enum ImageMode {
        Scene = "scene",
        Blank = "blank",
        Other = "other",
    }
}

operator_params! {
    /// The evaluation's parameters.
    pub struct EvaluateParams {
        /// judgements per item, each in a random order (VL-RewardBench: 10 at T 0.2)
        samples: usize [1..=64] = 10,
        /// score at most this many items (0: all), a seeded subset
        limit: usize [0..=100_000_000] = 0,
        /// the item's image; `blank`: a uniform grey one of the same size; `other`: another
        /// item's image (both are blind judges)
        image: ImageMode = ImageMode::Scene,
        ..judging: JudgingParams { generate.sampling.temperature = 0.2 },
    }
}

/// Scores a judge on a benchmark.
pub struct Evaluate;

impl TypedOperator for Evaluate {
    type Params = EvaluateParams;
    fn name(&self) -> &'static str {
        "evaluate"
    }
    fn version(&self) -> u32 {
        2
    }
    fn doc(&self) -> &'static str {
        "judge accuracy per dimension, overall and macro; k samples in random order, per-item majority, ties and unparseable counted"
    }
    fn inputs(&self, _: &EvaluateParams) -> Vec<Port> {
        vec![
            Port::frame("bench", &BENCH),
            Port::artifact("model", "checkpoint"),
        ]
    }
    fn outputs(&self, _: &EvaluateParams) -> Vec<Port> {
        vec![
            Port::frame("metrics", &METRICS),
            Port::frame("judgements", &JUDGEMENTS),
        ]
    }
    fn gpus(&self, p: &EvaluateParams) -> u32 {
        p.judging.generate.device.gpus()
    }
    fn environment(&self, p: &EvaluateParams) -> Vec<&'static str> {
        p.judging.generate.device.environment(&[])
    }
    /// Bench items are independent (each judged from its own seeds); the metrics aggregate
    /// over them and are recomputed from the joined judgements. Not with `limit`, whose subset
    /// is chosen among all items.
    fn row_shards(&self, p: &EvaluateParams) -> Option<&'static str> {
        (p.limit == 0).then_some("bench")
    }
    fn finish_shards(
        &self,
        p: &EvaluateParams,
        outputs: &mut BTreeMap<&'static str, polars::prelude::DataFrame>,
    ) -> miette::Result<()> {
        let judgements = outputs.get("judgements").ok_or_else(|| {
            miette::miette!(
                code = "judgeflow::evaluate::join",
                "no joined `judgements` to score"
            )
        })?;
        let metrics = metrics_frame(&scores_from_judgements(judgements)?, p.image.as_str())?;
        outputs.insert("metrics", metrics);
        Ok(())
    }
    fn run(&self, p: &EvaluateParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let df = ctx.input_frame("bench")?;
        let ids = texts(&df, "pair_id")?;
        let a = texts(&df, "answer_a")?;
        let b = texts(&df, "answer_b")?;
        let better = texts(&df, "better")?;
        let mut items: Vec<usize> = (0..df.height())
            .filter(|&i| Verdict::from_letter(&better[i]).is_some())
            .collect();
        let bad = df.height() - items.len();
        if bad > 0 {
            tracing::warn!(
                node = ctx.node,
                bad,
                "items without a valid `better` (A/B) are not scored"
            );
        }
        let limit = p.limit;
        if limit > 0 && items.len() > limit {
            items.sort_by_key(|&i| row_seed(ctx.seed, &[&ids[i], "select"]));
            items.truncate(limit);
            items.sort_unstable();
        }
        let k = p.samples;
        let mut shown = Vec::with_capacity(items.len() * k);
        for &i in &items {
            let truth = Verdict::from_letter(&better[i]).expect("filtered above");
            for s in 0..k {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(row_seed(ctx.seed, &[&ids[i], &s.to_string()]));
                let swap = rng.random_bool(0.5);
                let (answer_a, answer_b, preferred) = if swap {
                    (b[i].clone(), a[i].clone(), truth.flip())
                } else {
                    (a[i].clone(), b[i].clone(), truth)
                };
                shown.push(Shown {
                    pair: i,
                    order: if swap { "BA" } else { "AB" },
                    answer_a,
                    answer_b,
                    preferred,
                    seed: rng.random(),
                });
            }
        }
        let image = p.image.as_str();
        let replaced = match p.image {
            ImageMode::Scene => None,
            ImageMode::Blank => Some(blank_images(&bins(&df, "image")?, &ids)?),
            ImageMode::Other => Some(other_images(
                ctx.node,
                &bins(&df, "image")?,
                row_seed(ctx.seed, &["other images"]),
            )?),
        };
        let df = match replaced {
            Some(images) => {
                let mut df = df;
                df.with_column(binary_column("image", &images))
                    .map_err(frame_error(ctx.node, "replacing the image column"))?;
                df
            }
            None => df,
        };
        let (_, mut judgements) = judge_items(ctx, &p.judging, &df, "dimension", &shown)?;
        // The scores come from the judgements frame alone, so that row shards, whose joined
        // judgements are this frame, recompute exactly these metrics (`finish_shards`).
        let scores = scores_from_judgements(&judgements)?;
        let mut metrics = metrics_frame(&scores, image)?;
        if let Some(overall) = scores.iter().find(|s| s.dimension == "overall") {
            let (lo, hi) = overall.interval();
            tracing::info!(
                node = ctx.node,
                accuracy = overall.accuracy(),
                lo,
                hi,
                n = overall.n,
                shorter_wins = overall.shorter_wins(),
                image = %image,
                "evaluated"
            );
        }
        ctx.write_frame("metrics", &mut metrics)?;
        ctx.write_frame("judgements", &mut judgements)?;
        Ok(())
    }
}

/// The scores of an evaluation from its `judgements` frame: items are its `pair_id`s in order
/// of first appearance, each item's dimension its `kind`, its better answer the one at
/// `preferred` (whichever order it was shown in), its votes the parsed `verdict`s.
fn scores_from_judgements(judgements: &polars::prelude::DataFrame) -> miette::Result<Vec<Score>> {
    let ids = texts(judgements, "pair_id")?;
    let kinds = texts(judgements, "kind")?;
    let shown_a = texts(judgements, "answer_a")?;
    let shown_b = texts(judgements, "answer_b")?;
    let preferred = texts(judgements, "preferred")?;
    let verdicts = strs(judgements, "verdict")?;
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut dims, mut a, mut b, mut better) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut shown = Vec::with_capacity(ids.len());
    for r in 0..ids.len() {
        let pair = *index.entry(ids[r].as_str()).or_insert_with(|| {
            dims.push(kinds[r].clone());
            a.push(shown_a[r].clone());
            b.push(shown_b[r].clone());
            better.push(preferred[r].clone());
            dims.len() - 1
        });
        let preferred = Verdict::from_letter(&preferred[r]).ok_or_else(|| {
            miette::miette!(
                code = "judgeflow::evaluate::preferred",
                "judgement {r}: `preferred` is {:?}, not A or B",
                preferred[r]
            )
        })?;
        shown.push(Shown {
            pair,
            order: "",
            answer_a: String::new(),
            answer_b: String::new(),
            preferred,
            seed: 0,
        });
    }
    let mut scores = score(
        &shown,
        verdicts
            .iter()
            .map(|v| v.as_deref().and_then(Verdict::from_letter)),
        &dims,
    );
    let items: Vec<usize> = (0..dims.len()).collect();
    add_text_baselines(&mut scores, &items, &a, &b, &better, &dims);
    Ok(scores)
}

/// A uniform grey PNG of each image's size (one encoding per distinct size). Grey carries no
/// colour, shape or position, and keeps the image preprocessing (and so the prompt's image
/// tokens) exactly as with the real image.
fn blank_images(images: &[Vec<u8>], ids: &[String]) -> miette::Result<Vec<Vec<u8>>> {
    let mut by_size: BTreeMap<(u32, u32), Vec<u8>> = BTreeMap::new();
    images
        .iter()
        .zip(ids)
        .map(|(bytes, id)| {
            let size = image::ImageReader::new(std::io::Cursor::new(bytes))
                .with_guessed_format()
                .ok()
                .and_then(|r| r.into_dimensions().ok())
                .ok_or_else(|| {
                    miette::miette!(
                        code = "judgeflow::model::image",
                        "bench item {id}: the image does not decode, so no blank of its size can be made"
                    )
                })?;
            Ok(by_size
                .entry(size)
                .or_insert_with(|| {
                    judgeflow_world::encode_png(&image::RgbImage::from_pixel(
                        size.0,
                        size.1,
                        image::Rgb([128, 128, 128]),
                    ))
                })
                .clone())
        })
        .collect()
}

/// Each image replaced by a different one of the same frame: the distinct images (by their
/// bytes) in a seeded random cycle, each mapped to the next, so no item keeps its own picture
/// and items that shared a picture share the replacement.
fn other_images(node: &str, images: &[Vec<u8>], seed: u64) -> miette::Result<Vec<Vec<u8>>> {
    use rand::seq::SliceRandom;
    let mut distinct: Vec<&[u8]> = Vec::new();
    let mut index: BTreeMap<&[u8], usize> = BTreeMap::new();
    for image in images {
        index.entry(image.as_slice()).or_insert_with(|| {
            distinct.push(image);
            distinct.len() - 1
        });
    }
    if distinct.len() < 2 {
        return Err(miette::miette!(
            code = "judgeflow::evaluate::other_image",
            help = "use image = \"blank\" for a blind judge on a bench with a single picture",
            "node `{node}`: image = \"other\" needs at least two different images in the bench, \
             found {}",
            distinct.len()
        ));
    }
    let mut cycle: Vec<usize> = (0..distinct.len()).collect();
    cycle.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut next = vec![0; distinct.len()];
    for (k, &d) in cycle.iter().enumerate() {
        next[d] = cycle[(k + 1) % cycle.len()];
    }
    Ok(images
        .iter()
        .map(|image| distinct[next[index[image.as_slice()]]].to_vec())
        .collect())
}

/// Two-sided 95% normal quantile.
const Z95: f64 = 1.959_963_984_540_054;

/// Wilson's 95% score interval for `correct` successes out of `n` (NaN when `n` is 0). Unlike
/// the normal interval it stays inside [0, 1] and is not degenerate at 0 or `n` successes.
pub(crate) fn wilson(correct: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (n, p) = (n as f64, correct as f64 / n as f64);
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// One row of the metrics frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Score {
    pub dimension: String,
    pub correct: usize,
    pub n: usize,
    pub ties: usize,
    pub unparseable: usize,
    pub said_a: usize,
    pub parsed: usize,
    /// Set for `macro`: the mean of the dimensions' accuracies and its 95% interval.
    pub macro_accuracy: Option<(f64, f64, f64)>,
    /// Items scored by the text baselines: every evaluated item, ties and unparseable included.
    pub items: usize,
    /// Items where the better answer is the shorter by characters (equal lengths: 1/2).
    pub shorter: f64,
    /// The same by words.
    pub shorter_by_words: f64,
    /// Set for `macro`: the dimensions' mean baselines (characters, words).
    pub macro_baselines: Option<(f64, f64)>,
}

impl Score {
    pub fn accuracy(&self) -> f64 {
        self.macro_accuracy
            .map_or_else(|| share(self.correct as f64, self.n), |m| m.0)
    }

    /// The accuracy's 95% interval (see the module header).
    pub fn interval(&self) -> (f64, f64) {
        self.macro_accuracy
            .map_or_else(|| wilson(self.correct, self.n), |m| (m.1, m.2))
    }

    /// Share of items "the shorter answer is better" gets right, by characters.
    pub fn shorter_wins(&self) -> f64 {
        self.macro_baselines
            .map_or_else(|| share(self.shorter, self.items), |m| m.0)
    }

    /// The same by words.
    pub fn shorter_wins_by_words(&self) -> f64 {
        self.macro_baselines
            .map_or_else(|| share(self.shorter_by_words, self.items), |m| m.1)
    }
}

/// `won / of`, NaN when there is nothing to share.
fn share(won: f64, of: usize) -> f64 {
    if of == 0 { f64::NAN } else { won / of as f64 }
}

/// How "the shorter answer is better" fares on one item: 1 when the better answer is shorter,
/// 1/2 when both are as long, 0 otherwise; by characters and by words.
fn shorter_wins_item(better: &str, worse: &str) -> (f64, f64) {
    let (b, w) = (
        judgeflow_world::text_length(better),
        judgeflow_world::text_length(worse),
    );
    let win = |x: usize, y: usize| match x.cmp(&y) {
        std::cmp::Ordering::Less => 1.0,
        std::cmp::Ordering::Equal => 0.5,
        std::cmp::Ordering::Greater => 0.0,
    };
    (win(b.0, w.0), win(b.1, w.1))
}

/// Fills the text baselines of `scores` from the evaluated `items` of the bench (`a`, `b`, the
/// `better` letter and `dims` per bench row): per dimension, pooled for `overall`, the mean of
/// the dimensions for `macro`.
fn add_text_baselines(
    scores: &mut [Score],
    items: &[usize],
    a: &[String],
    b: &[String],
    better: &[String],
    dims: &[String],
) {
    for &i in items {
        let (good, bad) = if Verdict::from_letter(&better[i]) == Some(Verdict::A) {
            (&a[i], &b[i])
        } else {
            (&b[i], &a[i])
        };
        let (chars, words) = shorter_wins_item(good, bad);
        for s in scores
            .iter_mut()
            .filter(|s| s.dimension == dims[i] || s.dimension == "overall")
        {
            s.items += 1;
            s.shorter += chars;
            s.shorter_by_words += words;
        }
    }
    let per_dim: Vec<(f64, f64)> = scores
        .iter()
        .filter(|s| s.macro_accuracy.is_none() && s.dimension != "overall" && s.items > 0)
        .map(|s| (s.shorter_wins(), s.shorter_wins_by_words()))
        .collect();
    let k = per_dim.len() as f64;
    let total = items.len();
    for s in scores.iter_mut().filter(|s| s.macro_accuracy.is_some()) {
        s.items = total;
        s.macro_baselines = Some(if per_dim.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (
                per_dim.iter().map(|p| p.0).sum::<f64>() / k,
                per_dim.iter().map(|p| p.1).sum::<f64>() / k,
            )
        });
    }
}

/// Per-item majority over the item's parsed verdicts, then per-dimension, overall and macro
/// scores. `shown[j]` was judged `verdicts[j]`; items are grouped by `shown[j].pair`.
pub(crate) fn score(
    shown: &[Shown],
    verdicts: impl Iterator<Item = Option<Verdict>>,
    dims: &[String],
) -> Vec<Score> {
    // Per item: (right, wrong) parsed votes, in first-appearance order.
    let mut items: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut per_dim: BTreeMap<&str, Score> = BTreeMap::new();
    for (s, v) in shown.iter().zip(verdicts) {
        let votes = items.entry(s.pair).or_default();
        let dim = per_dim.entry(dims[s.pair].as_str()).or_default();
        if let Some(v) = v {
            dim.parsed += 1;
            dim.said_a += usize::from(v == Verdict::A);
            if v == s.preferred {
                votes.0 += 1;
            } else {
                votes.1 += 1;
            }
        }
    }
    for (&pair, &(right, wrong)) in &items {
        let dim = per_dim.get_mut(dims[pair].as_str()).expect("entered above");
        if right + wrong == 0 {
            dim.unparseable += 1;
        } else if right == wrong {
            dim.ties += 1;
        } else {
            dim.n += 1;
            dim.correct += usize::from(right > wrong);
        }
    }
    let mut out: Vec<Score> = per_dim
        .into_iter()
        .map(|(d, s)| Score {
            dimension: d.to_string(),
            ..s
        })
        .collect();
    let mut overall = Score {
        dimension: "overall".into(),
        ..Score::default()
    };
    for s in &out {
        overall.correct += s.correct;
        overall.n += s.n;
        overall.ties += s.ties;
        overall.unparseable += s.unparseable;
        overall.said_a += s.said_a;
        overall.parsed += s.parsed;
    }
    // Dimensions with scored items: (accuracy, adjusted variance of that accuracy).
    let scored: Vec<(f64, f64)> = out
        .iter()
        .filter(|s| s.n > 0)
        .map(|s| {
            let (c, n) = (s.correct as f64 + 2.0, s.n as f64 + 4.0);
            (s.accuracy(), (c / n) * (1.0 - c / n) / n)
        })
        .collect();
    let macro_accuracy = if scored.is_empty() {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        let k = scored.len() as f64;
        let mean = scored.iter().map(|s| s.0).sum::<f64>() / k;
        let half = Z95 * scored.iter().map(|s| s.1).sum::<f64>().sqrt() / k;
        (mean, (mean - half).max(0.0), (mean + half).min(1.0))
    };
    let macro_score = Score {
        dimension: "macro".into(),
        macro_accuracy: Some(macro_accuracy),
        ..overall.clone()
    };
    out.push(overall);
    out.push(macro_score);
    out
}

fn metrics_frame(scores: &[Score], image: &str) -> miette::Result<polars::prelude::DataFrame> {
    let rows = scores
        .iter()
        .map(|s| {
            let (accuracy_lo, accuracy_hi) = s.interval();
            let shorter_wins = s.shorter_wins();
            let shorter_wins_words = s.shorter_wins_by_words();
            MetricsRow {
                dimension: s.dimension.clone(),
                accuracy: s.accuracy(),
                accuracy_lo,
                accuracy_hi,
                correct: s.correct as i64,
                n: s.n as i64,
                ties: s.ties as i64,
                unparseable: s.unparseable as i64,
                a_share: share(s.said_a as f64, s.parsed),
                items: s.items as i64,
                shorter_wins,
                longer_wins: 1.0 - shorter_wins,
                shorter_wins_words,
                longer_wins_words: 1.0 - shorter_wins_words,
                image: image.to_string(),
            }
        })
        .collect();
    MetricsRow::into_frame(rows).into_diagnostic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_images_never_give_an_item_its_own_picture() {
        // Three items per picture, as the world's bench has (one per dimension).
        let pictures: Vec<Vec<u8>> = (0..7u8).map(|p| vec![p; 4]).collect();
        let images: Vec<Vec<u8>> = (0..21).map(|i| pictures[i / 3].clone()).collect();
        let other = other_images("eval", &images, 9).unwrap();
        assert_eq!(other.len(), images.len());
        for (i, (mine, shown)) in images.iter().zip(&other).enumerate() {
            assert_ne!(mine, shown, "item {i} got its own picture");
            assert!(pictures.contains(shown));
            // Items that shared a picture share its replacement.
            assert_eq!(shown, &other[i / 3 * 3]);
        }
        // Every picture is still shown (a permutation of the distinct pictures), and the
        // permutation is the seed's.
        let mut seen: Vec<&Vec<u8>> = other.iter().collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), pictures.len());
        assert_eq!(other, other_images("eval", &images, 9).unwrap());
        assert_ne!(other, other_images("eval", &images, 10).unwrap());
        let one = vec![vec![1u8; 4]; 3];
        let err = other_images("eval", &one, 9).unwrap_err().to_string();
        assert!(err.contains("at least two different images"), "{err}");
    }

    fn shown(pair: usize, preferred: Verdict) -> Shown {
        Shown {
            pair,
            order: "AB",
            answer_a: String::new(),
            answer_b: String::new(),
            preferred,
            seed: 0,
        }
    }

    #[test]
    fn per_item_majority_ties_and_unparseable() {
        use Verdict::{A, B};
        let dims: Vec<String> = ["x", "x", "x", "y"].iter().map(|s| s.to_string()).collect();
        // Item 0: 2 right of 3. Item 1: 1 right, 1 wrong (tie). Item 2: nothing parsed.
        // Item 3 (dimension y): 1 wrong.
        let s = vec![
            shown(0, A),
            shown(0, A),
            shown(0, B),
            shown(1, A),
            shown(1, B),
            shown(2, A),
            shown(3, B),
        ];
        let v = vec![Some(A), Some(A), Some(A), Some(A), Some(A), None, Some(A)];
        let scores = score(&s, v.into_iter(), &dims);
        let get = |d: &str| scores.iter().find(|s| s.dimension == d).unwrap().clone();
        let x = get("x");
        assert_eq!((x.correct, x.n, x.ties, x.unparseable), (1, 1, 1, 1));
        assert_eq!(get("y").accuracy(), 0.0);
        let overall = get("overall");
        assert_eq!((overall.correct, overall.n), (1, 2));
        assert_eq!(overall.accuracy(), 0.5);
        assert_eq!(get("macro").accuracy(), 0.5);
        // Every parsed verdict said A.
        assert_eq!(overall.said_a, overall.parsed);
    }

    #[test]
    fn wilson_matches_published_values() {
        // Reference values from Newcombe (1998), table I / any Wilson calculator.
        let close = |x: f64, y: f64| (x - y).abs() < 5e-4;
        let (lo, hi) = wilson(5, 10);
        assert!(close(lo, 0.2366) && close(hi, 0.7634), "{lo} {hi}");
        let (lo, hi) = wilson(0, 10);
        assert!(lo == 0.0 && close(hi, 0.2775), "{lo} {hi}");
        let (lo, hi) = wilson(81, 263);
        assert!(close(lo, 0.2553) && close(hi, 0.3662), "{lo} {hi}");
        assert!(wilson(0, 0).0.is_nan());
    }

    #[test]
    fn intervals_and_text_baselines_per_dimension() {
        use Verdict::{A, B};
        let dims: Vec<String> = ["x", "x", "y"].iter().map(|s| s.to_string()).collect();
        // Item 0: the better answer (A) is shorter by characters and words; item 1: the better
        // answer (B) is longer by characters, as long in words; item 2: equal lengths.
        let a: Vec<String> = ["short", "one two", "same"].map(String::from).to_vec();
        let b: Vec<String> = ["much longer", "one three", "same"]
            .map(String::from)
            .to_vec();
        let better: Vec<String> = ["A", "B", "A"].map(String::from).to_vec();
        let s = vec![shown(0, A), shown(1, B), shown(2, A)];
        let v = vec![Some(A), Some(A), Some(A)];
        let mut scores = score(&s, v.into_iter(), &dims);
        add_text_baselines(&mut scores, &[0, 1, 2], &a, &b, &better, &dims);
        let get = |d: &str| scores.iter().find(|s| s.dimension == d).unwrap().clone();
        let x = get("x");
        assert_eq!((x.correct, x.n, x.items), (1, 2, 2));
        assert_eq!(x.interval(), wilson(1, 2));
        assert_eq!(x.shorter_wins(), 0.5);
        assert_eq!(x.shorter_wins_by_words(), 0.75);
        let y = get("y");
        assert_eq!((y.shorter_wins(), y.shorter_wins_by_words()), (0.5, 0.5));
        let overall = get("overall");
        assert_eq!(overall.items, 3);
        assert!((overall.shorter_wins() - 1.5 / 3.0).abs() < 1e-12);
        let m = get("macro");
        assert_eq!(m.items, 3);
        assert!((m.shorter_wins_by_words() - 0.625).abs() < 1e-12);
        let (lo, hi) = m.interval();
        assert!(lo < m.accuracy() && m.accuracy() < hi && lo >= 0.0 && hi <= 1.0);
    }

    #[test]
    fn blank_images_keep_each_size_and_carry_nothing() {
        let scene = judgeflow_world::draw_scene(&judgeflow_world::WorldConfig::default(), 7);
        let png = judgeflow_world::render_png(&scene);
        let small = judgeflow_world::encode_png(&image::RgbImage::new(3, 5));
        let ids = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let blanks = blank_images(&[png.clone(), small, png.clone()], &ids).unwrap();
        let decoded: Vec<image::RgbImage> = blanks
            .iter()
            .map(|b| image::load_from_memory(b).unwrap().to_rgb8())
            .collect();
        assert_eq!(decoded[0].dimensions(), (scene.width, scene.height));
        assert_eq!(decoded[1].dimensions(), (3, 5));
        assert_eq!(blanks[0], blanks[2]);
        assert!(decoded[0].pixels().all(|p| p.0 == [128, 128, 128]));
        assert_ne!(blanks[0], png);
        let err = blank_images(&[vec![1, 2, 3]], &ids[..1]).unwrap_err();
        assert!(err.to_string().contains("bench item a"), "{err}");
    }
}
