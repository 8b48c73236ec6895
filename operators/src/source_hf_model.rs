//! `op = "source"`, `kind = "hf_model"`: a Hugging Face model directory the user keeps (e.g.
//! Llama-3.2-11B-Vision-Instruct) as a `checkpoint` artifact every model operator accepts.
//!
//! # Identity without reading 22 GB per `plan`
//! The cache key of this node must change exactly when the checkpoint's content does. Hashing
//! the weights on every `plan` would read 22 GB each time, and the engine's own bounded hashing
//! ([`judgeflow_engine::cache::hash_path`]) stops at 4 GiB. So, as build systems do, each file
//! is hashed once and its hash is trusted afterwards while its (size, mtime, inode) stamp is
//! unchanged. Stamps live outside the model directory (which may be read-only), in
//! `$JUDGEFLOW_MODEL_STAMPS`, else `$XDG_CACHE_HOME/judgeflow/model-stamps`, else
//! `~/.cache/judgeflow/model-stamps`, one directory per model path. The node's external input is
//! that directory's `identity` file, which holds only the content hash, so the engine's key is
//! a function of content: touching a file costs one re-hash and leaves the key as it was.
//! `--rehash` (or `JUDGEFLOW_REHASH=1`) re-hashes every file whatever its stamp says.
//!
//! # What runs
//! The node checks the directory ([`judgeflow_model::hf_dir::inspect`]: model type, every
//! tensor's name and shape from the safetensors headers, the tokenizer's `<|image|>`, the chat
//! template), then writes a small artifact: the configuration, tokenizer and template files
//! copied, and the weights *referenced* by absolute path with the stamps they were hashed under
//! ([`checkpoint::EXTERNAL_WEIGHTS_FILE`]); loading refuses weights whose stamp moved since.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use judgeflow_engine::{Port, RunContext, TypedOperator, operator_params};
use judgeflow_model::checkpoint::{self, ExternalWeight, mtime_ns};
use judgeflow_model::hf_dir;
use miette::miette;
use serde::{Deserialize, Serialize};

/// The small files copied into the artifact (the weights are referenced, not copied).
const COPIED: [&str; 8] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.json",
    "chat_template.jinja",
    "preprocessor_config.json",
];

/// The identity file inside a model's stamp directory.
const IDENTITY_FILE: &str = "identity";
/// The per-file stamps inside a model's stamp directory.
const STAMPS_FILE: &str = "stamps.json";

/// A model directory as a checkpoint.
pub struct HfModelSource;

operator_params! {
    /// The model directory source's parameters.
    pub struct HfModelParams {
        /// family member
        #[allow(dead_code)] // the engine reads it: it selects this operator
        kind: String [&["hf_model"]],
        /// the model directory: config.json, model.safetensors (or shards + index),
        /// tokenizer.json, tokenizer_config.json
        path: String,
    }
}

impl TypedOperator for HfModelSource {
    type Params = HfModelParams;
    fn name(&self) -> &'static str {
        "source"
    }
    fn kind(&self) -> Option<&'static str> {
        Some("hf_model")
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "a Hugging Face mllama model directory (Llama-3.2-*-Vision) as a checkpoint, checked before use and hashed once"
    }
    fn inputs(&self, _: &HfModelParams) -> Vec<Port> {
        vec![]
    }
    fn outputs(&self, _: &HfModelParams) -> Vec<Port> {
        vec![Port::artifact("model", "checkpoint")]
    }
    fn external_inputs(&self, p: &HfModelParams) -> Vec<PathBuf> {
        let dir = PathBuf::from(&p.path);
        // A directory that cannot be identified (missing, unreadable) is named as itself: the
        // engine hashes it as a marker and the run reports why.
        match identify(
            &stamp_root(),
            &dir,
            judgeflow_engine::files::rehash_forced(),
        ) {
            Ok(identity) => {
                if !identity.hashed.is_empty() {
                    tracing::info!(dir = %dir.display(), files = ?identity.hashed, "hashed model files");
                }
                vec![identity.identity_file]
            }
            Err(_) => vec![dir],
        }
    }
    fn run(&self, p: &HfModelParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let dir = PathBuf::from(&p.path);
        // The directory's own diagnostic (code, help listing every tensor) under the node's name.
        let found = hf_dir::inspect(&dir).map_err(|cause| {
            miette::Report::new(cause).wrap_err(format!(
                "node `{}`: {} is not a usable checkpoint",
                ctx.node,
                dir.display()
            ))
        })?;
        let identity = identify(&stamp_root(), &dir, false).map_err(|e| {
            miette!(
                code = "judgeflow::source::hf_model",
                "node `{}`: identifying {}: {e}",
                ctx.node,
                dir.display()
            )
        })?;
        let out = ctx.output_dir("model")?;
        for name in COPIED {
            let from = dir.join(name);
            if from.is_file() {
                std::fs::copy(&from, out.join(name)).map_err(|e| {
                    miette!(
                        code = "judgeflow::source::hf_model",
                        "copying {}: {e}",
                        from.display()
                    )
                })?;
            }
        }
        let absolute = std::fs::canonicalize(&dir).map_err(|e| {
            miette!(
                code = "judgeflow::source::hf_model",
                "resolving {}: {e}",
                dir.display()
            )
        })?;
        let mut weights = Vec::new();
        for file in &found.weight_files {
            let name = file.file_name().expect("a weight file has a name");
            let stamp = identity.files.get(&name.to_string_lossy().to_string());
            let Some(stamp) = stamp else {
                return Err(miette!(
                    code = "judgeflow::source::hf_model",
                    "node `{}`: {} appeared while the checkpoint was being identified; run again",
                    ctx.node,
                    file.display()
                ));
            };
            weights.push(ExternalWeight {
                path: absolute.join(name),
                size: stamp.size,
                mtime_ns: stamp.mtime_ns,
                hash: stamp.hash.clone(),
            });
        }
        let list = serde_json::to_string_pretty(&weights).expect("plain data");
        std::fs::write(out.join(checkpoint::EXTERNAL_WEIGHTS_FILE), list).map_err(|e| {
            miette!(
                code = "judgeflow::source::hf_model",
                "writing the weights list: {e}"
            )
        })?;
        tracing::info!(
            node = ctx.node,
            tensors = found.tensor_count,
            parameters = found.parameter_count,
            dtypes = ?found.dtypes,
            identity = %identity.hash,
            "model directory checked"
        );
        Ok(())
    }
}

/// A file's stamp and the hash it was trusted with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    pub size: u64,
    pub mtime_ns: u128,
    pub inode: u64,
    pub hash: String,
}

/// The identity of a model directory.
pub(crate) struct Identity {
    /// Holds the content hash; the engine hashes this file into the node's key.
    pub identity_file: PathBuf,
    /// Content hash over the files that make up the checkpoint.
    pub hash: String,
    /// File name → its stamp and hash.
    pub files: BTreeMap<String, Stamp>,
    /// Files hashed this time (the rest were trusted on their stamps).
    pub hashed: Vec<String>,
}

/// Where stamps live.
fn stamp_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("JUDGEFLOW_MODEL_STAMPS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("judgeflow").join("model-stamps")
}

/// Whether a top-level file of a model directory is part of the checkpoint (what loading
/// reads): the copied files, the index and every `.safetensors` file. READMEs, licences and
/// Meta's `original/` directory are not.
fn is_checkpoint_file(name: &str) -> bool {
    COPIED.contains(&name)
        || name == checkpoint::INDEX_FILE
        || (name.ends_with(".safetensors") && !name.starts_with('.'))
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Hashes what changed in `dir` since its last stamps under `root` (everything when `rehash`),
/// records the new stamps, and returns the directory's identity.
pub(crate) fn identify(root: &Path, dir: &Path, rehash: bool) -> std::io::Result<Identity> {
    let absolute = std::fs::canonicalize(dir)?;
    let key = blake3::hash(absolute.to_string_lossy().as_bytes()).to_hex();
    let stamps_dir = root.join(&key[..32]);
    let stamps_path = stamps_dir.join(STAMPS_FILE);
    let known: BTreeMap<String, Stamp> = std::fs::read_to_string(&stamps_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for item in std::fs::read_dir(&absolute)? {
        let item = item?;
        let name = item.file_name().to_string_lossy().to_string();
        if is_checkpoint_file(&name) && std::fs::metadata(item.path())?.is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut files = BTreeMap::new();
    let mut hashed = Vec::new();
    for name in names {
        let path = absolute.join(&name);
        let meta = std::fs::metadata(&path)?;
        let (size, mtime, ino) = (meta.len(), mtime_ns(&meta), inode(&meta));
        let trusted = known
            .get(&name)
            .filter(|s| !rehash && s.size == size && s.mtime_ns == mtime && s.inode == ino);
        let stamp = match trusted {
            Some(s) => s.clone(),
            None => {
                let mut h = blake3::Hasher::new();
                h.update_reader(std::fs::File::open(&path)?)?;
                hashed.push(name.clone());
                Stamp {
                    size,
                    mtime_ns: mtime,
                    inode: ino,
                    hash: h.finalize().to_hex().to_string(),
                }
            }
        };
        files.insert(name, stamp);
    }
    let mut h = blake3::Hasher::new();
    for (name, stamp) in &files {
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(stamp.hash.as_bytes());
        h.update(b"\n");
    }
    let hash = h.finalize().to_hex().to_string();
    std::fs::create_dir_all(&stamps_dir)?;
    let identity_file = stamps_dir.join(IDENTITY_FILE);
    // Rewritten only when it changes, so its own mtime says when the content last changed.
    if std::fs::read_to_string(&identity_file).ok().as_deref() != Some(hash.as_str()) {
        write_atomic(&identity_file, &hash)?;
    }
    if files != known {
        let text = serde_json::to_string_pretty(&files).expect("plain data");
        write_atomic(&stamps_path, &text)?;
    }
    Ok(Identity {
        identity_file,
        hash,
        files,
        hashed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn set_mtime(path: &Path, secs: u64) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn files_are_hashed_once_then_trusted_on_their_stamp() {
        let model = tempfile::tempdir().unwrap();
        let stamps = tempfile::tempdir().unwrap();
        let dir = model.path();
        write(dir, "config.json", b"{}");
        write(dir, "model-00001-of-00002.safetensors", b"weights one");
        write(dir, "model-00002-of-00002.safetensors", b"weights two");
        write(dir, "README.md", b"not part of the checkpoint");

        let first = identify(stamps.path(), dir, false).unwrap();
        assert_eq!(
            first.hashed,
            [
                "config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(&first.identity_file).unwrap(),
            first.hash
        );

        // Nothing moved: nothing is read again, the identity is the same.
        let second = identify(stamps.path(), dir, false).unwrap();
        assert!(second.hashed.is_empty(), "{:?}", second.hashed);
        assert_eq!(second.hash, first.hash);

        // A touched file is hashed again; same bytes, same identity.
        set_mtime(&dir.join("model-00002-of-00002.safetensors"), 1_000_000);
        let touched = identify(stamps.path(), dir, false).unwrap();
        assert_eq!(touched.hashed, ["model-00002-of-00002.safetensors"]);
        assert_eq!(touched.hash, first.hash);

        // Edited bytes (same size, mtime restored) go unseen until a forced re-hash, as the
        // stamp promises; the re-hash finds them.
        let shard = dir.join("model-00001-of-00002.safetensors");
        let before = std::fs::metadata(&shard).unwrap().modified().unwrap();
        write(dir, "model-00001-of-00002.safetensors", b"weights ONE");
        std::fs::File::options()
            .write(true)
            .open(&shard)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert_eq!(
            identify(stamps.path(), dir, false).unwrap().hash,
            first.hash
        );
        let forced = identify(stamps.path(), dir, true).unwrap();
        assert_eq!(forced.hashed.len(), 3);
        assert_ne!(forced.hash, first.hash);

        // An edit that moves the mtime is found without forcing.
        write(dir, "config.json", b"{\"x\": 1}");
        set_mtime(&dir.join("config.json"), 2_000_000);
        let edited = identify(stamps.path(), dir, false).unwrap();
        assert_eq!(edited.hashed, ["config.json"]);
        assert_ne!(edited.hash, forced.hash);
        // README.md never counted.
        assert!(!edited.files.contains_key("README.md"));
    }
}
