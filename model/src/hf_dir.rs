//! Checking a Hugging Face model directory (Llama-3.2-*-Vision as a user has it on disk)
//! without loading its weights.
//!
//! The promise: [`inspect`] reads `config.json`, `tokenizer.json`, `tokenizer_config.json`
//! (or `chat_template.json` / `chat_template.jinja`), `preprocessor_config.json` when present,
//! and only the *headers* of the safetensors files (a few hundred kB for 22 GB of weights), and
//! either returns what it found or one diagnostic that names the file and, for weights, every
//! tensor that is missing, unexpected, mis-shaped or of an unreadable dtype. A directory that
//! passes loads with [`crate::checkpoint::load`] (barring bytes that change afterwards), so a
//! pipeline can refuse a bad checkpoint before any node spends time on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::chat_template::{ChatTemplate, ChatTemplateError};
use crate::checkpoint::{CONFIG_FILE, INDEX_FILE, WEIGHTS_FILE, canonical_name, expected_tensors};
use crate::config::{ConfigError, MllamaConfig};
use crate::tokenizer::{IMAGE, JudgeTokenizer, TokenizerError};

/// The tokenizer file of a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The image processor settings of a model directory.
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";
/// The only `model_type` judgeflow runs.
pub const MODEL_TYPE: &str = "mllama";

/// Largest safetensors header read (safetensors itself refuses headers over 100 MB).
const MAX_HEADER_BYTES: u64 = 100 << 20;
/// Tensor problems listed one by one; the rest are counted.
const LISTED_PROBLEMS: usize = 12;

/// Why a directory is not a usable mllama checkpoint.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum HfDirError {
    #[error("{} is not a directory", dir.display())]
    #[diagnostic(
        code(judgeflow::hf_model::not_a_directory),
        help("`path` names the model directory (the one holding config.json)")
    )]
    NotADirectory { dir: PathBuf },

    #[error("{} has no {file}", dir.display())]
    #[diagnostic(code(judgeflow::hf_model::missing_file), help("{help}"))]
    MissingFile {
        dir: PathBuf,
        file: String,
        help: &'static str,
    },

    #[error("cannot read {}: {message}", path.display())]
    #[diagnostic(code(judgeflow::hf_model::unreadable))]
    Unreadable { path: PathBuf, message: String },

    #[error("{} has model_type {found:?}; judgeflow runs \"mllama\" checkpoints", path.display())]
    #[diagnostic(
        code(judgeflow::hf_model::model_type),
        help(
            "use an MllamaForConditionalGeneration checkpoint (Llama-3.2-11B-Vision or -Instruct); \
             text-only Llama and other vision models have other architectures"
        )
    )]
    WrongModelType { path: PathBuf, found: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),

    #[error("{} is not a valid safetensors file: {message}", path.display())]
    #[diagnostic(
        code(judgeflow::hf_model::safetensors),
        help("the file may be truncated (an interrupted copy or download): copy it again")
    )]
    Safetensors { path: PathBuf, message: String },

    #[error("the weights in {} do not fit {}: {summary}", dir.display(), config.display())]
    #[diagnostic(code(judgeflow::hf_model::tensors), help("{listing}"))]
    Tensors {
        dir: PathBuf,
        config: PathBuf,
        /// `2 missing, 1 mis-shaped`.
        summary: String,
        /// One line per problem, naming the tensor and its file.
        listing: String,
    },

    #[error("{} cannot be the judge's tokenizer", path.display())]
    #[diagnostic(
        code(judgeflow::hf_model::tokenizer),
        help(
            "a Llama-3.2-Vision tokenizer.json defines <|image|> (id 128256) and the other \
             Llama 3.2 special tokens; a text-only Llama tokenizer lacks <|image|>"
        )
    )]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: TokenizerError,
    },

    #[error(
        "{} gives <|image|> id {tokenizer}, but {} says image_token_index = {config}",
        tokenizer_path.display(), config_path.display()
    )]
    #[diagnostic(
        code(judgeflow::hf_model::image_token),
        help("the tokenizer and the weights come from different models")
    )]
    ImageTokenMismatch {
        tokenizer_path: PathBuf,
        config_path: PathBuf,
        tokenizer: u32,
        config: usize,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    ChatTemplate(#[from] ChatTemplateError),

    #[error("{} says {key} = {found}, but the vision config has {expected}", path.display())]
    #[diagnostic(
        code(judgeflow::hf_model::preprocessor),
        help("preprocessor_config.json and config.json come from different models")
    )]
    Preprocessor {
        path: PathBuf,
        key: &'static str,
        found: String,
        expected: usize,
    },
}

/// What [`inspect`] found in a valid directory.
#[derive(Debug, Clone)]
pub struct HfModelDir {
    pub dir: PathBuf,
    pub config: MllamaConfig,
    /// The safetensors files holding the weights (one, or the shards of the index).
    pub weight_files: Vec<PathBuf>,
    /// Tensors across all weight files.
    pub tensor_count: usize,
    /// Parameters across all weight files.
    pub parameter_count: u64,
    /// Dtypes of the stored tensors (`BF16` for Meta's release).
    pub dtypes: BTreeSet<String>,
    /// Every file the checkpoint consists of (what its identity is made of), sorted.
    pub files: Vec<PathBuf>,
}

/// One tensor entry of a safetensors header.
struct HeaderTensor {
    dtype: String,
    shape: Vec<usize>,
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> HfDirError {
    HfDirError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, HfDirError> {
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, e))?;
    serde_json::from_str(&text).map_err(|e| unreadable(path, format!("invalid JSON: {e}")))
}

/// Reads the header of a safetensors file: tensor names, dtypes and shapes, checking that the
/// data the header promises is all in the file (a truncated copy fails here, not mid-load).
fn read_header(path: &Path) -> Result<BTreeMap<String, HeaderTensor>, HfDirError> {
    let bad = |message: String| HfDirError::Safetensors {
        path: path.to_path_buf(),
        message,
    };
    let mut file = File::open(path).map_err(|e| unreadable(path, e))?;
    let file_len = file.metadata().map_err(|e| unreadable(path, e))?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| bad(format!("{file_len} bytes, shorter than a header")))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
        return Err(bad(format!(
            "header of {header_len} bytes in a file of {file_len} bytes"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| unreadable(path, e))?;
    let parsed: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header is not JSON: {e}")))?;
    let mut tensors = BTreeMap::new();
    let mut data_end = 0u64;
    for (name, entry) in parsed {
        if name == "__metadata__" {
            continue;
        }
        let dtype = entry["dtype"].as_str().unwrap_or("?").to_string();
        let shape: Option<Vec<usize>> = entry["shape"].as_array().and_then(|dims| {
            dims.iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect()
        });
        let end = entry["data_offsets"][1].as_u64();
        let (Some(shape), Some(end)) = (shape, end) else {
            return Err(bad(format!("tensor {name} has no valid shape or offsets")));
        };
        data_end = data_end.max(end);
        tensors.insert(name, HeaderTensor { dtype, shape });
    }
    if 8 + header_len + data_end > file_len {
        return Err(bad(format!(
            "the header promises {} bytes of data, the file holds {}",
            data_end,
            file_len - 8 - header_len
        )));
    }
    Ok(tensors)
}

/// The weight files: the shards named by the index (each must exist), else `model.safetensors`.
fn weight_files(dir: &Path) -> Result<(Vec<PathBuf>, Option<PathBuf>), HfDirError> {
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        let parsed = read_json(&index)?;
        let Some(map) = parsed["weight_map"].as_object() else {
            return Err(unreadable(&index, "no `weight_map` object"));
        };
        let shards: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        let mut files = Vec::new();
        for shard in shards {
            let path = dir.join(shard);
            if !path.is_file() {
                return Err(HfDirError::MissingFile {
                    dir: dir.to_path_buf(),
                    file: shard.to_string(),
                    help: "model.safetensors.index.json names this shard: copy every shard the index lists",
                });
            }
            files.push(path);
        }
        return Ok((files, Some(index)));
    }
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        Ok((vec![single], None))
    } else {
        Err(HfDirError::MissingFile {
            dir: dir.to_path_buf(),
            file: format!("{WEIGHTS_FILE} or {INDEX_FILE}"),
            help: "copy the weights: model.safetensors, or the model-0000N-of-0000M.safetensors \
                   shards together with model.safetensors.index.json",
        })
    }
}

const DTYPES: [&str; 3] = ["F32", "BF16", "F16"];

/// Compares the tensors in the files with those the config needs.
fn check_tensors(
    dir: &Path,
    config_path: &Path,
    config: &MllamaConfig,
    files: &[PathBuf],
) -> Result<(usize, u64, BTreeSet<String>), HfDirError> {
    let rel = |p: &Path| {
        p.file_name()
            .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
    };
    // canonical name → (name as stored, file, header entry)
    let mut found: BTreeMap<String, (String, String, HeaderTensor)> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    let (mut missing, mut unexpected, mut misshaped, mut bad_dtype) = (0, 0, 0, 0);
    for file in files {
        for (name, tensor) in read_header(file)? {
            found.insert(canonical_name(&name), (name, rel(file), tensor));
        }
    }
    let mut parameters = 0u64;
    let mut dtypes = BTreeSet::new();
    for (_, _, tensor) in found.values() {
        parameters += tensor.shape.iter().product::<usize>() as u64;
        dtypes.insert(tensor.dtype.clone());
    }
    let count = found.len();
    for (name, shape) in expected_tensors(config) {
        match found.remove(&name) {
            None => {
                missing += 1;
                problems.push(format!("missing: {name} {shape:?} (in no weight file)"));
            }
            Some((stored, file, tensor)) => {
                if tensor.shape != shape {
                    misshaped += 1;
                    problems.push(format!(
                        "mis-shaped: {stored} in {file}: {:?}, the config needs {shape:?}",
                        tensor.shape
                    ));
                } else if !DTYPES.contains(&tensor.dtype.as_str()) {
                    bad_dtype += 1;
                    problems.push(format!(
                        "unreadable dtype: {stored} in {file} is {} (F32, BF16 or F16 load)",
                        tensor.dtype
                    ));
                }
            }
        }
    }
    for (stored, file, tensor) in found.into_values() {
        unexpected += 1;
        problems.push(format!(
            "unexpected: {stored} {:?} in {file} (the config has no such parameter)",
            tensor.shape
        ));
    }
    if problems.is_empty() {
        return Ok((count, parameters, dtypes));
    }
    let summary = [
        (missing, "missing"),
        (misshaped, "mis-shaped"),
        (unexpected, "unexpected"),
        (bad_dtype, "of an unreadable dtype"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ");
    let mut listing: Vec<String> = problems.iter().take(LISTED_PROBLEMS).cloned().collect();
    if problems.len() > LISTED_PROBLEMS {
        listing.push(format!("… and {} more", problems.len() - LISTED_PROBLEMS));
    }
    listing.push(
        "config.json decides the shapes: weights and config must come from the same checkpoint"
            .into(),
    );
    Err(HfDirError::Tensors {
        dir: dir.to_path_buf(),
        config: config_path.to_path_buf(),
        summary,
        listing: listing.join("\n"),
    })
}

/// Checks `preprocessor_config.json`, when present, against the vision config.
fn check_preprocessor(path: &Path, config: &MllamaConfig) -> Result<(), HfDirError> {
    if !path.is_file() {
        return Ok(());
    }
    let parsed = read_json(path)?;
    let vision = &config.vision_config;
    let mismatch = |key: &'static str, found: &serde_json::Value, expected: usize| {
        (found.as_u64() != Some(expected as u64)).then(|| HfDirError::Preprocessor {
            path: path.to_path_buf(),
            key,
            found: found.to_string(),
            expected,
        })
    };
    for (key, found, expected) in [
        (
            "max_image_tiles",
            &parsed["max_image_tiles"],
            vision.max_num_tiles,
        ),
        ("size.height", &parsed["size"]["height"], vision.image_size),
        ("size.width", &parsed["size"]["width"], vision.image_size),
    ] {
        if found.is_null() {
            continue;
        }
        if let Some(e) = mismatch(key, found, expected) {
            return Err(e);
        }
    }
    Ok(())
}

/// Loads the tokenizer of a model directory, naming the file in every diagnostic.
pub fn load_tokenizer(dir: &Path) -> Result<JudgeTokenizer, HfDirError> {
    let path = dir.join(TOKENIZER_FILE);
    if !path.is_file() {
        return Err(HfDirError::MissingFile {
            dir: dir.to_path_buf(),
            file: TOKENIZER_FILE.into(),
            help: "copy tokenizer.json from the model's repository (tokenizer.model alone is not read)",
        });
    }
    JudgeTokenizer::from_file(&path).map_err(|source| HfDirError::Tokenizer { path, source })
}

/// Checks everything about `dir` that can be checked without reading the weights' data.
pub fn inspect(dir: &Path) -> Result<HfModelDir, HfDirError> {
    if !dir.is_dir() {
        return Err(HfDirError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        return Err(HfDirError::MissingFile {
            dir: dir.to_path_buf(),
            file: CONFIG_FILE.into(),
            help: "copy config.json from the model's repository",
        });
    }
    let raw = read_json(&config_path)?;
    // judgeflow's own checkpoints write no `model_type`; any other value than mllama's is a
    // different architecture.
    if !raw["model_type"].is_null() && raw["model_type"].as_str() != Some(MODEL_TYPE) {
        return Err(HfDirError::WrongModelType {
            path: config_path,
            found: raw["model_type"]
                .as_str()
                .map_or_else(|| "(none)".into(), String::from),
        });
    }
    let config = MllamaConfig::from_json_file(&config_path)?;
    config.validate()?;

    let tokenizer = load_tokenizer(dir)?;
    let image_id = tokenizer.special().image;
    if image_id as usize != config.image_token_index {
        return Err(HfDirError::ImageTokenMismatch {
            tokenizer_path: dir.join(TOKENIZER_FILE),
            config_path,
            tokenizer: image_id,
            config: config.image_token_index,
        });
    }
    debug_assert_eq!(tokenizer.token_to_id(IMAGE), Some(image_id));
    // A template that does not parse is refused now rather than at the first prompt.
    let template = ChatTemplate::from_dir(dir)?;
    let preprocessor = dir.join(PREPROCESSOR_FILE);
    check_preprocessor(&preprocessor, &config)?;

    let (weight_files, index) = weight_files(dir)?;
    let (tensor_count, parameter_count, dtypes) =
        check_tensors(dir, &config_path, &config, &weight_files)?;

    let mut files = vec![config_path, dir.join(TOKENIZER_FILE)];
    files.extend(template.map(|t| t.source));
    for name in ["tokenizer_config.json", PREPROCESSOR_FILE] {
        let path = dir.join(name);
        if path.is_file() {
            files.push(path);
        }
    }
    files.extend(index);
    files.extend(weight_files.iter().cloned());
    files.sort();
    files.dedup();
    Ok(HfModelDir {
        dir: dir.to_path_buf(),
        config,
        weight_files,
        tensor_count,
        parameter_count,
        dtypes,
        files,
    })
}
