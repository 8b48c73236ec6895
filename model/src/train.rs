//! Supervised fine-tuning: next-token cross-entropy on response tokens only, AdamW, linear
//! warmup then cosine decay, global-norm gradient clipping and gradient accumulation.

use std::path::PathBuf;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;

use crate::checkpoint::{self, CheckpointError};
use crate::config::MllamaConfig;
use crate::fused_adamw::FusedAdamW;
use crate::model::{
    ImageInputs, MllamaForConditionalGeneration, Padding, cross_attention_mask_tensor,
};

/// One micro-batch. Sequences are right-padded; padding and prompt tokens have loss mask 0.
#[derive(Debug, Clone)]
pub struct TrainBatch<B: Backend> {
    /// `[batch, seq]` token ids.
    pub input_ids: Tensor<B, 2, Int>,
    /// `[batch, seq]`, 1 where the token at that position is a response token to predict (or
    /// its loss weight, see [`TrainBatch::from_weighted_sequences`]), 0 elsewhere.
    pub loss_mask: Tensor<B, 2>,
    /// The rows' images, if any.
    pub images: Option<ImageInputs<B>>,
    /// `[batch, seq, images, max_num_tiles]`, required with `images`.
    pub cross_attention_mask: Option<Tensor<B, 4, Int>>,
    /// `[batch, images * max_num_tiles * num_patches]`: each vision token's label for the
    /// model's patch probe ([`MllamaForConditionalGeneration::with_patch_probe`]), in the
    /// layout of [`MllamaForConditionalGeneration::forward_with_patch_probe`]'s probe logits;
    /// [`IGNORE_PATCH`] where a token has none (class tokens, padding tiles). `None`: no probe
    /// loss for this batch.
    pub patch_labels: Option<Tensor<B, 2, Int>>,
}

/// A patch label that takes no part in the probe loss.
pub const IGNORE_PATCH: i64 = -1;

impl<B: Backend> TrainBatch<B> {
    /// Builds a batch from token rows and their loss masks (aligned with the tokens, `true` for
    /// targets, as `chat::SftExample` has them): rows are right-padded with `pad_token` and,
    /// with images, the cross-attention mask follows the `<|image|>` tokens.
    pub fn from_sequences(
        config: &MllamaConfig,
        input_ids: &[Vec<u32>],
        loss_masks: &[Vec<bool>],
        pad_token: u32,
        images: Option<ImageInputs<B>>,
        device: &B::Device,
    ) -> Self {
        let weights: Vec<Vec<f32>> = loss_masks
            .iter()
            .map(|m| m.iter().map(|&t| if t { 1.0 } else { 0.0 }).collect())
            .collect();
        Self::from_weighted_sequences(config, input_ids, &weights, pad_token, images, device)
    }

    /// As [`TrainBatch::from_sequences`], with a loss weight per token instead of a mask (0 for
    /// tokens not to predict). A step's loss is the weighted mean: a token of weight 3 counts as
    /// three tokens of weight 1 (e.g. up-weighting a judge's verdict letter).
    pub fn from_weighted_sequences(
        config: &MllamaConfig,
        input_ids: &[Vec<u32>],
        loss_weights: &[Vec<f32>],
        pad_token: u32,
        images: Option<ImageInputs<B>>,
        device: &B::Device,
    ) -> Self {
        assert_eq!(input_ids.len(), loss_weights.len(), "one loss mask per row");
        let b = input_ids.len();
        let s = input_ids.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![pad_token as i64; b * s];
        let mut mask = vec![0.0f32; b * s];
        for (r, (row, row_mask)) in input_ids.iter().zip(loss_weights).enumerate() {
            assert_eq!(row.len(), row_mask.len(), "loss mask aligned with tokens");
            for (j, (&t, &m)) in row.iter().zip(row_mask).enumerate() {
                ids[r * s + j] = t as i64;
                mask[r * s + j] = m;
            }
        }
        let cross_attention_mask = images
            .as_ref()
            .map(|im| cross_attention_mask_tensor(config, input_ids, Padding::Right, s, im));
        Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            loss_mask: Tensor::from_data(TensorData::new(mask, [b, s]), device),
            images,
            cross_attention_mask,
            patch_labels: None,
        }
    }

    /// The batch with patch labels (`[batch, vision tokens]`, row-major; see the field).
    ///
    /// # Panics
    /// If `labels` is not `batch` rows of equal length.
    pub fn with_patch_labels(mut self, labels: &[Vec<i64>], device: &B::Device) -> Self {
        let b = self.input_ids.dims()[0];
        assert_eq!(labels.len(), b, "one row of patch labels per sequence");
        let k = labels.first().map_or(0, Vec::len);
        assert!(labels.iter().all(|r| r.len() == k), "equal label rows");
        let flat: Vec<i64> = labels.iter().flatten().copied().collect();
        self.patch_labels = Some(Tensor::from_data(TensorData::new(flat, [b, k]), device));
        self
    }
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine, as a fraction of the peak.
    pub min_lr_ratio: f64,
    /// Optimizer steps of linear warmup from 0.
    pub warmup_steps: usize,
    /// Passes over the batches.
    pub epochs: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum_steps: usize,
    /// Clip the global gradient norm to this value; `None` disables.
    pub max_grad_norm: Option<f64>,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
    /// AdamW β₁.
    pub beta_1: f32,
    /// AdamW β₂.
    pub beta_2: f32,
    /// AdamW ε.
    pub epsilon: f32,
    /// Where to save checkpoints (overwritten in place, atomically); `None` saves nothing.
    pub checkpoint_dir: Option<PathBuf>,
    /// Save every this many optimizer steps (0: only at the end).
    pub checkpoint_every: usize,
    /// Read the loss and gradient norm back from the device every this many steps (and at the
    /// end), handing their records to `on_step` then. A read waits for the device to finish
    /// everything queued, so reading every step leaves the GPU idle while the host queues the
    /// next step; the values are the same whatever this is.
    pub read_every: usize,
    /// Weight of the patch probe's loss (mean cross-entropy over labelled vision tokens, per
    /// micro-batch) against the language loss, on batches with patch labels when the model
    /// has a patch probe. Recorded losses stay the language loss alone, comparable with runs
    /// without a probe.
    pub patch_loss_weight: f64,
    /// Which implementation of clipping and AdamW runs.
    pub optimizer: OptimizerChoice,
}

/// Which implementation of the optimizer step (global-norm clipping, then AdamW) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimizerChoice {
    /// On burn's CUDA backend [`FusedAdamW`]'s kernels (f32 master weights), unless
    /// `JUDGEFLOW_OPTIMIZER` asks for burn's AdamW (`burn`), the kernels' tensor form
    /// (`emulated`) or both compared (`check`); burn's AdamW on every other backend.
    #[default]
    Backend,
    /// burn's AdamW after judgeflow's clipping, on every backend.
    Burn,
    /// [`FusedAdamW`]: its kernels on CUDA, their arithmetic in tensor operations elsewhere.
    Fused,
    /// [`FusedAdamW`]'s kernels and their tensor form on the same inputs every step, compared
    /// parameter by parameter (differences said on stderr), the tensor form's result kept: a
    /// diagnostic of the kernels (`JUDGEFLOW_OPTIMIZER=check` on CUDA).
    Checked,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-5,
            min_lr_ratio: 0.0,
            warmup_steps: 0,
            epochs: 1,
            grad_accum_steps: 1,
            max_grad_norm: Some(1.0),
            weight_decay: 0.0,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            checkpoint_dir: None,
            checkpoint_every: 0,
            read_every: 1,
            patch_loss_weight: 0.0,
            optimizer: OptimizerChoice::Backend,
        }
    }
}

/// One optimizer step's record (for loss curves).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossRecord {
    /// 1-based optimizer step.
    pub step: usize,
    /// Mean cross-entropy per response token over the step's micro-batches.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Response tokens in the step.
    pub tokens: usize,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// Learning rate at 1-based optimizer `step` of `total`: linear warmup reaching the peak at
/// step `warmup_steps`, then a cosine from the peak towards `min_lr_ratio * peak` (reached one
/// step after the last, so no step is wasted at the floor).
pub fn learning_rate_at(step: usize, total: usize, config: &TrainConfig) -> f64 {
    let peak = config.learning_rate;
    let done = step.saturating_sub(1);
    if done < config.warmup_steps {
        return peak * (done + 1) as f64 / config.warmup_steps as f64;
    }
    let decay_steps = total.saturating_sub(config.warmup_steps).max(1);
    let progress = ((done - config.warmup_steps) as f64 / decay_steps as f64).min(1.0);
    let min = peak * config.min_lr_ratio;
    min + (peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Sum of the response-token negative log-likelihoods of a batch.
///
/// # Shapes
/// - logits: `[batch, seq, vocab]`
/// - input_ids, loss_mask: `[batch, seq]`
/// - output: `[1]`
pub fn masked_nll<B: Backend>(
    logits: Tensor<B, 3>,
    input_ids: Tensor<B, 2, Int>,
    loss_mask: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let [b, s, v] = logits.dims();
    // Prompt positions may hold ids past the head (`<|image|>`); they are masked out, and
    // `class_nll` keeps the gather in bounds.
    let nll = class_nll(
        logits.slice([0..b, 0..s - 1, 0..v]),
        input_ids.slice([0..b, 1..s]),
    );
    (nll * loss_mask.slice([0..b, 1..s]).cast(DType::F32)).sum()
}

/// Per-position negative log-likelihood of `targets` under `logits`, in f32. Targets outside
/// `0..classes` (masked positions) are clamped into range; the caller's mask drops them.
///
/// # Shapes
/// - logits: `[batch, positions, classes]`
/// - targets: `[batch, positions]`
/// - output: `[batch, positions]`
fn class_nll<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [b, k, c] = logits.dims();
    let logp = log_softmax(logits.cast(DType::F32), 2);
    let targets = targets.clamp(0, c as i64 - 1).reshape([b, k, 1]);
    logp.gather(2, targets).reshape([b, k]).neg()
}

/// Mean cross-entropy of the patch probe over the labelled vision tokens of a batch (0 when
/// none is labelled).
///
/// # Shapes
/// - probe_logits: `[batch, tokens, classes]`
/// - labels: `[batch, tokens]`, [`IGNORE_PATCH`] for unlabelled tokens
/// - output: `[1]`
pub fn patch_probe_loss<B: Backend>(
    probe_logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
) -> Tensor<B, 1> {
    let keep = labels
        .clone()
        .greater_equal_elem(0)
        .float()
        .cast(DType::F32);
    let nll = class_nll(probe_logits, labels);
    let count = keep.clone().sum().clamp_min(1.0);
    (nll * keep).sum() / count
}

/// Why [`train`] stopped without a model.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrainError {
    /// A step's loss or gradient norm read back from the device is not finite: every step
    /// after it would train a broken model (session 23: `micro`'s pretraining on CUDA turned
    /// NaN within 60 steps with the fused optimizer and trained 6,000 steps of NaN before
    /// anything noticed). Checked whenever the device is read (every `read_every` steps).
    #[error("training diverged at step {step}: loss {loss}, gradient norm {grad_norm}")]
    #[diagnostic(
        code(judgeflow_model::train::diverged),
        help(
            "lower the learning rate; on CUDA, JUDGEFLOW_OPTIMIZER says which AdamW runs (burn's \
             is the default, `fused` the kernels that diverged in session 23)"
        )
    )]
    Diverged {
        /// The first step whose record is not finite.
        step: usize,
        /// Its loss.
        loss: f64,
        /// Its gradient norm before clipping.
        grad_norm: f64,
    },
    /// Writing a checkpoint failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Fine-tunes `model` on `batches` for `config.epochs` passes, in order. Parameters that do not
/// require gradients (a base frozen by [`crate::lora::attach`]) are left as they are; a model
/// with LoRA adapters checkpoints its adapters ([`crate::lora::save_adapter`]). Each optimizer step
/// averages the loss over all response tokens of its `grad_accum_steps` micro-batches (each
/// micro-batch's summed loss is divided by the step's token count before backward, so the
/// accumulated gradient is that of the step's mean). `on_step` sees every step's record once it
/// is read from the device (every `config.read_every` steps; progress bars, loss curves). Returns the trained model and one
/// [`LossRecord`] per optimizer step.
///
/// The device is read once per `read_every` steps (losses and gradient norms together): clipping
/// scales the gradients by a factor computed on the device, so no per-parameter readback stalls
/// the queue.
pub fn train<B: AutodiffBackend>(
    mut model: MllamaForConditionalGeneration<B>,
    batches: &[TrainBatch<B>],
    config: &TrainConfig,
    mut on_step: impl FnMut(&LossRecord),
) -> Result<(MllamaForConditionalGeneration<B>, Vec<LossRecord>), TrainError> {
    let accum = config.grad_accum_steps.max(1);
    let batch_tokens: Vec<usize> = batches.iter().map(target_tokens).collect();
    let schedule: Vec<usize> = (0..config.epochs).flat_map(|_| 0..batches.len()).collect();
    let groups: Vec<&[usize]> = schedule.chunks(accum).collect();
    let total_steps = groups.len();
    let mut optimizer = Step::<B>::new(config);
    let mut records = Vec::with_capacity(total_steps);
    // Steps whose `[loss, grad_norm]` are still on the device.
    let mut pending: Vec<(usize, f64, usize, Tensor<B::InnerBackend, 1>)> = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        let step = i + 1;
        let tokens: usize = group.iter().map(|&b| batch_tokens[b]).sum();
        let mut accumulator = GradientsAccumulator::<MllamaForConditionalGeneration<B>>::new();
        let mut loss_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        for &index in group.iter() {
            let batch = &batches[index];
            let probed = match (
                &batch.patch_labels,
                &batch.images,
                &batch.cross_attention_mask,
            ) {
                (Some(labels), Some(images), Some(mask))
                    if model.patch_probe.is_some() && config.patch_loss_weight > 0.0 =>
                {
                    Some((labels, images, mask))
                }
                _ => None,
            };
            let (logits, probe_loss) = match probed {
                Some((labels, images, mask)) => {
                    let (logits, probe) = model.forward_with_patch_probe(
                        batch.input_ids.clone(),
                        images,
                        mask.clone(),
                    );
                    (logits, Some(patch_probe_loss(probe, labels.clone())))
                }
                None => (
                    model.forward(
                        batch.input_ids.clone(),
                        batch.images.as_ref(),
                        batch.cross_attention_mask.clone(),
                    ),
                    None,
                ),
            };
            let loss = masked_nll(logits, batch.input_ids.clone(), batch.loss_mask.clone())
                / tokens.max(1) as f64;
            let detached = loss.clone().inner().cast(DType::F32);
            // The probe's loss is averaged over the step's micro-batches, as the language
            // loss is over its tokens.
            let loss = match probe_loss {
                Some(p) => loss + p * (config.patch_loss_weight / group.len() as f64),
                None => loss,
            };
            loss_sum = Some(match loss_sum {
                Some(sum) => sum + detached,
                None => detached,
            });
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            accumulator.accumulate(&model, grads);
        }
        let lr = learning_rate_at(step, total_steps, config);
        let (updated, grad_norm) = optimizer.step(lr, model, accumulator.grads());
        model = updated;
        let loss_sum = loss_sum.expect("every optimizer step has at least one micro-batch");
        pending.push((step, lr, tokens, Tensor::cat(vec![loss_sum, grad_norm], 0)));
        let checkpoint = config.checkpoint_dir.is_some()
            && (step == total_steps
                || (config.checkpoint_every > 0 && step % config.checkpoint_every == 0));
        if step == total_steps || step % config.read_every.max(1) == 0 || checkpoint {
            // One read for every pending step.
            let read = Tensor::cat(pending.iter().map(|p| p.3.clone()).collect(), 0)
                .into_data()
                .convert::<f64>()
                .into_vec::<f64>()
                .expect("f64 data");
            for (k, (step, lr, tokens, _)) in pending.drain(..).enumerate() {
                let record = LossRecord {
                    step,
                    loss: read[2 * k],
                    lr,
                    tokens,
                    grad_norm: read[2 * k + 1],
                };
                if !(record.loss.is_finite() && record.grad_norm.is_finite()) {
                    return Err(TrainError::Diverged {
                        step: record.step,
                        loss: record.loss,
                        grad_norm: record.grad_norm,
                    });
                }
                on_step(&record);
                records.push(record);
            }
        }
        if checkpoint && let Some(dir) = &config.checkpoint_dir {
            if model.lora_config().is_some() {
                crate::lora::save_adapter(&model.valid(), dir).map_err(|e| match e {
                    crate::lora::LoraError::Checkpoint(e) => TrainError::Checkpoint(e),
                    other => unreachable!("the model has adapters: {other}"),
                })?;
            } else {
                checkpoint::save(&model.valid(), dir)?;
            }
        }
    }
    Ok((model, records))
}

/// Clipping and AdamW: burn's AdamW after [`clip_global_norm`], or the same step as two kernels a
/// parameter ([`FusedAdamW`]), as [`TrainConfig::optimizer`] says.
enum Step<B: AutodiffBackend> {
    Burn {
        adamw: OptimizerAdaptor<AdamW, MllamaForConditionalGeneration<B>, B>,
        max_norm: Option<f64>,
    },
    Fused(FusedAdamW<B::InnerBackend>),
}

impl<B: AutodiffBackend> Step<B> {
    fn new(config: &TrainConfig) -> Self {
        let fused = match config.optimizer {
            OptimizerChoice::Backend => FusedAdamW::for_backend(config),
            OptimizerChoice::Burn => None,
            OptimizerChoice::Fused => Some(FusedAdamW::new(config)),
            OptimizerChoice::Checked => Some(FusedAdamW::checked(config)),
        };
        if let Some(fused) = fused {
            return Self::Fused(fused);
        }
        Self::Burn {
            adamw: AdamWConfig::new()
                .with_beta_1(config.beta_1)
                .with_beta_2(config.beta_2)
                .with_epsilon(config.epsilon)
                .with_weight_decay(config.weight_decay)
                .init(),
            max_norm: config.max_grad_norm,
        }
    }

    /// Clips `grads` and updates `model` at learning rate `lr`; returns the model and the
    /// global gradient norm before clipping (`[1]`, f32, on the device).
    fn step(
        &mut self,
        lr: f64,
        model: MllamaForConditionalGeneration<B>,
        mut grads: GradientsParams,
    ) -> (
        MllamaForConditionalGeneration<B>,
        Tensor<B::InnerBackend, 1>,
    ) {
        match self {
            Self::Burn { adamw, max_norm } => {
                let norm = clip_global_norm(&model, &mut grads, *max_norm);
                (adamw.step(lr, model, grads), norm)
            }
            Self::Fused(fused) => fused.step(lr, model, grads),
        }
    }
}

/// Response tokens (targets) in a batch, each counted by its loss weight.
fn target_tokens<B: Backend>(batch: &TrainBatch<B>) -> usize {
    let [b, s] = batch.loss_mask.dims();
    batch
        .loss_mask
        .clone()
        .slice([0..b, 1..s])
        .sum()
        .into_scalar()
        .elem::<f64>()
        .round() as usize
}

/// Adds the squares of `g`'s elements, in f32, to `sum` (`[1]`).
pub(crate) fn add_squares<B: Backend, const D: usize>(
    sum: &mut Option<Tensor<B, 1>>,
    g: Tensor<B, D>,
) {
    let squares = g.cast(DType::F32).square().sum();
    *sum = Some(match sum.take() {
        Some(sum) => sum + squares,
        None => squares,
    });
}

/// What every gradient is multiplied by to clip the global norm `norm` (`[1]`) to `max`:
/// `min(1, max / (norm + 1e-6))`.
pub(crate) fn clip_factor<B: Backend>(norm: Tensor<B, 1>, max: f64) -> Tensor<B, 1> {
    (norm + 1e-6).recip().mul_scalar(max).clamp_max(1.0)
}

/// Sums the squares of all gradients into one device scalar.
struct GradSquares<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum_sq: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradSquares<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            add_squares(&mut self.sum_sq, g);
        }
    }
}

/// Multiplies every gradient by one device scalar.
struct GradScale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    scale: Tensor<B::InnerBackend, 1>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradScale<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let scale = self.scale.clone().cast(g.dtype()).reshape([1; D]);
            self.grads.register(param.id, g * scale);
        }
    }
}

/// Global L2 norm of the gradients as a `[1]` device tensor, and clipping to `max_norm` (all
/// gradients scaled by one factor, `min(1, max_norm / norm)`, unlike burn's per-tensor clipping).
fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: Option<f64>,
) -> Tensor<B::InnerBackend, 1> {
    let mut squares = GradSquares::<B> {
        grads,
        sum_sq: None,
    };
    module.visit(&mut squares);
    let device = module
        .devices()
        .into_iter()
        .next()
        .expect("module on a device");
    let norm = squares
        .sum_sq
        .map(Tensor::sqrt)
        .unwrap_or_else(|| Tensor::zeros([1], &device));
    if let Some(max) = max_norm {
        let scale = clip_factor(norm.clone(), max);
        let mut scaling = GradScale::<B> { grads, scale };
        module.visit(&mut scaling);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let config = TrainConfig {
            learning_rate: 1.0,
            warmup_steps: 2,
            min_lr_ratio: 0.1,
            ..TrainConfig::default()
        };
        let lr: Vec<f64> = (1..=6).map(|s| learning_rate_at(s, 6, &config)).collect();
        assert_eq!(&lr[..3], &[0.5, 1.0, 1.0]);
        assert!(lr.windows(2).skip(2).all(|w| w[1] < w[0]));
        assert!(lr[5] > 0.1 && lr[5] < 0.3, "{lr:?}");
    }
}
