//! What the model operators share: the `device` parameter and backend dispatch, checkpoint
//! artifacts (config, weights, tokenizer in one directory), image batches from frame bytes, and
//! batched generation over chat prompts.
//!
//! A checkpoint artifact is a Hugging Face-style model directory: `config.json` and
//! `model.safetensors` (mllama tensor names) plus `tokenizer.json`, so `train` outputs load in
//! transformers and real HF directories load here.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use judgeflow_engine::{choice_enum, operator_params};
use judgeflow_model::chat_template::ChatTemplate;
use judgeflow_model::checkpoint;
use judgeflow_model::generate::{GenerateConfig, Placement, SamplingConfig, generate_watching};
use judgeflow_model::lora;
use judgeflow_model::model::{ImageInputs, MllamaForConditionalGeneration};
use judgeflow_model::preprocess::{
    PreprocessConfig, PreprocessedImage, preprocess_bytes, stack_images,
};
use judgeflow_model::tokenizer::JudgeTokenizer;
use miette::{Diagnostic, miette};

/// The tokenizer file inside a checkpoint artifact.
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";

/// Why a model operator cannot run.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub(crate) enum RuntimeError {
    /// `device = "cuda"` in a binary built without CUDA.
    #[cfg(not(feature = "cuda"))]
    #[error(
        "node `{node}` asks for `device = \"cuda\"`, but this judgeflow was built without CUDA"
    )]
    #[diagnostic(
        code(judgeflow::model::no_cuda),
        help("build with `cargo build --release --features cuda`, or set `device = \"cpu\"`")
    )]
    NoCuda {
        /// The node.
        node: String,
    },
    /// A checkpoint directory that does not load.
    #[error("node `{node}`: the checkpoint in `{}` does not load", dir.display())]
    #[diagnostic(
        code(judgeflow::model::checkpoint),
        help(
            "a checkpoint is config.json + model.safetensors + tokenizer.json, as `train` writes"
        )
    )]
    Checkpoint {
        /// The node.
        node: String,
        /// The directory.
        dir: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

choice_enum! {
    /// Where a model operator runs.
    pub enum DeviceChoice {
        Cpu = "cpu",
        Cuda = "cuda",
    }
}

operator_params! {
    /// The `device` parameter every model operator takes.
    pub struct DeviceParams {
        /// where the model runs (`cuda` needs a binary built with --features cuda)
        device: DeviceChoice = DeviceChoice::Cpu,
    }
}

impl DeviceParams {
    /// Where the model of a running node goes: this device, on the GPU the node reserved.
    pub(crate) fn on(&self, ctx: &judgeflow_engine::RunContext<'_>) -> OnDevice {
        OnDevice::new(self.device, &ctx.gpus)
    }

    /// GPUs a node with these parameters needs.
    pub(crate) fn gpus(&self) -> u32 {
        u32::from(self.device == DeviceChoice::Cuda)
    }

    /// The environment switches that change what a model computes here (the cache key takes
    /// their values): CUDA's kernel choices and the operator's `own` switches; none on the
    /// CPU, where they choose nothing.
    pub(crate) fn environment(&self, own: &[&'static str]) -> Vec<&'static str> {
        match self.device {
            DeviceChoice::Cuda => [judgeflow_model::KERNEL_SWITCHES, own].concat(),
            DeviceChoice::Cpu => Vec::new(),
        }
    }
}

operator_params! {
    /// The sampling parameters (each operator sets its own default `temperature`).
    pub struct SamplingParams {
        /// softmax temperature; 0 is greedy
        temperature: f64 [0.0..=5.0] = 0.0,
        /// keep the k most likely tokens; 0 keeps all
        top_k: usize [0..=1_000_000] = 50,
        /// nucleus: keep the most likely tokens up to this mass
        top_p: f64 [0.0..=1.0] = 0.9,
    }
}

impl SamplingParams {
    /// The model's sampling settings.
    pub(crate) fn config(&self) -> SamplingConfig {
        SamplingConfig {
            temperature: self.temperature as f32,
            top_k: self.top_k,
            top_p: self.top_p as f32,
        }
    }
}

operator_params! {
    /// What the generating operators share: the batch size, the device and the sampling.
    pub struct GenerateParams {
        /// sequences generated together (results do not depend on it)
        batch_size: usize [1..=4096] = 32,
        ..device: DeviceParams,
        ..sampling: SamplingParams,
    }
}

/// Where a node's model runs: CPU, or the CUDA device with the ordinal its node reserved
/// (`RunContext::gpus`; inside a Slurm job, an ordinal among the devices Slurm made visible).
/// Without it two GPU nodes run side by side would both take device 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OnDevice {
    pub choice: DeviceChoice,
    /// The CUDA ordinal (0 when the node reserved none, e.g. a test calling an operator
    /// directly).
    pub ordinal: usize,
}

impl OnDevice {
    /// `choice` on the first GPU of `gpus`.
    pub(crate) fn new(choice: DeviceChoice, gpus: &[usize]) -> Self {
        OnDevice {
            choice,
            ordinal: gpus.first().copied().unwrap_or(0),
        }
    }
}

/// Work generic over an inference backend.
pub(crate) trait InferTask {
    type Output;
    fn run<B: Backend>(self, device: B::Device) -> miette::Result<Self::Output>;
}

/// Work generic over a training backend.
pub(crate) trait TrainTask {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> miette::Result<Self::Output>;
}

/// Runs `task` on the chosen device.
pub(crate) fn infer<T: InferTask>(
    node: &str,
    place: OnDevice,
    task: T,
) -> miette::Result<T::Output> {
    match place.choice {
        DeviceChoice::Cpu => {
            with_cleanup::<judgeflow_model::backend::CpuBackend, _>(Default::default(), |d| {
                task.run::<judgeflow_model::backend::CpuBackend>(d)
            })
        }
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => {
            let _named = judgeflow_model::backend::GpuWork::start(format!("node `{node}`"));
            with_cleanup::<judgeflow_model::backend::CudaBackend, _>(
                cuda_device(place.ordinal),
                |d| task.run::<judgeflow_model::backend::CudaBackend>(d),
            )
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda => Err(RuntimeError::NoCuda { node: node.into() }.into()),
    }
}

/// Runs a training `task` on the chosen device.
pub(crate) fn train_on<T: TrainTask>(
    node: &str,
    place: OnDevice,
    task: T,
) -> miette::Result<T::Output> {
    match place.choice {
        DeviceChoice::Cpu => {
            with_cleanup::<judgeflow_model::backend::CpuTrainBackend, _>(Default::default(), |d| {
                task.run::<judgeflow_model::backend::CpuTrainBackend>(d)
            })
        }
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => {
            let _named = judgeflow_model::backend::GpuWork::start(format!("node `{node}`"));
            with_cleanup::<judgeflow_model::backend::CudaTrainBackend, _>(
                cuda_device(place.ordinal),
                |d| task.run::<judgeflow_model::backend::CudaTrainBackend>(d),
            )
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda => Err(RuntimeError::NoCuda { node: node.into() }.into()),
    }
}

/// The CUDA device with `ordinal` (among those CUDA_VISIBLE_DEVICES shows this process).
#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> burn::backend::cuda::CudaDevice {
    burn::backend::cuda::CudaDevice::new(ordinal)
}

/// Runs `work` on `device`, then hands the memory it pooled back.
///
/// Model nodes of a run can share one process and one device; without the cleanup, cubecl's
/// pools grew node after node until an allocation failed (on the H100, in the second
/// iteration's evaluation).
fn with_cleanup<B: Backend, R>(device: B::Device, work: impl FnOnce(B::Device) -> R) -> R {
    let out = work(device.clone());
    B::memory_cleanup(&device);
    out
}

/// A loaded checkpoint: model and tokenizer, and the node using them (for diagnostics).
pub(crate) struct Judge<B: Backend> {
    pub model: MllamaForConditionalGeneration<B>,
    pub tokenizer: JudgeTokenizer,
    /// The checkpoint's own chat template (real HF checkpoints); `None` for judgeflow's world
    /// checkpoints, whose prompts `chat::prompt_ids` builds.
    pub template: Option<ChatTemplate>,
    pub node: String,
}

impl<B: Backend> Judge<B> {
    /// The generation prompt for one image and `question`, in the checkpoint's chat format.
    pub fn prompt_ids(&self, question: &str) -> miette::Result<Vec<u32>> {
        match &self.template {
            Some(template) => template
                .prompt_ids(&self.tokenizer, question)
                .map_err(miette::Report::new),
            None => judgeflow_model::chat::prompt_ids(&self.tokenizer, question)
                .map_err(miette::Report::new),
        }
    }
}

/// Waits for the device and fails the node if its backend failed.
///
/// On the GPU an allocation failure panics inside cubecl's server thread, not in the node's
/// thread; reads after that return garbage rather than errors (seen on the H100: a judge whose
/// every output was unparseable). Syncing surfaces the failure so the node fails instead.
///
/// `JUDGEFLOW_INJECT_DEVICE_FAILURE=NODE[,NODE…]` makes the sync of those nodes fail as a
/// backend would, so the failure path (node fails, nothing cached, next run redoes only it) is
/// tested on machines without a GPU to run out of.
pub(crate) fn check_device<B: Backend>(node: &str, device: &B::Device) -> miette::Result<()> {
    if std::env::var("JUDGEFLOW_INJECT_DEVICE_FAILURE")
        .is_ok_and(|v| v.split(',').any(|n| n.trim() == node))
    {
        return Err(miette!(
            code = "judgeflow::model::device",
            help = "on a GPU this is usually memory: lower the node's `batch_size`",
            "node `{node}`: the {} backend failed: injected failure (JUDGEFLOW_INJECT_DEVICE_FAILURE)",
            B::name(device)
        ));
    }
    B::sync(device).map_err(|e| {
        miette!(
            code = "judgeflow::model::device",
            help = "on a GPU this is usually memory: lower the node's `batch_size`",
            "node `{node}`: the {} backend failed: {e:?}",
            B::name(device)
        )
    })
}

/// Loads a checkpoint artifact.
pub(crate) fn load_judge<B: Backend>(
    node: &str,
    dir: &Path,
    device: &B::Device,
) -> miette::Result<Judge<B>> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| RuntimeError::Checkpoint {
        node: node.to_string(),
        dir: dir.to_path_buf(),
        source,
    };
    let tokenizer =
        JudgeTokenizer::from_file(dir.join(TOKENIZER_FILE)).map_err(|e| fail(Box::new(e)))?;
    let template = ChatTemplate::from_dir(dir).map_err(|e| fail(Box::new(e)))?;
    let mut model = checkpoint::load::<B>(dir, device).map_err(|e| fail(Box::new(e)))?;
    // A LoRA run's checkpoint: the base (by reference) and its adapters.
    if dir.join(lora::ADAPTER_CONFIG_FILE).is_file() {
        model = lora::load_adapter(model, dir).map_err(|e| fail(Box::new(e)))?;
    }
    Ok(Judge {
        model,
        tokenizer,
        template,
        node: node.to_string(),
    })
}

/// Saves a model and its tokenizer as a checkpoint artifact.
pub(crate) fn save_judge<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    tokenizer: &JudgeTokenizer,
    dir: &Path,
) -> miette::Result<()> {
    checkpoint::save(model, dir).map_err(|e| {
        miette!(
            code = "judgeflow::model::save",
            "saving the checkpoint: {e}"
        )
    })?;
    tokenizer
        .save(dir.join(TOKENIZER_FILE))
        .map_err(|e| miette!(code = "judgeflow::model::save", "saving the tokenizer: {e}"))?;
    Ok(())
}

/// Decodes and tiles images once each (many rows share one image: n samples of a prompt).
pub(crate) struct ImageCache {
    config: PreprocessConfig,
    done: HashMap<blake3::Hash, PreprocessedImage>,
}

impl ImageCache {
    /// For a model whose vision config is `config`.
    pub fn new<B: Backend>(model: &MllamaForConditionalGeneration<B>) -> Self {
        let vision = &model.config().vision_config;
        Self {
            config: PreprocessConfig::new(vision.image_size, vision.max_num_tiles),
            done: HashMap::new(),
        }
    }

    /// The preprocessed image of `bytes`; `what` names the row for the diagnostic.
    pub fn get(&mut self, bytes: &[u8], what: &str) -> miette::Result<&PreprocessedImage> {
        let key = blake3::hash(bytes);
        if !self.done.contains_key(&key) {
            let image = preprocess_bytes(bytes, &self.config).map_err(|e| {
                miette!(
                    code = "judgeflow::model::image",
                    "{what}: the image does not decode: {e}"
                )
            })?;
            self.done.insert(key, image);
        }
        Ok(&self.done[&key])
    }

    /// Stacks the images of a batch into model inputs.
    pub fn batch<B: Backend>(
        &mut self,
        rows: &[&[u8]],
        what: &dyn Fn(usize) -> String,
        device: &B::Device,
    ) -> miette::Result<ImageInputs<B>> {
        let mut picked = Vec::with_capacity(rows.len());
        for (i, bytes) in rows.iter().enumerate() {
            picked.push(self.get(bytes, &what(i))?.clone());
        }
        let s = stack_images(&picked);
        Ok(ImageInputs::from_host(
            s.pixel_values,
            s.pixel_shape,
            s.aspect_ratio_ids,
            s.aspect_ratio_mask,
            device,
        ))
    }
}

/// One generation request: an image, the user turn's text, a seed.
pub(crate) struct Request<'a> {
    pub image: &'a [u8],
    pub question: String,
    pub seed: u64,
    /// Names the row in diagnostics.
    pub label: String,
    /// Text the reply is made to begin with (empty for none): the model continues from it; the
    /// reply's tokens and text are what it generated after the start. Encoded on its own and
    /// appended to the prompt, as `chat::sft_example` encodes a training response, so a start
    /// that ends at a word boundary of a training response is tokenized as training saw it.
    pub start: &'a str,
}

/// A finished generation: text, and the logits of `watch` tokens at each step.
pub(crate) struct Reply {
    pub tokens: Vec<u32>,
    pub text: String,
    /// `watched[step][i]`: logit of `watch[i]` when token `step` was drawn.
    pub watched: Vec<Vec<f32>>,
}

/// Generates replies for `requests` in batches of `batch_size`, shortest prompts first (less
/// padding), returning them in request order. Each row draws from its own seed, so results do
/// not depend on the batching. `progress` gets the number of finished requests.
#[allow(clippy::too_many_arguments)]
pub(crate) fn generate_all<B: Backend>(
    judge: &Judge<B>,
    images: &mut ImageCache,
    requests: &[Request<'_>],
    sampling: &SamplingConfig,
    max_new_tokens: usize,
    batch_size: usize,
    watch: &[u32],
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> miette::Result<Vec<Reply>> {
    let special = judge.tokenizer.special();
    let config = GenerateConfig {
        max_new_tokens,
        sampling: sampling.clone(),
        stop_tokens: vec![special.eot_id, special.end_of_text],
        pad_token: judge.tokenizer.pad_id(),
        placement: Placement::for_backend::<B>(),
    };
    let mut prompts = Vec::with_capacity(requests.len());
    for r in requests {
        let tokenize_error = |e: &dyn std::fmt::Display| {
            miette!(
                code = "judgeflow::model::tokenize",
                "{}: the prompt does not tokenize: {e}",
                r.label
            )
        };
        let mut ids = judge
            .prompt_ids(&r.question)
            .map_err(|e| tokenize_error(&e))?;
        if !r.start.is_empty() {
            ids.extend(
                judge
                    .tokenizer
                    .encode(r.start)
                    .map_err(|e| tokenize_error(&e))?,
            );
        }
        prompts.push(ids);
    }
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| prompts[i].len());
    let mut replies: Vec<Option<Reply>> = (0..requests.len()).map(|_| None).collect();
    let mut finished = 0;
    for chunk in order.chunks(batch_size.max(1)) {
        let batch_prompts: Vec<Vec<u32>> = chunk.iter().map(|&i| prompts[i].clone()).collect();
        let seeds: Vec<u64> = chunk.iter().map(|&i| requests[i].seed).collect();
        let bytes: Vec<&[u8]> = chunk.iter().map(|&i| requests[i].image).collect();
        let inputs = images.batch::<B>(&bytes, &|k| requests[chunk[k]].label.clone(), device)?;
        let generations = generate_watching(
            &judge.model,
            &batch_prompts,
            Some(&inputs),
            &seeds,
            &config,
            watch,
        );
        for (&i, (g, w)) in chunk.iter().zip(generations) {
            let text = judge.tokenizer.decode(&g.tokens, true).map_err(|e| {
                miette!(
                    code = "judgeflow::model::decode",
                    "{}: decoding the reply: {e}",
                    requests[i].label
                )
            })?;
            replies[i] = Some(Reply {
                tokens: g.tokens,
                text,
                watched: w,
            });
        }
        check_device::<B>(&judge.node, device)?;
        finished += chunk.len();
        progress(finished);
    }
    Ok(replies
        .into_iter()
        .map(|r| r.expect("every request answered"))
        .collect())
}

/// A per-row seed that depends only on the node seed and the row's identity, never on batching.
pub(crate) fn row_seed(node_seed: u64, parts: &[&str]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&node_seed.to_le_bytes());
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0]);
    }
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod placement_tests {
    use super::*;

    #[test]
    fn a_node_runs_on_the_gpu_it_reserved() {
        // A fake device list, as the scheduler hands it out: the node reserved GPU 2.
        assert_eq!(
            OnDevice::new(DeviceChoice::Cuda, &[2]),
            OnDevice {
                choice: DeviceChoice::Cuda,
                ordinal: 2
            }
        );
        assert_eq!(OnDevice::new(DeviceChoice::Cuda, &[]).ordinal, 0);
        assert_eq!(
            OnDevice::new(DeviceChoice::Cpu, &[1]).choice,
            DeviceChoice::Cpu
        );
    }
}
