//! The frame schemas that judgeflow's edges carry. An edge is valid when the producer's schema
//! has every column the consumer's port requires, with the same type (extra columns are fine):
//! checked by `judgeflow check` before anything runs, and again on every frame at run time.
//!
//! Images travel inside frames as encoded PNG/JPEG bytes (`image` column, binary): frames stay
//! self-contained parquet files, content hashes cover the pixels, and the small images of the
//! synthetic world cost a few KiB each.

pub mod columns;

use judgeflow_engine::{ColumnType as T, FrameSchema};

/// Drawn scenes with their gold scene graphs.
pub static SCENES: FrameSchema = FrameSchema {
    name: "scenes",
    columns: &[
        ("scene_id", T::U64),
        ("image", T::Binary),
        ("scene_graph", T::Str),
        ("n_objects", T::I64),
    ],
    doc: "one drawn scene: PNG bytes and its gold scene graph as JSON",
};

/// Prompts about images, with a gold answer where one is known.
pub static PROMPTS: FrameSchema = FrameSchema {
    name: "prompts",
    columns: &[
        ("prompt_id", T::Str),
        ("image", T::Binary),
        ("question", T::Str),
        ("gold_answer", T::Str),
        ("task", T::Str),
        ("open", T::Bool),
        ("source", T::Str),
    ],
    doc: "one prompt: image, question, gold answer (null when unknown), task type, open/closed",
};

/// Supervised examples: image + prompt → response (pretraining corpus and judge SFT data).
pub static SFT: FrameSchema = FrameSchema {
    name: "sft",
    columns: &[
        ("example_id", T::Str),
        ("image", T::Binary),
        ("prompt", T::Str),
        ("response", T::Str),
    ],
    doc: "one supervised example; the loss covers the response only",
};

/// Preference pairs with a known better answer: the gold benchmark and the real benchmarks.
pub static BENCH: FrameSchema = FrameSchema {
    name: "bench",
    columns: &[
        ("pair_id", T::Str),
        ("image", T::Binary),
        ("question", T::Str),
        ("answer_a", T::Str),
        ("answer_b", T::Str),
        ("better", T::Str),
        ("dimension", T::Str),
        ("source", T::Str),
    ],
    doc: "one preference pair: two answers, which is better (`A`/`B`), benchmark dimension",
};

/// Answers sampled from a model: the prompt's columns plus one sampled answer per row.
pub static SAMPLES: FrameSchema = FrameSchema {
    name: "samples",
    columns: &[
        ("prompt_id", T::Str),
        ("image", T::Binary),
        ("question", T::Str),
        ("gold_answer", T::Str),
        ("task", T::Str),
        ("open", T::Bool),
        ("source", T::Str),
        ("sample_index", T::I64),
        ("answer", T::Str),
    ],
    doc: "one sampled answer to a prompt (n rows per prompt, `sample_index` 0..n)",
};

/// Synthetic preference pairs: which answer the method prefers, and how it decided.
pub static PAIRS: FrameSchema = FrameSchema {
    name: "pairs",
    columns: &[
        ("pair_id", T::Str),
        ("prompt_id", T::Str),
        ("image", T::Binary),
        ("question", T::Str),
        ("chosen", T::Str),
        ("rejected", T::Str),
        ("task", T::Str),
        ("kind", T::Str),
        ("source", T::Str),
        ("label_correct", T::Bool),
    ],
    doc: "one synthetic pair: `chosen` is preferred; `kind` is the corruption kind or the vote \
          method; `label_correct` checks the preference against the gold answer where one is \
          known (null otherwise) and is never used for training",
};

/// Prompts that yielded no pair, and why (counted, never silently dropped).
pub static UNPAIRED: FrameSchema = FrameSchema {
    name: "unpaired",
    columns: &[("prompt_id", T::Str), ("task", T::Str), ("reason", T::Str)],
    doc: "one prompt without a synthetic pair: no corruption applies, no majority, ...",
};

/// The judge's output on a pair in one presentation order.
pub static JUDGEMENTS: FrameSchema = FrameSchema {
    name: "judgements",
    columns: &[
        ("pair_id", T::Str),
        ("image", T::Binary),
        ("question", T::Str),
        ("order", T::Str),
        ("answer_a", T::Str),
        ("answer_b", T::Str),
        ("preferred", T::Str),
        ("kind", T::Str),
        ("source", T::Str),
        ("output", T::Str),
        ("verdict", T::Str),
        ("verdict_prob", T::F64),
        ("agrees", T::Bool),
    ],
    doc: "one judgement: the pair shown as `answer_a`/`answer_b` (`order` AB keeps the pair's \
          order, BA swaps it), the label's position (`preferred`), the judge's whole output, \
          its parsed verdict (null when unparseable) and that verdict's probability",
};

/// What share of judgements a filter kept, per source and kind.
pub static KEPT_STATS: FrameSchema = FrameSchema {
    name: "kept_stats",
    columns: &[
        ("source", T::Str),
        ("kind", T::Str),
        ("pairs", T::I64),
        ("judgements", T::I64),
        ("kept", T::I64),
        ("kept_fraction", T::F64),
    ],
    doc: "per (source, kind), and a `total` row: pairs seen, judgements seen and kept",
};

/// Benchmark scores of a judge.
pub static METRICS: FrameSchema = FrameSchema {
    name: "metrics",
    columns: &[
        ("dimension", T::Str),
        ("accuracy", T::F64),
        ("accuracy_lo", T::F64),
        ("accuracy_hi", T::F64),
        ("correct", T::I64),
        ("n", T::I64),
        ("ties", T::I64),
        ("unparseable", T::I64),
        ("a_share", T::F64),
        ("items", T::I64),
        ("shorter_wins", T::F64),
        ("longer_wins", T::F64),
        ("shorter_wins_words", T::F64),
        ("longer_wins_words", T::F64),
        ("image", T::Str),
    ],
    doc: "accuracy per benchmark dimension, then `overall` (pooled over items) and `macro` \
          (mean of the dimensions), with its 95% interval (`accuracy_lo`/`_hi`: Wilson; macro: \
          normal, adjusted); ties and unparseable items are excluded from `n` and counted; \
          `a_share` is the share of parsed verdicts that said A (position bias); text-only \
          baselines on the same `items`: the share where the better answer is the shorter / \
          longer one by characters (`*_words`: by words), equal lengths counting 1/2; `image` \
          is `scene`, or `blank` for a blind judge",
};

/// How well a model answers closed questions about held-out scenes, per question form.
pub static PERCEPTION: FrameSchema = FrameSchema {
    name: "perception",
    columns: &[
        ("task", T::Str),
        ("form", T::Str),
        ("accuracy", T::F64),
        ("accuracy_lo", T::F64),
        ("accuracy_hi", T::F64),
        ("correct", T::I64),
        ("n", T::I64),
        ("prior", T::F64),
        ("passes", T::Bool),
    ],
    doc: "greedy answers to held-out closed questions, per task and answer form (`yes_no` or \
          `word`), then `overall`: accuracy with its 95% Wilson interval, the form's prior (the \
          share of its most common gold answer: what answering without looking scores) and \
          whether the gate's thresholds hold",
};

/// A training loss curve.
pub static LOSS: FrameSchema = FrameSchema {
    name: "loss",
    columns: &[
        ("step", T::I64),
        ("loss", T::F64),
        ("lr", T::F64),
        ("tokens", T::I64),
        ("grad_norm", T::F64),
    ],
    // No wall time: frames are content, and timings differ between identical runs (the
    // entry's manifest and the log carry them).
    doc: "one optimizer step: mean response-token loss, learning rate, tokens, gradient norm",
};

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
