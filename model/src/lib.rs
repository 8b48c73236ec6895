//! The Llama-3.2-Vision ("mllama") judge model in burn.
//!
//! Module map: `config` (MllamaConfig, presets, HF config.json), `vision` (tiled ViT encoder),
//! `text` (Llama decoder with gated cross-attention), `model` (the two joined), `cache` (KV cache),
//! `generate` (batched sampling, log-prob scoring), `decode_static` (the
//! device path of generation: fixed shapes, sampling on the device), `train` (SFT loop), `fused_adamw` (its optimizer step in two kernels a parameter on CUDA), `lora` (LoRA adapters in PEFT's format), `checkpoint` (safetensors),
//! `tokenizer` (training a tokenizer with the Llama-3.2-Vision special tokens), `chat` (the chat
//! template as ids), `chat_template` (a checkpoint's own Jinja template), `hf_dir` (checking an HF
//! model directory without loading it), `preprocess` (mllama image preprocessing: tiles, aspect-ratio ids, masks).

pub mod attention_softmax;
pub mod backend;
pub mod cache;
pub mod chat;
pub mod chat_template;
pub mod checkpoint;
pub mod config;
pub mod decode_static;
mod fused;
pub mod fused_adamw;
pub mod generate;
pub mod hf_dir;
pub mod layers;
pub mod lora;
pub mod model;
pub mod norms;
pub mod preprocess;
pub mod rope;
pub mod text;
pub mod tokenizer;
pub mod train;
pub mod vision;

#[cfg(test)]
mod tests;

/// The environment switches that choose kernels on CUDA and with them the numbers a model
/// computes (summation orders, rounding points), not only how fast: the model operators name
/// them to the cache (`Operator::environment`) when they run on CUDA, so a run under another
/// switch is another cache entry and `plan` says which variable moved. Left out: the memory
/// pool's (`JUDGEFLOW_MEMORY_POOL`, allocation only), the kernel cache's directory and the
/// profilers'. Training adds [`fused_adamw::OPTIMIZER_VAR`].
pub const KERNEL_SWITCHES: &[&str] = &[
    layers::AttentionKernel::VAR,
    "JUDGEFLOW_MATMUL",
    "JUDGEFLOW_MATMUL_SMALL_M",
    "JUDGEFLOW_MATMUL_SMALL_M_ROWS",
    "JUDGEFLOW_REDUCE",
    "JUDGEFLOW_FUSED_MATMUL",
    "JUDGEFLOW_FLASH_TILES_SKIP",
    "JUDGEFLOW_FLASH_TRITON_DIR",
    norms::NORM_VAR,
    rope::ROPE_VAR,
    attention_softmax::SCORE_SOFTMAX_VAR,
];
