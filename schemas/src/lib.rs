//! The frame schemas that judgeflow's edges carry. An edge is valid when the producer's schema
//! has every column the consumer's port requires, with the same type (extra columns are fine):
//! checked by `judgeflow check` before anything runs, and again on every frame at run time.
//!
//! Images travel inside frames as encoded PNG/JPEG bytes (`image` column, binary): frames stay
//! self-contained parquet files, content hashes cover the pixels, and the small images of the
//! synthetic world cost a few KiB each.

pub mod columns;
pub mod rows;

use judgeflow_engine::FrameSchema;

#[doc(hidden)]
pub use judgeflow_engine as __engine;
#[doc(hidden)]
pub use polars as __polars;
pub use rows::FrameRow;

frame_row! {
    /// Drawn scenes with their gold scene graphs.
    pub struct SceneRow as "scenes" {
        pub scene_id: u64,
        pub image: Vec<u8>,
        pub scene_graph: String,
        pub n_objects: i64,
    }
    doc: "one drawn scene: PNG bytes and its gold scene graph as JSON";
}
/// The `scenes` schema ([`SceneRow`]'s).
pub static SCENES: FrameSchema = SceneRow::SCHEMA;

frame_row! {
    /// Prompts about images, with a gold answer where one is known.
    pub struct PromptRow as "prompts" {
        pub prompt_id: String,
        pub image: Vec<u8>,
        pub question: String,
        pub gold_answer: Option<String>,
        pub task: String,
        pub open: bool,
        pub source: String,
    }
    doc: "one prompt: image, question, gold answer (null when unknown), task type, open/closed";
}
/// The `prompts` schema ([`PromptRow`]'s).
pub static PROMPTS: FrameSchema = PromptRow::SCHEMA;

frame_row! {
    /// Supervised examples: image + prompt → response (pretraining corpus and judge SFT data).
    pub struct SftRow as "sft" {
        pub example_id: String,
        pub image: Vec<u8>,
        pub prompt: String,
        pub response: String,
    }
    doc: "one supervised example; the loss covers the response only";
}
/// The `sft` schema ([`SftRow`]'s).
pub static SFT: FrameSchema = SftRow::SCHEMA;

frame_row! {
    /// Preference pairs with a known better answer: the gold benchmark and the real benchmarks.
    pub struct BenchRow as "bench" {
        pub pair_id: String,
        pub image: Vec<u8>,
        pub question: String,
        pub answer_a: String,
        pub answer_b: String,
        pub better: String,
        pub dimension: String,
        pub source: String,
    }
    doc: "one preference pair: two answers, which is better (`A`/`B`), benchmark dimension";
}
/// The `bench` schema ([`BenchRow`]'s).
pub static BENCH: FrameSchema = BenchRow::SCHEMA;

frame_row! {
    /// Answers sampled from a model: the prompt's columns plus one sampled answer per row.
    pub struct SampleRow as "samples" {
        pub prompt_id: String,
        pub image: Vec<u8>,
        pub question: String,
        pub gold_answer: Option<String>,
        pub task: String,
        pub open: bool,
        pub source: String,
        pub sample_index: i64,
        pub answer: String,
    }
    doc: "one sampled answer to a prompt (n rows per prompt, `sample_index` 0..n)";
}
/// The `samples` schema ([`SampleRow`]'s).
pub static SAMPLES: FrameSchema = SampleRow::SCHEMA;

frame_row! {
    /// Synthetic preference pairs: which answer the method prefers, and how it decided.
    pub struct PairRow as "pairs" {
        pub pair_id: String,
        pub prompt_id: String,
        pub image: Vec<u8>,
        pub question: String,
        pub chosen: String,
        pub rejected: String,
        pub task: String,
        pub kind: String,
        pub source: String,
        pub label_correct: Option<bool>,
    }
    doc: "one synthetic pair: `chosen` is preferred; `kind` is the corruption kind or the vote \
          method; `label_correct` checks the preference against the gold answer where one is \
          known (null otherwise) and is never used for training";
}
/// The `pairs` schema ([`PairRow`]'s).
pub static PAIRS: FrameSchema = PairRow::SCHEMA;

frame_row! {
    /// Prompts that yielded no pair, and why (counted, never silently dropped).
    pub struct UnpairedRow as "unpaired" {
        pub prompt_id: String,
        pub task: String,
        pub reason: String,
    }
    doc: "one prompt without a synthetic pair: no corruption applies, no majority, ...";
}
/// The `unpaired` schema ([`UnpairedRow`]'s).
pub static UNPAIRED: FrameSchema = UnpairedRow::SCHEMA;

frame_row! {
    /// The judge's output on a pair in one presentation order.
    pub struct JudgementRow as "judgements" {
        pub pair_id: String,
        pub image: Vec<u8>,
        pub question: String,
        pub order: String,
        pub answer_a: String,
        pub answer_b: String,
        pub preferred: String,
        pub kind: String,
        pub source: String,
        pub output: String,
        pub verdict: Option<String>,
        pub verdict_prob: Option<f64>,
        pub agrees: bool,
    }
    doc: "one judgement: the pair shown as `answer_a`/`answer_b` (`order` AB keeps the pair's \
          order, BA swaps it), the label's position (`preferred`), the judge's whole output, \
          its parsed verdict (null when unparseable) and that verdict's probability";
}
/// The `judgements` schema ([`JudgementRow`]'s).
pub static JUDGEMENTS: FrameSchema = JudgementRow::SCHEMA;

frame_row! {
    /// What share of judgements a filter kept, per source and kind.
    pub struct KeptStatsRow as "kept_stats" {
        /// Where the pairs came from, or `total`.
        pub source: String,
        /// Kind of pair, or `total`.
        pub kind: String,
        /// Pairs seen.
        pub pairs: i64,
        /// Judgements seen.
        pub judgements: i64,
        /// Judgements kept.
        pub kept: i64,
        /// `kept / judgements`.
        pub kept_fraction: f64,
    }
    doc: "per (source, kind), and a `total` row: pairs seen, judgements seen and kept";
}
/// The `kept_stats` schema ([`KeptStatsRow`]'s).
pub static KEPT_STATS: FrameSchema = KeptStatsRow::SCHEMA;

frame_row! {
    /// Benchmark scores of a judge.
    pub struct MetricsRow as "metrics" {
        /// Benchmark dimension, or `overall` / `macro`.
        pub dimension: String,
        /// Share correct among parsed, non-tied items; NaN when `n` is 0.
        pub accuracy: f64,
        /// 95% interval of `accuracy` (NaN when unknown).
        pub accuracy_lo: f64,
        /// Upper end of the interval.
        pub accuracy_hi: f64,
        /// Items judged correctly.
        pub correct: i64,
        /// Items scored.
        pub n: i64,
        /// Items judged a tie.
        pub ties: i64,
        /// Items whose verdict could not be parsed.
        pub unparseable: i64,
        /// Share of parsed verdicts that said A (position bias); NaN when none parsed.
        pub a_share: f64,
        /// Items the text baselines were computed on (every evaluated item).
        pub items: i64,
        /// Share of items where the better answer is the shorter one, by characters (ties 1/2).
        pub shorter_wins: f64,
        /// Share of items where the better answer is the longer one, by characters (ties 1/2).
        pub longer_wins: f64,
        /// `shorter_wins` by words.
        pub shorter_wins_words: f64,
        /// `longer_wins` by words.
        pub longer_wins_words: f64,
        /// `scene`, or `blank` when the judge saw a blank image (a blind judge).
        pub image: String,
    }
    doc: "accuracy per benchmark dimension, then `overall` (pooled over items) and `macro` \
          (mean of the dimensions), with its 95% interval (`accuracy_lo`/`_hi`: Wilson; macro: \
          normal, adjusted); ties and unparseable items are excluded from `n` and counted; \
          `a_share` is the share of parsed verdicts that said A (position bias); text-only \
          baselines on the same `items`: the share where the better answer is the shorter / \
          longer one by characters (`*_words`: by words), equal lengths counting 1/2; `image` \
          is `scene`, or `blank` for a blind judge";
}
/// The `metrics` schema ([`MetricsRow`]'s).
pub static METRICS: FrameSchema = MetricsRow::SCHEMA;

impl MetricsRow {
    /// Whether the judge was scored blind (every image replaced by a blank one).
    pub fn blind(&self) -> bool {
        self.image == "blank"
    }

    /// The accuracy's interval, when both ends are known.
    pub fn interval(&self) -> Option<(f64, f64)> {
        (self.accuracy_lo.is_finite() && self.accuracy_hi.is_finite())
            .then_some((self.accuracy_lo, self.accuracy_hi))
    }
}

frame_row! {
    /// How well a model answers closed questions about held-out scenes, per question form.
    pub struct PerceptionRow as "perception" {
        pub task: String,
        pub form: String,
        pub accuracy: f64,
        pub accuracy_lo: f64,
        pub accuracy_hi: f64,
        pub correct: i64,
        pub n: i64,
        pub prior: f64,
        pub passes: bool,
        pub min_accuracy: f64,
        pub min_gain: f64,
    }
    doc: "greedy answers to held-out closed questions, per task and answer form (`yes_no` or \
          `word`), then, with descriptions, `caption` `claims` (share of claims true) and \
          `objects` (share of objects named by a true claim), then `overall` (the closed \
          questions): accuracy with its 95% Wilson interval, the prior (what answering without \
          looking scores: a form's most common gold answer; another scene's gold description), \
          whether the gate holds, and the gate's thresholds (accuracy, and gain over the prior)";
}
/// The `perception` schema ([`PerceptionRow`]'s).
pub static PERCEPTION: FrameSchema = PerceptionRow::SCHEMA;

frame_row! {
    /// A training loss curve.
    pub struct LossRow as "loss" {
        pub step: i64,
        pub loss: f64,
        pub lr: f64,
        pub tokens: i64,
        pub grad_norm: f64,
    }
    // No wall time: frames are content, and timings differ between identical runs (the
    // entry's manifest and the log carry them).
    doc: "one optimizer step: mean response-token loss, learning rate, tokens, gradient norm";
}
/// The `loss` schema ([`LossRow`]'s).
pub static LOSS: FrameSchema = LossRow::SCHEMA;

/// Every schema, for `judgeflow schemas` and documentation.
pub static ALL: &[&FrameSchema] = &[
    &SCENES,
    &PROMPTS,
    &SFT,
    &BENCH,
    &SAMPLES,
    &PAIRS,
    &UNPAIRED,
    &JUDGEMENTS,
    &KEPT_STATS,
    &METRICS,
    &PERCEPTION,
    &LOSS,
];
