//! judgeflow's operators, one file each behind `judgeflow_engine::Operator`, and the registry
//! the `judgeflow` binary runs with.

mod concat;
mod contact_sheet;
mod corrupt;
mod evaluate;
mod filter;
mod frames;
mod images;
mod judge;
/// `judgeflow judge`: one pair judged in both orders from the command line.
pub mod judge_cli;
mod judge_corpus;
mod judge_format;
mod judging;
mod model_kit;
mod pairs;
mod patch_probe;
mod perception;
mod sample;
mod source_common;
mod source_hf_model;
mod source_jsonl;
mod source_mmrewardbench;
mod source_scenes;
mod source_vlrewardbench;
mod train;
mod train_data;
mod train_lora;
mod vote;

/// Keeps compiled GPU kernels in a directory across processes (see the model crate's
/// `backend::use_kernel_cache`); the binary calls it first thing.
#[cfg(feature = "cuda")]
pub use judgeflow_model::backend::{exit_on_device_thread_panic, use_kernel_cache};

/// Every operator of the real binary.
pub fn registry() -> judgeflow_engine::Registry {
    let mut r = judgeflow_engine::Registry::new();
    r.register(source_scenes::ScenesSource);
    r.register(source_scenes::ScenesBenchSource);
    r.register(contact_sheet::ContactSheet);
    r.register(source_jsonl::JsonlSource);
    r.register(source_vlrewardbench::VlRewardBenchSource);
    r.register(source_mmrewardbench::MmRewardBenchSource);
    r.register(source_hf_model::HfModelSource);
    r.register(train::Train);
    r.register(sample::Sample);
    r.register(perception::Perception);
    r.register(corrupt::Corrupt);
    r.register(vote::Vote);
    r.register(concat::Concat);
    r.register(judge::Judge);
    r.register(filter::Filter);
    r.register(evaluate::Evaluate);
    r
}
