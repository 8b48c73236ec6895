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
