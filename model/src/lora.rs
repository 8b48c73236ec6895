//! LoRA: low-rank adapters on the model's linear layers, trained while the base stays frozen,
//! saved and loaded in PEFT's format, and mergeable into full weights.
//!
//! # Contract
//!
//! - Every linear layer of the model is a [`LoraLinear`]: a base [`Linear`] and, once adapters
//!   are attached, a [`LoraAdapter`]. Its output is PEFT's
//!   `base(x) + scale · B(A(dropout(x)))` with `scale = lora_alpha / r` (`use_rslora = false`);
//!   without an adapter it is `base(x)`, bit for bit, computed as one 2-D matmul over the
//!   flattened rows (`[..., in]` as `[rows, in]`).
//! - [`attach`] freezes every parameter of the model (no gradient, so an optimizer step leaves the
//!   base bit-identical and updates the adapters only) and gives an adapter to every linear layer
//!   whose module path matches `target_modules` by PEFT's rules ([`TargetModules`]): a list
//!   matches a path equal to a name or ending with `"." + name`; a regular expression must match
//!   the whole path (Python's `re.fullmatch`). Paths are transformers 5's for
//!   `MllamaForConditionalGeneration` ([`for_each_linear`]), so the name `q_proj` also adapts the
//!   cross-attention layers and the vision encoder, exactly as PEFT would; the expression
//!   [`LANGUAGE_MODEL_TARGETS`] keeps the vision tower frozen (and out of the backward pass).
//!   A starts as PEFT's default (kaiming-uniform, bound `1/sqrt(in)`), B at zero: a fresh
//!   adapter leaves the outputs unchanged.
//! - Adapters hold f32 tensors whatever the backend's float type (bf16 on CUDA): the adapter's
//!   input is cast to f32, and the sum `base(x) + delta` is formed in f32 and cast back to the
//!   base output's dtype, as PEFT does for a bf16 base with f32 adapters.
//! - Dropout acts on the adapter input only on autodiff backends (training), as burn's
//!   [`Dropout`] does.
//! - [`save_adapter`] writes what PEFT's `save_pretrained` writes: `adapter_config.json` and
//!   `adapter_model.safetensors` with `base_model.model.<module path>.lora_A.weight` (`[r, in]`)
//!   and `.lora_B.weight` (`[out, r]`), f32, the adapter name left out. [`load_adapter`] reads
//!   such a directory onto a loaded base (module paths of transformers 4 are accepted too) and
//!   gives back trainable adapters, so training can continue from a previous adapter.
//! - [`merge`] folds the adapters into the base weights (`W' = W + scale · B A`, computed in f32)
//!   and removes them; [`crate::checkpoint::save`] then writes an ordinary full checkpoint.
//!   Saving a model that still has adapters with [`crate::checkpoint::save`] writes its base only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::module::linear;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, tensor::TensorView};

use crate::checkpoint::{CheckpointError, write_atomic};
use crate::model::MllamaForConditionalGeneration;
use crate::text::DecoderLayer;

/// PEFT's adapter configuration file.
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
/// PEFT's adapter weights file.
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// Prefix PEFT's `PeftModel` puts before the base model's module paths.
pub const PEFT_PREFIX: &str = "base_model.model.";

/// The adapters' settings: the fields of PEFT's `LoraConfig` that judgeflow uses.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank `r` of every adapter.
    pub r: usize,
    /// `lora_alpha`; the adapter output is scaled by `lora_alpha / r`.
    pub lora_alpha: f64,
    /// Dropout probability on the adapter input while training.
    pub lora_dropout: f64,
    /// The linear layers that get adapters (see [`LoraConfig::targets`]).
    pub target_modules: TargetModules,
    /// Written to `adapter_config.json` for PEFT (the base checkpoint's directory or hub id).
    pub base_model_name_or_path: Option<String>,
}

impl LoraConfig {
    /// PEFT's usual choice for a Llama decoder: the attention and MLP projections
    /// ([`PROJECTIONS`]).
    pub fn new(r: usize, lora_alpha: f64) -> Self {
        Self {
            r,
            lora_alpha,
            lora_dropout: 0.0,
            target_modules: TargetModules::Names(PROJECTIONS.map(String::from).to_vec()),
            base_model_name_or_path: None,
        }
    }

    /// `lora_alpha / r`.
    pub fn scale(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }

    /// Whether the linear layer at `module_path` gets an adapter, by PEFT's rules (see
    /// [`TargetModules`]); false for an expression that does not compile (`validate` refuses it).
    pub fn targets(&self, module_path: &str) -> bool {
        self.target_modules
            .matcher()
            .is_ok_and(|m| m.matches(module_path))
    }

    /// Checks the settings: a positive rank and alpha, a dropout in [0, 1), targets that are a
    /// non-empty list or a regular expression that compiles.
    pub fn validate(&self) -> Result<(), LoraError> {
        let bad = |message: String| Err(LoraError::Config { message });
        if self.r == 0 {
            return bad("r must be at least 1".into());
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return bad(format!(
                "lora_alpha must be positive, not {}",
                self.lora_alpha
            ));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return bad(format!(
                "lora_dropout must be in [0, 1), not {}",
                self.lora_dropout
            ));
        }
        match &self.target_modules {
            TargetModules::Names(names) if names.is_empty() => {
                return bad("target_modules is empty".into());
            }
            TargetModules::Names(_) => {}
            TargetModules::Regex(_) => {
                self.target_modules.matcher()?;
            }
        }
        Ok(())
    }

    /// `adapter_config.json` as PEFT writes it (keys sorted, two-space indent), for a LoRA
    /// without PEFT's optional extras (DoRA, rsLoRA, biases, rank/alpha patterns, modules to save).
    pub fn to_peft_json(&self) -> String {
        use serde_json::{Value, json};
        let alpha = if self.lora_alpha.fract() == 0.0 && self.lora_alpha < 1e15 {
            json!(self.lora_alpha as i64)
        } else {
            json!(self.lora_alpha)
        };
        let targets = match &self.target_modules {
            TargetModules::Names(names) => {
                json!(names.iter().map(String::as_str).collect::<BTreeSet<_>>())
            }
            TargetModules::Regex(pattern) => json!(pattern),
        };
        let fields: BTreeMap<&str, Value> = BTreeMap::from([
            ("alpha_pattern", json!({})),
            ("auto_mapping", Value::Null),
            (
                "base_model_name_or_path",
                json!(self.base_model_name_or_path),
            ),
            ("bias", json!("none")),
            ("exclude_modules", Value::Null),
            ("fan_in_fan_out", json!(false)),
            ("inference_mode", json!(true)),
            ("init_lora_weights", json!(true)),
            ("layer_replication", Value::Null),
            ("layers_pattern", Value::Null),
            ("layers_to_transform", Value::Null),
            ("lora_alpha", alpha),
            ("lora_bias", json!(false)),
            ("lora_dropout", json!(self.lora_dropout)),
            ("modules_to_save", Value::Null),
            ("peft_type", json!("LORA")),
            ("r", json!(self.r)),
            ("rank_pattern", json!({})),
            ("revision", Value::Null),
            ("target_modules", targets),
            ("task_type", Value::Null),
            ("use_dora", json!(false)),
            ("use_rslora", json!(false)),
        ]);
        serde_json::to_string_pretty(&fields).expect("JSON values serialize")
    }

    /// Reads PEFT's `adapter_config.json`, refusing the options judgeflow does not implement
    /// rather than ignoring them.
    pub fn from_peft_json(text: &str) -> Result<Self, LoraError> {
        let bad = |message: String| LoraError::Config { message };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        if v["peft_type"].as_str() != Some("LORA") {
            return Err(bad(format!(
                "peft_type is {}, judgeflow reads \"LORA\" adapters",
                v["peft_type"]
            )));
        }
        let unsupported = [
            ("use_dora", v["use_dora"].as_bool() == Some(true)),
            ("use_rslora", v["use_rslora"].as_bool() == Some(true)),
            (
                "fan_in_fan_out",
                v["fan_in_fan_out"].as_bool() == Some(true),
            ),
            ("lora_bias", v["lora_bias"].as_bool() == Some(true)),
            (
                "bias",
                !v["bias"].is_null() && v["bias"].as_str() != Some("none"),
            ),
            ("modules_to_save", !is_empty(&v["modules_to_save"])),
            ("rank_pattern", !is_empty(&v["rank_pattern"])),
            ("alpha_pattern", !is_empty(&v["alpha_pattern"])),
            ("layers_to_transform", !is_empty(&v["layers_to_transform"])),
            ("exclude_modules", !is_empty(&v["exclude_modules"])),
            ("layer_replication", !is_empty(&v["layer_replication"])),
            (
                "trainable_token_indices",
                !is_empty(&v["trainable_token_indices"]),
            ),
            ("target_parameters", !is_empty(&v["target_parameters"])),
        ];
        if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(bad(format!(
                "`{key}` is set ({}); judgeflow implements plain LoRA only",
                v[*key]
            )));
        }
        let target_modules = match &v["target_modules"] {
            serde_json::Value::Array(items) => TargetModules::Names(
                items
                    .iter()
                    .map(|t| t.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("target_modules holds a non-string".into()))?,
            ),
            serde_json::Value::String(s) => TargetModules::Regex(s.clone()),
            other => return Err(bad(format!("target_modules is {other}"))),
        };
        let config = Self {
            r: v["r"]
                .as_u64()
                .ok_or_else(|| bad(format!("r is {}", v["r"])))? as usize,
            lora_alpha: v["lora_alpha"]
                .as_f64()
                .ok_or_else(|| bad(format!("lora_alpha is {}", v["lora_alpha"])))?,
            lora_dropout: v["lora_dropout"].as_f64().unwrap_or(0.0),
            target_modules,
            base_model_name_or_path: v["base_model_name_or_path"].as_str().map(String::from),
        };
        config.validate()?;
        Ok(config)
    }
}

/// The names of a Llama decoder layer's attention and MLP projections: PEFT's usual
/// `target_modules` for it, and the names [`LANGUAGE_MODEL_TARGETS`] alternates over.
pub const PROJECTIONS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// An expression for [`TargetModules::Regex`]: the text decoder's attention and MLP projections
/// (self- and cross-attention layers), leaving the vision tower and the projector frozen. With
/// nothing trainable before the decoder, the vision tower's activations are not kept for the
/// backward pass: at the 11B shape that is the difference between a LoRA step that fits and one
/// that does not. PEFT reads the same string.
pub const LANGUAGE_MODEL_TARGETS: &str =
    r"model\.language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)";

/// Which linear layers get adapters: PEFT's two forms of `target_modules`.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetModules {
    /// A list of names: a module path equal to a name or ending with `"." + name`.
    Names(Vec<String>),
    /// A regular expression that must match the whole module path (Python's `re.fullmatch`;
    /// the `regex` crate's syntax, which agrees with Python's on classes, groups, alternation
    /// and repetition).
    Regex(String),
}

impl TargetModules {
    fn matcher(&self) -> Result<TargetMatcher<'_>, LoraError> {
        Ok(match self {
            TargetModules::Names(names) => TargetMatcher::Names(names),
            TargetModules::Regex(pattern) => {
                let bad = |e: regex::Error| LoraError::Config {
                    message: format!("target_modules {pattern:?} is not a regular expression: {e}"),
                };
                // The user's own text first, so that an error points into it, then anchored.
                regex::Regex::new(pattern).map_err(bad)?;
                TargetMatcher::Regex(regex::Regex::new(&format!("^(?:{pattern})$")).map_err(bad)?)
            }
        })
    }
}

impl std::fmt::Display for TargetModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetModules::Names(names) => write!(f, "{names:?}"),
            TargetModules::Regex(pattern) => write!(f, "the regular expression {pattern:?}"),
        }
    }
}

/// [`TargetModules`] ready to test paths (the expression compiled once).
enum TargetMatcher<'a> {
    Names(&'a [String]),
    Regex(regex::Regex),
}

impl TargetMatcher<'_> {
    fn matches(&self, module_path: &str) -> bool {
        match self {
            TargetMatcher::Names(names) => names.iter().any(|t| {
                module_path == t
                    || module_path
                        .strip_suffix(t.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }),
            TargetMatcher::Regex(re) => re.is_match(module_path),
        }
    }
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        serde_json::Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Why adapters could not be attached, loaded or saved.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoraError {
    /// The settings are invalid or use a PEFT option judgeflow does not implement.
    #[error("invalid LoRA configuration: {message}")]
    #[diagnostic(code(judgeflow_model::lora::config))]
    Config {
        /// What is wrong.
        message: String,
    },
    /// No linear layer matched `target_modules`.
    #[error("no linear layer of the model matches target_modules {targets}")]
    #[diagnostic(
        code(judgeflow_model::lora::no_target),
        help(
            "targets match module paths by their end, as in PEFT: q_proj, k_proj, v_proj, o_proj, \
             gate_proj, up_proj, down_proj, fc1, fc2, multi_modal_projector, lm_head, or a longer \
             path such as model.language_model.layers.3.self_attn.q_proj; a regular expression \
             must match a whole path"
        )
    )]
    NoTarget {
        /// The targets given.
        targets: TargetModules,
    },
    /// The model already has adapters.
    #[error("the model already has LoRA adapters")]
    #[diagnostic(
        code(judgeflow_model::lora::already_adapted),
        help("merge them first, or load the adapters onto the plain base model")
    )]
    AlreadyAdapted,
    /// The model has no adapters.
    #[error("the model has no LoRA adapters")]
    #[diagnostic(code(judgeflow_model::lora::no_adapters))]
    NoAdapters,
    /// The adapter file does not fit the configuration and the base model.
    #[error(
        "{} does not fit the base model and adapter_config.json: {} missing, {} mis-shaped, {} unexpected",
        path.display(), missing.len(), mismatched.len(), unexpected.len()
    )]
    #[diagnostic(
        code(judgeflow_model::lora::mismatch),
        help("missing: {missing:?}\nmis-shaped: {mismatched:?}\nunexpected: {unexpected:?}")
    )]
    Mismatch {
        /// The adapter weights file.
        path: PathBuf,
        /// PEFT tensor names the adapted modules need and the file lacks.
        missing: Vec<String>,
        /// `name: expected [..], found [..]`.
        mismatched: Vec<String>,
        /// Tensors of the file that no adapted module takes.
        unexpected: Vec<String>,
    },
    /// Reading or writing files.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// One adapter: `scale · B(A(dropout(x)))`.
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// A, `[in, r]` (burn's layout; PEFT's `lora_A.weight` is its transpose), f32.
    pub lora_a: Param<Tensor<B, 2>>,
    /// B, `[r, out]` (PEFT's `lora_B.weight` transposed), f32, zero when attached.
    pub lora_b: Param<Tensor<B, 2>>,
    /// On the adapter input, while training.
    pub dropout: Dropout,
    /// `lora_alpha / r`.
    pub scale: f64,
}

/// A linear layer that may carry a LoRA adapter. Checkpoints see only `base`: its parameters
/// keep the names of a plain linear layer (see [`crate::checkpoint`]).
#[derive(Module, Debug)]
pub struct LoraLinear<B: Backend> {
    /// The (frozen, once adapted) layer.
    pub base: Linear<B>,
    /// The adapter, if any.
    pub adapter: Option<LoraAdapter<B>>,
}

impl<B: Backend> From<Linear<B>> for LoraLinear<B> {
    fn from(base: Linear<B>) -> Self {
        Self {
            base,
            adapter: None,
        }
    }
}

impl<B: Backend> LoraLinear<B> {
    /// # Shapes
    /// - x: `[..., in]`
    /// - output: `[..., out]`
    ///
    /// The leading dimensions are flattened into one row dimension, so every product is one
    /// 2-D `[rows, in] x [in, out]` matmul. burn's `linear` would broadcast the weight over the
    /// batch instead: a batched matmul that, at decode time (`[batch, 1, in]`), is `batch`
    /// vector-matrix products each reading the whole weight (see `notes/gpu.md`, session 7).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dims = x.dims();
        let (i, o) = self.features();
        let rows = dims[..D - 1].iter().product::<usize>();
        let mut out_dims = dims;
        out_dims[D - 1] = o;
        let x = x.reshape([rows, i]);
        let y = match &self.adapter {
            None => self.base.forward(x),
            Some(adapter) => {
                let y = self.base.forward(x.clone());
                let dtype = y.dtype();
                let h = adapter.dropout.forward(x.cast(DType::F32));
                let delta = linear(
                    linear(h, adapter.lora_a.val(), None),
                    adapter.lora_b.val(),
                    None,
                )
                .mul_scalar(adapter.scale);
                (y.cast(DType::F32) + delta).cast(dtype)
            }
        };
        y.reshape(out_dims)
    }

    /// `(in, out)` features.
    pub fn features(&self) -> (usize, usize) {
        let [i, o] = self.base.weight.dims();
        (i, o)
    }
}

/// Calls `f` with the transformers-5 module path (`model.language_model.layers.3.self_attn.q_proj`,
/// `model.vision_model.transformer.layers.0.mlp.fc1`, `model.multi_modal_projector`, `lm_head`)
/// and the layer, for every linear layer of the model, in checkpoint order.
pub fn for_each_linear<B: Backend>(
    model: &mut MllamaForConditionalGeneration<B>,
    mut f: impl FnMut(&str, &mut LoraLinear<B>),
) {
    let vision = &mut model.vision_model;
    for (encoder, name) in [
        (&mut vision.transformer, "transformer"),
        (&mut vision.global_transformer, "global_transformer"),
    ] {
        for (i, layer) in encoder.layers.iter_mut().enumerate() {
            let prefix = format!("model.vision_model.{name}.layers.{i}");
            let a = &mut layer.self_attn;
            for (n, lin) in [
                ("q_proj", &mut a.q_proj),
                ("k_proj", &mut a.k_proj),
                ("v_proj", &mut a.v_proj),
                ("o_proj", &mut a.o_proj),
            ] {
                f(&format!("{prefix}.self_attn.{n}"), lin);
            }
            f(&format!("{prefix}.mlp.fc1"), &mut layer.mlp.fc1);
            f(&format!("{prefix}.mlp.fc2"), &mut layer.mlp.fc2);
        }
    }
    for (i, layer) in model.language_model.model.layers.iter_mut().enumerate() {
        let prefix = format!("model.language_model.layers.{i}");
        let (attn, a, mlp) = match layer {
            DecoderLayer::SelfAttention(l) => (
                "self_attn",
                [
                    &mut l.self_attn.q_proj,
                    &mut l.self_attn.k_proj,
                    &mut l.self_attn.v_proj,
                    &mut l.self_attn.o_proj,
                ],
                &mut l.mlp,
            ),
            DecoderLayer::CrossAttention(l) => (
                "cross_attn",
                [
                    &mut l.cross_attn.q_proj,
                    &mut l.cross_attn.k_proj,
                    &mut l.cross_attn.v_proj,
                    &mut l.cross_attn.o_proj,
                ],
                &mut l.mlp,
            ),
        };
        for (n, lin) in ["q_proj", "k_proj", "v_proj", "o_proj"].iter().zip(a) {
            f(&format!("{prefix}.{attn}.{n}"), lin);
        }
        f(&format!("{prefix}.mlp.gate_proj"), &mut mlp.gate_proj);
        f(&format!("{prefix}.mlp.up_proj"), &mut mlp.up_proj);
        f(&format!("{prefix}.mlp.down_proj"), &mut mlp.down_proj);
    }
    f(
        "model.multi_modal_projector",
        &mut model.multi_modal_projector,
    );
    f("lm_head", &mut model.language_model.lm_head);
}

/// Module paths of the adapted linear layers, in checkpoint order.
pub fn adapted_modules<B: Backend>(model: &MllamaForConditionalGeneration<B>) -> Vec<String> {
    let mut model = model.clone();
    let mut paths = Vec::new();
    for_each_linear(&mut model, |path, lin| {
        if lin.adapter.is_some() {
            paths.push(path.to_string());
        }
    });
    paths
}

/// Freezes the model and gives every linear layer that `config` targets a fresh adapter (A
/// random from `seed`, B zero). Fails when nothing matches or the model already has adapters.
pub fn attach<B: Backend>(
    model: MllamaForConditionalGeneration<B>,
    config: &LoraConfig,
    seed: u64,
) -> Result<MllamaForConditionalGeneration<B>, LoraError> {
    config.validate()?;
    if model.lora.is_some() {
        return Err(LoraError::AlreadyAdapted);
    }
    let mut model = model.no_grad();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut matched = 0;
    let targets = config.target_modules.matcher()?;
    for_each_linear(&mut model, |path, lin| {
        if !targets.matches(path) {
            return;
        }
        matched += 1;
        let (fan_in, fan_out) = lin.features();
        let device = lin.base.weight.device();
        // PEFT's default: kaiming_uniform_(a = sqrt(5)) on A, i.e. U(-1/sqrt(in), 1/sqrt(in)).
        let bound = 1.0 / (fan_in as f64).sqrt();
        let a: Vec<f32> = (0..fan_in * config.r)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect();
        let a = TensorData::new(a, [fan_in, config.r]);
        let b = TensorData::zeros::<f32, _>([config.r, fan_out]);
        lin.adapter = Some(new_adapter(a, b, config, &device));
    });
    if matched == 0 {
        return Err(LoraError::NoTarget {
            targets: config.target_modules.clone(),
        });
    }
    let mut config = config.clone();
    if let TargetModules::Names(names) = &mut config.target_modules {
        names.sort();
        names.dedup();
    }
    model.lora = Some(config);
    Ok(model)
}

/// A trainable adapter from host data in burn's layout (`a: [in, r]`, `b: [r, out]`).
fn new_adapter<B: Backend>(
    a: TensorData,
    b: TensorData,
    config: &LoraConfig,
    device: &B::Device,
) -> LoraAdapter<B> {
    let param = |data: TensorData| {
        Param::from_tensor(Tensor::<B, 2>::from_data(
            data.convert::<f32>(),
            (device, DType::F32),
        ))
    };
    LoraAdapter {
        lora_a: param(a),
        lora_b: param(b),
        dropout: DropoutConfig::new(config.lora_dropout).init(),
        scale: config.scale(),
    }
}

/// PEFT's saved name of an adapter tensor: `which` is `lora_A` or `lora_B`.
pub fn peft_tensor_name(module_path: &str, which: &str) -> String {
    format!("{PEFT_PREFIX}{module_path}.{which}.weight")
}

/// The module path and `lora_A`/`lora_B` of a PEFT tensor name, with transformers-4 module paths
/// (`language_model.model.*`, `vision_model.*`, `multi_modal_projector`,
/// `language_model.lm_head`) mapped onto transformers 5's.
pub fn parse_peft_tensor_name(name: &str) -> Option<(String, &'static str)> {
    let rest = name.strip_prefix(PEFT_PREFIX)?;
    let (path, which) = if let Some(p) = rest.strip_suffix(".lora_A.weight") {
        (p, "lora_A")
    } else {
        (rest.strip_suffix(".lora_B.weight")?, "lora_B")
    };
    const RENAMES: [(&str, &str); 4] = [
        ("language_model.model.", "model.language_model."),
        ("language_model.lm_head", "lm_head"),
        ("vision_model.", "model.vision_model."),
        ("multi_modal_projector", "model.multi_modal_projector"),
    ];
    for (from, to) in RENAMES {
        if let Some(tail) = path.strip_prefix(from) {
            return Some((format!("{to}{tail}"), which));
        }
    }
    Some((path.to_string(), which))
}

/// The adapter tensors under PEFT's names, in torch layout (`lora_A`: `[r, in]`, `lora_B`:
/// `[out, r]`), f32, in checkpoint order.
pub fn adapter_tensors<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
) -> Vec<(String, TensorData)> {
    let mut model = model.clone();
    let mut tensors = Vec::new();
    for_each_linear(&mut model, |path, lin| {
        if let Some(a) = &lin.adapter {
            for (which, p) in [("lora_A", &a.lora_a), ("lora_B", &a.lora_b)] {
                let data = p.val().cast(DType::F32).transpose().into_data();
                tensors.push((peft_tensor_name(path, which), data.convert::<f32>()));
            }
        }
    });
    tensors
}

/// Writes the adapters in PEFT's format: `dir/adapter_config.json` and
/// `dir/adapter_model.safetensors` (each atomically).
pub fn save_adapter<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    dir: impl AsRef<Path>,
) -> Result<(), LoraError> {
    let dir = dir.as_ref();
    let config = model.lora.as_ref().ok_or(LoraError::NoAdapters)?;
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let tensors = adapter_tensors(model);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, data)| {
            let view = TensorView::new(Dtype::F32, data.shape.to_vec(), data.as_bytes())
                .expect("burn tensor data matches its shape");
            (name.clone(), view)
        })
        .collect();
    let path = dir.join(ADAPTER_WEIGHTS_FILE);
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    let bytes = safetensors::serialize(views, metadata).map_err(|e| CheckpointError::Format {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &bytes)?;
    write_atomic(
        &dir.join(ADAPTER_CONFIG_FILE),
        config.to_peft_json().as_bytes(),
    )?;
    Ok(())
}

/// Reads `dir/adapter_config.json`.
pub fn read_adapter_config(dir: impl AsRef<Path>) -> Result<LoraConfig, LoraError> {
    let path = dir.as_ref().join(ADAPTER_CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| CheckpointError::Io {
        path: path.clone(),
        source,
    })?;
    LoraConfig::from_peft_json(&text).map_err(|e| match e {
        LoraError::Config { message } => LoraError::Config {
            message: format!("{}: {message}", path.display()),
        },
        other => other,
    })
}

/// Loads a PEFT adapter directory onto `model` (a plain base): attaches adapters where its
/// `adapter_config.json` targets and fills them from `adapter_model.safetensors`, checking that
/// every adapted module has both tensors with the right shapes and that no tensor is left over.
/// The adapters are trainable, the base frozen, as after [`attach`].
pub fn load_adapter<B: Backend>(
    model: MllamaForConditionalGeneration<B>,
    dir: impl AsRef<Path>,
) -> Result<MllamaForConditionalGeneration<B>, LoraError> {
    let dir = dir.as_ref();
    let config = read_adapter_config(dir)?;
    let weights = dir.join(ADAPTER_WEIGHTS_FILE);
    // (module path, lora_A | lora_B) -> (name in the file, torch-layout data)
    let mut stored: BTreeMap<(String, &'static str), (String, TensorData)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (name, data) in crate::checkpoint::read_safetensors_file(&weights)? {
        match parse_peft_tensor_name(&name) {
            Some(key) => {
                stored.insert(key, (name, data));
            }
            None => unexpected.push(name),
        }
    }
    let mut model = attach(model, &config, 0)?;
    let (mut missing, mut mismatched) = (Vec::new(), Vec::new());
    for_each_linear(&mut model, |path, lin| {
        let Some(adapter) = &lin.adapter else { return };
        let (fan_in, fan_out) = lin.features();
        let device = adapter.lora_a.device();
        let mut take = |which: &'static str, shape: [usize; 2]| {
            let Some((name, data)) = stored.remove(&(path.to_string(), which)) else {
                missing.push(peft_tensor_name(path, which));
                return None;
            };
            if data.shape.to_vec() != shape {
                mismatched.push(format!(
                    "{name}: expected {shape:?}, found {:?}",
                    data.shape.to_vec()
                ));
                return None;
            }
            // torch layout -> burn layout
            Some(
                Tensor::<B, 2>::from_data(data.convert::<f32>(), (&device, DType::F32)).transpose(),
            )
        };
        let a = take("lora_A", [config.r, fan_in]);
        let b = take("lora_B", [fan_out, config.r]);
        if let (Some(a), Some(b)) = (a, b) {
            lin.adapter = Some(LoraAdapter {
                lora_a: Param::from_tensor(a),
                lora_b: Param::from_tensor(b),
                dropout: DropoutConfig::new(config.lora_dropout).init(),
                scale: config.scale(),
            });
        }
    });
    unexpected.extend(stored.into_values().map(|(name, _)| name));
    if missing.is_empty() && mismatched.is_empty() && unexpected.is_empty() {
        Ok(model)
    } else {
        Err(LoraError::Mismatch {
            path: weights,
            missing,
            mismatched,
            unexpected,
        })
    }
}

/// Folds every adapter into its base weight, `W' = W + scale · B A` (computed in f32, stored in
/// the base weight's dtype), and removes the adapters: the result is a plain model whose
/// outputs equal the adapted model's up to rounding.
pub fn merge<B: Backend>(
    model: MllamaForConditionalGeneration<B>,
) -> Result<MllamaForConditionalGeneration<B>, LoraError> {
    if model.lora.is_none() {
        return Err(LoraError::NoAdapters);
    }
    let mut model = model;
    for_each_linear(&mut model, |_, lin| {
        let Some(adapter) = lin.adapter.take() else {
            return;
        };
        let delta = adapter
            .lora_a
            .val()
            .matmul(adapter.lora_b.val())
            .mul_scalar(adapter.scale);
        let id = lin.base.weight.id;
        let w = lin.base.weight.val();
        let dtype = w.dtype();
        let merged = (w.cast(DType::F32) + delta).cast(dtype).detach();
        lin.base.weight = Param::initialized(id, merged);
    });
    model.lora = None;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_module_path_ends_as_in_peft() {
        let config = LoraConfig {
            target_modules: TargetModules::Names(vec![
                "q_proj".into(),
                "mlp.fc1".into(),
                "lm_head".into(),
            ]),
            ..LoraConfig::new(4, 8.0)
        };
        assert!(config.targets("model.language_model.layers.0.self_attn.q_proj"));
        assert!(config.targets("model.language_model.layers.1.cross_attn.q_proj"));
        assert!(config.targets("model.vision_model.transformer.layers.0.self_attn.q_proj"));
        assert!(config.targets("model.vision_model.global_transformer.layers.1.mlp.fc1"));
        assert!(config.targets("lm_head"));
        assert!(!config.targets("model.language_model.layers.0.self_attn.k_proj"));
        assert!(!config.targets("model.language_model.layers.0.self_attn.xq_proj"));
        assert!(!config.targets("model.vision_model.transformer.layers.0.mlp.fc2"));
    }

    #[test]
    fn peft_names_parse_with_transformers_4_and_5_paths() {
        let v5 = "base_model.model.model.language_model.layers.3.self_attn.q_proj.lora_A.weight";
        assert_eq!(
            parse_peft_tensor_name(v5),
            Some((
                "model.language_model.layers.3.self_attn.q_proj".into(),
                "lora_A"
            ))
        );
        assert_eq!(
            peft_tensor_name("model.language_model.layers.3.self_attn.q_proj", "lora_A"),
            v5
        );
        for (v4, v5) in [
            (
                "base_model.model.language_model.model.layers.3.mlp.up_proj.lora_B.weight",
                "model.language_model.layers.3.mlp.up_proj",
            ),
            (
                "base_model.model.language_model.lm_head.lora_B.weight",
                "lm_head",
            ),
            (
                "base_model.model.vision_model.transformer.layers.0.mlp.fc1.lora_B.weight",
                "model.vision_model.transformer.layers.0.mlp.fc1",
            ),
            (
                "base_model.model.multi_modal_projector.lora_B.weight",
                "model.multi_modal_projector",
            ),
        ] {
            assert_eq!(parse_peft_tensor_name(v4), Some((v5.to_string(), "lora_B")));
        }
        assert_eq!(
            parse_peft_tensor_name("base_model.model.lm_head.lora_magnitude_vector"),
            None
        );
    }

    #[test]
    fn config_round_trips_through_peft_json() {
        let config = LoraConfig {
            lora_dropout: 0.05,
            base_model_name_or_path: Some("/models/llama".into()),
            ..LoraConfig::new(16, 32.0)
        };
        let json = config.to_peft_json();
        assert!(json.contains("\"lora_alpha\": 32,"), "{json}");
        assert_eq!(LoraConfig::from_peft_json(&json).unwrap().r, 16);
        let sorted = |mut c: LoraConfig| {
            if let TargetModules::Names(names) = &mut c.target_modules {
                names.sort();
            }
            c
        };
        let parsed = LoraConfig::from_peft_json(&json).unwrap();
        assert_eq!(sorted(parsed), sorted(config.clone()));
        let dora = json.replace("\"use_dora\": false", "\"use_dora\": true");
        assert!(LoraConfig::from_peft_json(&dora).is_err());
    }

    #[test]
    fn a_regular_expression_target_is_written_and_read_as_peft_s_string_form() {
        let config = LoraConfig {
            target_modules: TargetModules::Regex(LANGUAGE_MODEL_TARGETS.into()),
            ..LoraConfig::new(8, 16.0)
        };
        let json = config.to_peft_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["target_modules"],
            serde_json::json!(LANGUAGE_MODEL_TARGETS)
        );
        assert_eq!(LoraConfig::from_peft_json(&json).unwrap(), config);
        // Python's re.fullmatch: the whole path, not a part of it.
        assert!(config.targets("model.language_model.layers.7.cross_attn.o_proj"));
        assert!(config.targets("model.language_model.layers.0.mlp.gate_proj"));
        assert!(!config.targets("model.vision_model.transformer.layers.0.self_attn.q_proj"));
        assert!(!config.targets("model.language_model.layers.0.self_attn.q_proj.extra"));
        assert!(!config.targets("lm_head"));
        let mut broken = v.clone();
        broken["target_modules"] = serde_json::json!("(q_proj");
        let err = LoraConfig::from_peft_json(&broken.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular expression"), "{err}");
    }
}
