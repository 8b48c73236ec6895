//! LoRA for `op = "train"` (`adapter = "lora"`): the parameters, the adapters put on the
//! starting weights, and the `model` artifact of a LoRA run.
//!
//! - `adapter = "none"` (the default) trains every weight, as before.
//! - `adapter = "lora"` freezes the starting weights (`init = "base"` or `"previous"`) and
//!   trains adapters of rank `lora_rank`, scale `lora_alpha / lora_rank`, dropout
//!   `lora_dropout`, on the linear layers `lora_targets` names (PEFT's `target_modules` as a
//!   list: a module whose path ends with a target; `q_proj` also reaches the cross-attention and
//!   vision projections), or, when `lora_target_regex` is set, on those whose whole path it
//!   matches (PEFT's string form; `"language_model"` stands for the text decoder's projections,
//!   [`lora::LANGUAGE_MODEL_TARGETS`]). The settings are checked before the weights load. When
//!   the starting checkpoint is itself a LoRA run's (the previous iteration's), its adapters are
//!   trained further, with the settings they were made with.
//! - The artifact of a LoRA run is, without `merge`, a PEFT adapter directory
//!   (`adapter_config.json`, `adapter_model.safetensors`) that is also a judgeflow checkpoint:
//!   the base's `config.json`, the base's weight files by reference
//!   ([`checkpoint::EXTERNAL_WEIGHTS_FILE`], checked by size, time and hash when loaded) and the
//!   tokenizer. Every model operator loads it as base + adapter ([`crate::model_kit::load_judge`]).
//!   With `merge = true` it is an ordinary full checkpoint with the adapters folded in.

use std::path::Path;

use burn::prelude::Backend;
use judgeflow_engine::{choice_enum, operator_params};
use judgeflow_model::checkpoint::{self, ExternalWeight, mtime_ns};
use judgeflow_model::lora::{self, LoraConfig, TargetModules};
use judgeflow_model::model::MllamaForConditionalGeneration;
use judgeflow_model::tokenizer::JudgeTokenizer;
use miette::miette;

use crate::model_kit::save_judge;

choice_enum! {
    /// What `train` trains.
    pub enum Adapter { None = "none", Lora = "lora" }
}

operator_params! {
    /// The LoRA parameters of `train`.
    pub struct LoraParams {
        /// `lora`: freeze the starting weights and train low-rank adapters (saved in PEFT's
        /// format)
        adapter: Adapter = Adapter::None,
        /// LoRA rank r
        lora_rank: usize [1..=4096] = 16,
        /// LoRA alpha; adapters are scaled by alpha / r
        lora_alpha: f64 [1e-6..=1e6] = 32.0,
        /// dropout on the adapters' input while training
        lora_dropout: f64 [0.0..=0.99] = 0.05,
        /// PEFT's target_modules: linear layers whose module path ends with one of these
        lora_targets: Vec<String> = lora::PROJECTIONS.to_vec(),
        /// PEFT's string form of target_modules, replacing `lora_targets` when set: a regular
        /// expression the whole module path must match; `language_model` is the text decoder's
        /// attention and MLP projections (the vision tower stays frozen and out of the backward
        /// pass)
        lora_target_regex: String = "",
        /// adapter = lora: save full weights with the adapters merged instead of the adapter
        merge: bool = false,
    }
}

/// The settings of fresh adapters on the starting checkpoint in `init_dir`, checked (a regular
/// expression that does not compile is an error here, before any weight is read); `None` when
/// `adapter = "none"` or there are no starting weights.
pub(crate) fn fresh_config(
    node: &str,
    p: &LoraParams,
    init_dir: Option<&Path>,
) -> miette::Result<Option<LoraConfig>> {
    let (Adapter::Lora, Some(dir)) = (p.adapter, init_dir) else {
        return Ok(None);
    };
    let target_modules = match p.lora_target_regex.as_str() {
        "" => TargetModules::Names(p.lora_targets.clone()),
        "language_model" => TargetModules::Regex(lora::LANGUAGE_MODEL_TARGETS.to_string()),
        pattern => TargetModules::Regex(pattern.to_string()),
    };
    let config = LoraConfig {
        r: p.lora_rank,
        lora_alpha: p.lora_alpha,
        lora_dropout: p.lora_dropout,
        target_modules,
        base_model_name_or_path: Some(absolute(dir).display().to_string()),
    };
    config
        .validate()
        .map_err(|e| miette!(code = "judgeflow::train::lora", "node `{node}`: {e}"))?;
    Ok(Some(config))
}

/// The model to train: `model` as loaded when `adapter = "none"`, else with adapters (its own
/// when it was loaded from a LoRA run's checkpoint, fresh ones from `seed` and `fresh`, the
/// [`fresh_config`] of the same node, otherwise).
pub(crate) fn prepare<B: Backend>(
    node: &str,
    model: MllamaForConditionalGeneration<B>,
    adapter: Adapter,
    fresh: Option<&LoraConfig>,
    seed: u64,
) -> miette::Result<MllamaForConditionalGeneration<B>> {
    let has_adapters = model.lora_config().is_some();
    match (adapter, fresh) {
        (Adapter::None, _) if has_adapters => Err(miette!(
            code = "judgeflow::train::lora_checkpoint",
            help = "train it with adapter = \"lora\" (continues its adapters), or save it merged \
                    (merge = true) and start from that",
            "node `{node}`: the starting checkpoint is a LoRA adapter on a frozen base; \
             adapter = \"none\" would train all weights"
        )),
        (Adapter::None, _) => Ok(model),
        (Adapter::Lora, None) => Err(miette!(
            code = "judgeflow::train::lora_scratch",
            help = "use init = \"base\" or \"previous\" with adapter = \"lora\"",
            "node `{node}`: LoRA adapts pretrained weights; init = \"scratch\" has none"
        )),
        (Adapter::Lora, Some(_)) if has_adapters => {
            let loaded = model.lora_config().expect("checked");
            tracing::info!(
                node,
                r = loaded.r,
                alpha = loaded.lora_alpha,
                "continuing the starting checkpoint's LoRA adapters"
            );
            Ok(model)
        }
        (Adapter::Lora, Some(config)) => lora::attach(model, config, seed)
            .map_err(|e| miette!(code = "judgeflow::train::lora", "node `{node}`: {e}")),
    }
}

/// Saves the trained model as the node's `model` artifact (see the module doc).
pub(crate) fn save<B: Backend>(
    node: &str,
    model: &MllamaForConditionalGeneration<B>,
    tokenizer: &JudgeTokenizer,
    p: &LoraParams,
    init_dir: Option<&Path>,
    out_dir: &Path,
) -> miette::Result<()> {
    if model.lora_config().is_none() {
        return save_judge(model, tokenizer, out_dir);
    }
    if p.merge {
        let merged = lora::merge(model.clone())
            .map_err(|e| miette!(code = "judgeflow::train::lora", "node `{node}`: {e}"))?;
        return save_judge(&merged, tokenizer, out_dir);
    }
    let init_dir = init_dir.expect("adapters need starting weights");
    lora::save_adapter(model, out_dir)
        .map_err(|e| miette!(code = "judgeflow::train::lora", "node `{node}`: {e}"))?;
    let weights = base_weights(init_dir)
        .map_err(|e| miette!(code = "judgeflow::train::lora", "node `{node}`: {e}"))?;
    let list = serde_json::to_string_pretty(&weights).expect("plain data");
    std::fs::write(out_dir.join(checkpoint::EXTERNAL_WEIGHTS_FILE), list).map_err(|e| {
        miette!(
            code = "judgeflow::train::lora",
            "node `{node}`: writing the base weights list: {e}"
        )
    })?;
    std::fs::write(
        out_dir.join(checkpoint::CONFIG_FILE),
        model.config().to_json(),
    )
    .map_err(|e| {
        miette!(
            code = "judgeflow::train::lora",
            "node `{node}`: writing config.json: {e}"
        )
    })?;
    tokenizer
        .save(out_dir.join(judgeflow_model::hf_dir::TOKENIZER_FILE))
        .map_err(|e| {
            miette!(
                code = "judgeflow::train::lora",
                "node `{node}`: saving the tokenizer: {e}"
            )
        })
}

/// The base weight files of the checkpoint in `dir`, as an external-weights list: copied from
/// `dir` when it refers to its weights already (an `hf_model` source, or a LoRA run continued),
/// else `dir`'s own files, hashed now.
fn base_weights(dir: &Path) -> Result<Vec<ExternalWeight>, Box<dyn std::error::Error>> {
    let reference = dir.join(checkpoint::EXTERNAL_WEIGHTS_FILE);
    if reference.is_file() {
        return Ok(serde_json::from_str(&std::fs::read_to_string(&reference)?)?);
    }
    let mut weights = Vec::new();
    for path in checkpoint::weight_files(dir)? {
        let path = absolute(&path);
        let meta = std::fs::metadata(&path)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(std::fs::File::open(&path)?)?;
        weights.push(ExternalWeight {
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            hash: hasher.finalize().to_hex().to_string(),
            path,
        });
    }
    Ok(weights)
}

fn absolute(path: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
