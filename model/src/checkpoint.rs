//! Checkpoints as safetensors + `config.json`, under HF's parameter names and layouts, so the
//! same loader reads our checkpoints and the real Llama-3.2-11B-Vision shards.
//!
//! Name mapping: a parameter's name is its module path (enum variants skipped), with burn's
//! norm fields renamed (`gamma` → `weight`, `beta` → `bias`); linear weights are stored
//! transposed (`[out, in]`, torch's layout; burn keeps `[in, out]`). transformers 5 renamed the
//! prefixes (`model.language_model.*`, `model.vision_model.*`, `lm_head.*`); both spellings
//! load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::DType;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::backend::UploadGuard;
use crate::config::{ConfigError, MllamaConfig};
use crate::model::MllamaForConditionalGeneration;

/// File name of the weights inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the configuration inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";

/// Errors saving or loading checkpoints.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CheckpointError {
    /// Filesystem failure.
    #[error("checkpoint I/O failed on {path}")]
    #[diagnostic(code(judgeflow_model::checkpoint::io))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configuration could not be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// A file is not valid safetensors.
    #[error("invalid safetensors file {path}: {message}")]
    #[diagnostic(code(judgeflow_model::checkpoint::format))]
    Format {
        /// The file.
        path: PathBuf,
        /// What safetensors reported.
        message: String,
    },
    /// No weights were found.
    #[error("no model.safetensors or model.safetensors.index.json in {0}")]
    #[diagnostic(code(judgeflow_model::checkpoint::empty))]
    NoWeights(PathBuf),
    /// The weights do not fit the model built from the configuration.
    #[error(
        "checkpoint does not match the model: {} missing, {} with wrong shape, {} unexpected",
        missing.len(), mismatched.len(), unexpected.len()
    )]
    #[diagnostic(
        code(judgeflow_model::checkpoint::mismatch),
        help("missing: {missing:?}\nwrong shape: {mismatched:?}\nunexpected: {unexpected:?}")
    )]
    Mismatch {
        /// Model parameters the files lack.
        missing: Vec<String>,
        /// `name: expected [..], found [..]` (shapes in torch layout).
        mismatched: Vec<String>,
        /// Tensors in the files that the model has no parameter for.
        unexpected: Vec<String>,
    },
    /// The device failed while the weights were uploaded to it.
    #[error("the device failed while loading the weights: {message}")]
    #[diagnostic(
        code(judgeflow_model::checkpoint::device),
        help(
            "on a GPU this is usually memory: the model's weights do not fit beside what else runs there"
        )
    )]
    Device {
        /// What the backend reported.
        message: String,
    },
    /// An external weight file changed after its content was hashed.
    #[error("{} changed after judgeflow hashed it", path.display())]
    #[diagnostic(
        code(judgeflow_model::checkpoint::stale),
        help(
            "run the pipeline again: the `hf_model` source re-hashes changed files and the nodes using them re-run"
        )
    )]
    Stale {
        /// The file.
        path: PathBuf,
    },
    /// A tensor has a dtype we cannot read.
    #[error("tensor {name} has unsupported dtype {dtype}")]
    #[diagnostic(code(judgeflow_model::checkpoint::dtype))]
    Dtype {
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Tracks the module path during visits; `(field name, container type)` per level.
#[derive(Default)]
struct PathStack(Vec<(String, String)>);

impl PathStack {
    fn enter(&mut self, name: &str, container: &str) {
        self.0.push((name.to_string(), container.to_string()));
    }

    fn exit(&mut self) {
        self.0.pop();
    }

    /// Whether the current parameter belongs to a LoRA adapter (not part of a checkpoint).
    fn in_adapter(&self) -> bool {
        self.0
            .iter()
            .any(|(_, container)| container == "Struct:LoraAdapter")
    }

    /// HF name of the current parameter and whether it is a linear weight (stored transposed).
    fn hf_name(&self) -> (String, bool) {
        let (field, parent) = self.0.last().expect("parameters live inside modules");
        let is_norm = parent == "Struct:LayerNorm" || parent == "Struct:RmsNorm";
        let leaf = match (is_norm, field.as_str()) {
            (true, "gamma") => "weight",
            (true, "beta") => "bias",
            (_, f) => f,
        };
        let mut parts: Vec<&str> = self
            .0
            .iter()
            .take(self.0.len() - 1)
            .filter(|(name, container)| {
                // Enum variants, and the `base` of a LoRA-capable linear layer, add no name.
                !container.starts_with("Enum:")
                    && (container != "Struct:LoraLinear" || name != "base")
            })
            .map(|(name, _)| name.as_str())
            .collect();
        parts.push(leaf);
        (
            parts.join("."),
            parent == "Struct:Linear" && field == "weight",
        )
    }
}

struct Collector {
    path: PathStack,
    tensors: Vec<(String, TensorData)>,
}

impl<B: Backend> ModuleVisitor<B> for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.path.in_adapter() {
            return;
        }
        let (name, transpose) = self.path.hf_name();
        let value = param.val();
        let value = if transpose { value.transpose() } else { value };
        self.tensors.push((name, value.into_data()));
    }
}

struct ShapeCollector {
    path: PathStack,
    shapes: Vec<(String, Vec<usize>)>,
}

impl<B: Backend> ModuleVisitor<B> for ShapeCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.path.in_adapter() {
            return;
        }
        let (name, transpose) = self.path.hf_name();
        let mut shape = param.lazy_shape().to_vec();
        if transpose {
            shape.reverse();
        }
        self.shapes.push((name, shape));
    }
}

/// The tensors a checkpoint of `config` must hold: HF names and torch-layout shapes. Builds the
/// model with lazily initialised parameters, so even the 11B shape costs no memory or time.
pub fn expected_tensors(config: &MllamaConfig) -> Vec<(String, Vec<usize>)> {
    let device = Default::default();
    let model: MllamaForConditionalGeneration<crate::backend::CpuBackend> = config.init(&device);
    let mut collector = ShapeCollector {
        path: PathStack::default(),
        shapes: vec![],
    };
    model.visit(&mut collector);
    collector.shapes
}

/// Parameters of `model` under their HF names, in torch layout (without a patch probe).
pub fn named_tensors<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
) -> Vec<(String, TensorData)> {
    let mut collector = Collector {
        path: PathStack::default(),
        tensors: vec![],
    };
    model.visit(&mut collector);
    // The patch probe is a pretraining aid, not part of the model (its field's doc).
    collector
        .tensors
        .into_iter()
        .filter(|(name, _)| !name.starts_with("patch_probe."))
        .collect()
}

fn safetensors_dtype(dtype: DType) -> Option<Dtype> {
    match dtype {
        DType::F32 => Some(Dtype::F32),
        DType::BF16 => Some(Dtype::BF16),
        DType::F16 => Some(Dtype::F16),
        _ => None,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Saves `model` to `dir/model.safetensors` and `dir/config.json` (each written atomically).
/// Tensors keep the backend's float dtype (f32, bf16 or f16).
pub fn save<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    dir: impl AsRef<Path>,
) -> Result<(), CheckpointError> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tensors: Vec<(String, TensorData)> = named_tensors(model)
        .into_iter()
        .map(|(name, data)| match safetensors_dtype(data.dtype) {
            Some(_) => (name, data),
            None => (name, data.convert::<f32>()),
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, data)| {
            let dtype = safetensors_dtype(data.dtype).expect("converted above");
            let view = TensorView::new(dtype, data.shape.to_vec(), data.as_bytes())
                .expect("burn tensor data matches its shape");
            (name.clone(), view)
        })
        .collect();
    let path = dir.join(WEIGHTS_FILE);
    let bytes = safetensors::serialize(views, None).map_err(|e| CheckpointError::Format {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &bytes)?;
    write_atomic(&dir.join(CONFIG_FILE), model.config().to_json().as_bytes())
}

/// Maps transformers-5 names onto the hub names we use.
pub(crate) fn canonical_name(name: &str) -> String {
    const RENAMES: [(&str, &str); 4] = [
        ("model.language_model.", "language_model.model."),
        ("model.vision_model.", "vision_model."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
        ("lm_head.", "language_model.lm_head."),
    ];
    for (from, to) in RENAMES {
        if let Some(rest) = name.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    name.to_string()
}

struct Loader<'a, B: Backend> {
    path: PathStack,
    tensors: &'a mut BTreeMap<String, TensorData>,
    device: B::Device,
    missing: Vec<String>,
    mismatched: Vec<String>,
    /// See [`UploadGuard`]: an 11B checkpoint is 21 GB of uploads and no kernel.
    uploads: UploadGuard,
    /// The first device failure while uploading.
    device_error: Option<String>,
}

impl<B: Backend> ModuleMapper<B> for Loader<'_, B> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if self.path.in_adapter() {
            return param;
        }
        let (name, transpose) = self.path.hf_name();
        let Some(data) = self.tensors.remove(&name) else {
            self.missing.push(name);
            return param;
        };
        let mut expected = param.lazy_shape().to_vec();
        if transpose {
            expected.reverse();
        }
        let found = data.shape.to_vec();
        if found != expected {
            self.mismatched
                .push(format!("{name}: expected {expected:?}, found {found:?}"));
            return param;
        }
        let bytes = data.bytes.len();
        let tensor = Tensor::<B, D>::from_data(data, &self.device);
        if let Err(e) = self.uploads.uploaded::<B>(bytes, &self.device)
            && self.device_error.is_none()
        {
            self.device_error = Some(e);
        }
        let tensor = if transpose {
            tensor.transpose()
        } else {
            tensor
        };
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

fn read_safetensors(
    path: &Path,
    into: &mut BTreeMap<String, TensorData>,
) -> Result<(), CheckpointError> {
    for (name, data) in read_safetensors_file(path)? {
        into.insert(canonical_name(&name), data);
    }
    Ok(())
}

/// Every tensor of one safetensors file under its name as stored (f32, bf16 or f16; any other
/// dtype is an error naming the tensor).
pub(crate) fn read_safetensors_file(
    path: &Path,
) -> Result<Vec<(String, TensorData)>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::BF16 => DType::BF16,
            Dtype::F16 => DType::F16,
            other => {
                return Err(CheckpointError::Dtype {
                    name,
                    dtype: format!("{other:?}"),
                });
            }
        };
        let data = TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype);
        tensors.push((name, data));
    }
    Ok(tensors)
}

/// Loads weights from safetensors files into `model`, checking that every parameter is present
/// with the right shape and that no tensor is left over.
pub fn load_weights<B: Backend>(
    model: MllamaForConditionalGeneration<B>,
    files: &[PathBuf],
    device: &B::Device,
) -> Result<MllamaForConditionalGeneration<B>, CheckpointError> {
    let mut tensors = BTreeMap::new();
    for file in files {
        read_safetensors(file, &mut tensors)?;
    }
    let mut loader = Loader::<B> {
        path: PathStack::default(),
        tensors: &mut tensors,
        device: device.clone(),
        missing: vec![],
        mismatched: vec![],
        uploads: UploadGuard::new(),
        device_error: None,
    };
    let model = model.map(&mut loader);
    if let Some(message) = loader.device_error {
        return Err(CheckpointError::Device { message });
    }
    let (missing, mismatched) = (loader.missing, loader.mismatched);
    let unexpected: Vec<String> = tensors.into_keys().collect();
    if missing.is_empty() && mismatched.is_empty() && unexpected.is_empty() {
        Ok(model)
    } else {
        Err(CheckpointError::Mismatch {
            missing,
            mismatched,
            unexpected,
        })
    }
}

/// File name of HF's shard index (`weight_map`: tensor name → shard file).
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The weight files of a checkpoint directory, as HF lays them out: the shards named by
/// `model.safetensors.index.json` when present, else `model.safetensors`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    let reference = dir.join(EXTERNAL_WEIGHTS_FILE);
    if reference.exists() {
        return external_weight_files(&reference);
    }
    let index = dir.join(INDEX_FILE);
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(io(&index))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| CheckpointError::Format {
                path: index.clone(),
                message: e.to_string(),
            })?;
        let map = parsed["weight_map"]
            .as_object()
            .ok_or_else(|| CheckpointError::Format {
                path: index.clone(),
                message: "no weight_map object".into(),
            })?;
        let files: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join(WEIGHTS_FILE);
    if single.exists() {
        Ok(vec![single])
    } else {
        Err(CheckpointError::NoWeights(dir.to_path_buf()))
    }
}

/// A checkpoint whose weights stay where the user keeps them (the `hf_model` source): this file
/// lists them by absolute path with the size and modification time they had when their content
/// was hashed into the checkpoint's identity.
pub const EXTERNAL_WEIGHTS_FILE: &str = "external_weights.json";

/// One weight file of an [`EXTERNAL_WEIGHTS_FILE`] list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExternalWeight {
    /// Absolute path.
    pub path: PathBuf,
    /// Bytes when hashed.
    pub size: u64,
    /// Modification time (ns since the epoch) when hashed.
    pub mtime_ns: u128,
    /// blake3 of its bytes, hex.
    pub hash: String,
}

/// Modification time in nanoseconds since the epoch (0 when the platform has none).
pub fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// The files of an external-weights list, refusing any whose bytes changed since they were
/// hashed (a file whose size and mtime are unchanged is trusted, one whose mtime moved is
/// hashed again): the weights would no longer be the ones the cache key names.
fn external_weight_files(reference: &Path) -> Result<Vec<PathBuf>, CheckpointError> {
    let text = std::fs::read_to_string(reference).map_err(io(reference))?;
    let list: Vec<ExternalWeight> =
        serde_json::from_str(&text).map_err(|e| CheckpointError::Format {
            path: reference.to_path_buf(),
            message: e.to_string(),
        })?;
    for weight in &list {
        let meta = std::fs::metadata(&weight.path).map_err(io(&weight.path))?;
        if meta.len() == weight.size && mtime_ns(&meta) == weight.mtime_ns {
            continue;
        }
        // Touched or copied since (mtime moved): still the weights the key names if the bytes
        // are the same.
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_reader(std::fs::File::open(&weight.path).map_err(io(&weight.path))?)
            .map_err(io(&weight.path))?;
        if hasher.finalize().to_hex().as_str() != weight.hash {
            return Err(CheckpointError::Stale {
                path: weight.path.clone(),
            });
        }
    }
    Ok(list.into_iter().map(|w| w.path).collect())
}

/// Loads a checkpoint directory: `config.json` plus `model.safetensors` (ours, or a small HF
/// model) or the shards listed in `model.safetensors.index.json` (HF's large checkpoints).
pub fn load<B: Backend>(
    dir: impl AsRef<Path>,
    device: &B::Device,
) -> Result<MllamaForConditionalGeneration<B>, CheckpointError> {
    let dir = dir.as_ref();
    let config = MllamaConfig::from_json_file(dir.join(CONFIG_FILE))?;
    let files = weight_files(dir)?;
    // Parameters are lazily initialised, so building the model first costs no random init.
    load_weights(config.init(device), &files, device)
}

#[cfg(test)]
mod tests {
    use super::canonical_name;

    #[test]
    fn transformers5_names_map_onto_hub_names() {
        assert_eq!(
            canonical_name("model.language_model.layers.3.cross_attn.q_proj.weight"),
            "language_model.model.layers.3.cross_attn.q_proj.weight"
        );
        assert_eq!(
            canonical_name("lm_head.weight"),
            "language_model.lm_head.weight"
        );
        assert_eq!(
            canonical_name("model.vision_model.class_embedding"),
            "vision_model.class_embedding"
        );
        assert_eq!(
            canonical_name("multi_modal_projector.bias"),
            "multi_modal_projector.bias"
        );
    }
}
