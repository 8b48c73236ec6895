//! The synthetic scene world of judgeflow.
//!
//! No real vision-language weights or photographs ship with judgeflow, so it trains and
//! evaluates judges on procedurally drawn scenes in which every label is known:
//!
//! - [`draw_scene`] samples a [`Scene`] graph (coloured shapes at known positions) from a
//!   [`WorldConfig`] and a seed; [`render`] / [`render_png`] rasterise it deterministically.
//! - [`prompts_for`] asks an open description request and closed questions with gold answers.
//! - [`corpus_for`] yields pretraining rows for the base model.
//! - [`bench_pairs`] yields VL-RewardBench-style gold preference pairs.
//! - [`corrupt_text`] injects one error into a free-text answer.
//! - [`check_caption`] reads a description's claims and checks each against the scene graph.
//! - [`contact_sheet`] lays scenes and text out for a human to look at.
//! - [`patch_shape_labels`] says which shape each image patch shows (a pretraining target for
//!   the vision tower).
//!
//! Data shapes (all serde, lowercase enum names):
//!
//! - scene graph: `{"seed":4,"width":64,"height":64,"objects":[{"shape":"diamond",
//!   "color":"red","size":"large","x":15,"y":48,"radius":11}, ...],
//!   "background":{"color":[227,227,227],"pattern":{"kind":"plain"},"noise":0.0}}`
//! - prompt: `{"task":"count","open":false,"question":"How many diamonds can you see in the
//!   picture?","answer":"1"}`; the open task's answer is a caption.
//! - bench pair: `{"dimension":"general","question":"Describe the image.","chosen":"...",
//!   "rejected":"...","error_kind":"count"}`.
//!
//! Everything random takes a seed or a caller-supplied RNG; [`rng`] builds the ChaCha8 RNG the
//! crate uses, so equal seeds give equal outputs on every platform.

#![warn(missing_docs)]

mod bench;
mod claims;
mod corpus;
mod corrupt;
mod language;
mod patches;
mod prompts;
mod render;
mod scene;
mod sheet;

use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

pub use bench::{BenchPair, Dimension, bench_pairs, bench_pairs_directed, text_length};
pub use claims::{CaptionCheck, Claim, ClaimKind, check_caption, count_claims};
pub use corpus::{CorpusRow, corpus_for};
pub use corrupt::{
    Corruption, CorruptionKind, Placement, WordLists, applicable_kinds, corrupt_text,
    corrupt_text_placed,
};
pub use language::{DESCRIBE_PROMPTS, caption};
pub use patches::{PATCH_BACKGROUND, patch_shape_labels};
pub use prompts::{
    Prompt, TaskType, binding_claims, binding_pairs, prompts_for, reasoning_prompts,
};
pub use render::{encode_png, render, render_png};
pub use scene::{
    BBox, Background, Color, ConfigError, MAX_OBJECTS, Object, Pattern, Relation, Scene, Shape,
    Size, WorldConfig, draw_scene,
};
pub use sheet::contact_sheet;

/// The seeded RNG used throughout the crate (ChaCha8, portable and reproducible).
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
