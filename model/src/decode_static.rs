//! Decoding with fixed shapes and the next token drawn on the device: the GPU path of
//! [`crate::generate`].
//!
//! # Contract
//! - **Same function as the host path.** Greedy decoding returns the tokens
//!   [`crate::generate::decode`] returns (up to float rounding in near-ties); sampling draws from
//!   the same distribution (temperature, then top-k, then top-p, HF's order), with one ChaCha
//!   stream per row seed, so a row's output never depends on the other rows of its batch.
//!   Sampled tokens are not bit-identical to the host sampler's: the arithmetic is f32 on the
//!   device instead of f64 on the host, so a uniform draw that lands within rounding of a bucket
//!   edge can pick the neighbouring token. CPU pipelines therefore keep the host sampler
//!   ([`Placement::Host`]), and their results do not change.
//! - **Fixed shapes.** Prompts are left-padded to a multiple of [`PROMPT_BUCKET`] tokens and the
//!   KV cache holds a multiple of [`CAPACITY_BUCKET`] slots; every decode step attends over the
//!   whole cache with a mask instead of a growing prefix. A backend that compiles kernels per
//!   shape (cubecl) compiles one set per bucket, not one per step.
//! - **No host round trip per step.** RoPE tables, padding and position tensors are built once
//!   per batch; each step's mask is one comparison against a scalar. The uniform draws for every
//!   step are made on the host up front (one upload), the token is chosen on the device and fed
//!   straight back as the next input. The host reads the finished flags every
//!   [`STOP_CHECK_EVERY`] steps (to stop early) and everything else — tokens and the watched
//!   logits — once at the end.

use burn::prelude::*;
use burn::tensor::DType;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cache::{KvCache, KvView};
use crate::generate::{
    FinishReason, GenerateConfig, Generation, SamplingConfig, last_position_logits, left_padded,
    prompt_cross_inputs,
};
use crate::layers::rope_tables;
use crate::model::{ImageInputs, MllamaForConditionalGeneration};
use crate::text::SelfAttentionInputs;

/// Prompt lengths are rounded up to a multiple of this (left padding, masked).
pub const PROMPT_BUCKET: usize = 16;
/// KV cache capacities are rounded up to a multiple of this.
pub const CAPACITY_BUCKET: usize = 64;
/// Steps between two reads of the finished flags.
pub const STOP_CHECK_EVERY: usize = 8;

/// Where the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Logits are read back every step and sampled on the host in f64 (the reference; exact
    /// shapes per step). The CPU backend's default, so CPU results stay as they were.
    #[default]
    Host,
    /// Fixed shapes and sampling on the device (this module). The CUDA default.
    Device,
}

impl Placement {
    /// The default for a backend: the host for the CPU backend (whose "device" is the host, and
    /// whose results must not change), the device for every other (CUDA).
    pub fn for_backend<B: Backend>() -> Self {
        if is_cpu::<B>() {
            Placement::Host
        } else {
            Placement::Device
        }
    }
}

/// Whether `B` is the CPU backend.
fn is_cpu<B: Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<crate::backend::CpuBackend>()
}

/// One row's generation and, per step, the logits of the watched token ids.
pub type Watched = (Generation, Vec<Vec<f32>>);

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Greedy or sampled decoding with fixed shapes and device-side sampling; see the module
/// contract. Returns, per row, its generation and the logits of `watch` at every step.
pub fn decode_static<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    prompts: &[Vec<u32>],
    images: Option<&ImageInputs<B>>,
    seeds: &[u64],
    config: &GenerateConfig,
    watch: &[u32],
) -> Vec<Watched> {
    assert_eq!(prompts.len(), seeds.len(), "one seed per prompt");
    assert!(
        prompts.iter().all(|p| !p.is_empty()),
        "prompts must not be empty"
    );
    let b = prompts.len();
    let steps = config.max_new_tokens;
    if b == 0 || steps == 0 {
        return prompts
            .iter()
            .map(|_| {
                let g = Generation {
                    tokens: vec![],
                    finish: FinishReason::Length,
                };
                (g, vec![])
            })
            .collect();
    }
    let device = model.multi_modal_projector.base.weight.device();
    let s = round_up(
        prompts.iter().map(Vec::len).max().unwrap_or(1),
        PROMPT_BUCKET,
    );
    let capacity = round_up(s + steps, CAPACITY_BUCKET);
    let pad_len: Vec<usize> = prompts.iter().map(|p| s - p.len()).collect();
    let text_config = &model.config().text_config;
    let mut cache = KvCache::new(text_config, b, capacity, &device).with_view(KvView::Full);

    // RoPE tables for every slot, built once in f64 on the host (see `rope_tables`); a step
    // selects its rows by position on the device.
    let slots: Vec<i64> = (0..capacity as i64).collect();
    let (cos_table, sin_table) = rope_tables::<B>(
        model.language_model.inv_freq(),
        &slots,
        1,
        capacity,
        &device,
    );
    let head_dim = cos_table.dims()[3];
    let cos_table = cos_table.reshape([capacity, head_dim]);
    let sin_table = sin_table.reshape([capacity, head_dim]);
    let rope = |positions: Tensor<B, 1, Int>, seq: usize| {
        let cos = cos_table.clone().select(0, positions.clone());
        let sin = sin_table.clone().select(0, positions);
        (
            cos.reshape([b, 1, seq, head_dim]),
            sin.reshape([b, 1, seq, head_dim]),
        )
    };

    // Key slots and each row's padding, on the device once.
    let key_slot = Tensor::<B, 1, Int>::arange(0..capacity as i64, &device).reshape([1, capacity]);
    let pad = Tensor::<B, 1, Int>::from_data(
        TensorData::new(pad_len.iter().map(|&p| p as i64).collect(), [b]),
        &device,
    );
    let padding = key_slot
        .clone()
        .expand([b, capacity])
        .lower(pad.clone().reshape([b, 1]).expand([b, capacity]));

    // Prefill: queries at slots 0..s see keys at slots <= their own, minus padding.
    let (ids, positions) = left_padded(prompts, s, config.pad_token);
    let (cos, sin) = rope(
        Tensor::from_data(TensorData::new(positions, [b * s]), &device),
        s,
    );
    let future: Vec<bool> = (0..s)
        .flat_map(|i| (0..capacity).map(move |j| j > i))
        .collect();
    let future = Tensor::<B, 2, Bool>::from_data(TensorData::new(future, [s, capacity]), &device)
        .reshape([1, 1, s, capacity])
        .expand([b, 1, s, capacity]);
    let prefill = SelfAttentionInputs {
        cos,
        sin,
        mask: Some(
            future.bool_or(
                padding
                    .clone()
                    .reshape([b, 1, 1, capacity])
                    .expand([b, 1, s, capacity]),
            ),
        ),
    };
    let (cross_prefill, cross_step) = prompt_cross_inputs(model, prompts, images, s);
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, s]), &device);
    let hidden = model.language_model.hidden_states(
        input,
        &prefill,
        cross_prefill.as_ref(),
        Some(&mut cache),
    );
    let mut logits = last_position_logits(model, hidden);

    // Every step's uniform draw, row by row from the row's own stream (the host sampler draws
    // one per step too, so a row's stream does not depend on the batch).
    let uniforms = (config.sampling.temperature > 0.0).then(|| {
        let draws: Vec<f32> = seeds
            .iter()
            .flat_map(|&seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                (0..steps).map(move |_| rng.random::<f64>() as f32)
            })
            .collect();
        Tensor::<B, 2>::from_data(TensorData::new(draws, [b, steps]), (&device, DType::F32))
    });
    let watch_ids = (!watch.is_empty()).then(|| {
        Tensor::<B, 1, Int>::from_data(
            TensorData::new(watch.iter().map(|&t| t as i64).collect(), [watch.len()]),
            &device,
        )
    });

    let mut done = Tensor::<B, 2, Int>::zeros([b, 1], &device);
    let mut tokens: Vec<Tensor<B, 2, Int>> = Vec::with_capacity(steps);
    let mut watched: Vec<Tensor<B, 3>> = Vec::with_capacity(steps);
    for step in 0..steps {
        let logits_f32 = logits.cast(DType::F32);
        if let Some(ids) = &watch_ids {
            watched.push(
                logits_f32
                    .clone()
                    .select(1, ids.clone())
                    .reshape([b, 1, watch.len()]),
            );
        }
        let u = uniforms
            .as_ref()
            .map(|u| u.clone().slice([0..b, step..step + 1]));
        let token = sample_on_device(logits_f32, &config.sampling, u);
        let mut stopped = Tensor::<B, 2, Int>::zeros([b, 1], &device);
        for &stop in &config.stop_tokens {
            stopped = stopped + token.clone().equal_elem(stop as i64).int();
        }
        done = done + stopped;
        tokens.push(token.clone());
        if step + 1 == steps {
            break;
        }
        if (step + 1) % STOP_CHECK_EVERY == 0 {
            let finished: Vec<i64> = done
                .clone()
                .greater_elem(0)
                .int()
                .sum()
                .into_data()
                .convert::<i64>()
                .to_vec()
                .expect("finished count");
            if finished[0] as usize == b {
                break;
            }
        }
        // The new token goes to slot `s + step`; its position skips the row's padding.
        let slot = s + step;
        let positions = pad.clone().neg().add_scalar(slot as i64);
        let (cos, sin) = rope(positions, 1);
        let mask = padding
            .clone()
            .bool_or(
                key_slot
                    .clone()
                    .greater_elem(slot as i64)
                    .expand([b, capacity]),
            )
            .reshape([b, 1, 1, capacity]);
        let inputs = SelfAttentionInputs {
            cos,
            sin,
            mask: Some(mask),
        };
        let hidden = model.language_model.hidden_states(
            token,
            &inputs,
            cross_step.as_ref(),
            Some(&mut cache),
        );
        logits = last_position_logits(model, hidden);
    }

    let n = tokens.len();
    let ids: Vec<i64> = Tensor::cat(tokens, 1)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .expect("token ids");
    let watched: Vec<f32> = if watched.is_empty() {
        vec![]
    } else {
        Tensor::cat(watched, 1)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("watched logits")
    };
    let w = watch.len();
    (0..b)
        .map(|r| {
            let mut generation = Generation {
                tokens: Vec::new(),
                finish: FinishReason::Length,
            };
            for &t in &ids[r * n..(r + 1) * n] {
                let t = t as u32;
                if config.stop_tokens.contains(&t) {
                    generation.finish = FinishReason::Stop(t);
                    break;
                }
                generation.tokens.push(t);
            }
            let steps_seen = match generation.finish {
                FinishReason::Stop(_) => generation.tokens.len() + 1,
                FinishReason::Length => n,
            };
            let logits = if w == 0 {
                vec![]
            } else {
                (0..steps_seen)
                    .map(|k| watched[(r * n + k) * w..(r * n + k + 1) * w].to_vec())
                    .collect()
            };
            (generation, logits)
        })
        .collect()
}

/// Chooses one token per row on the device: argmax when the temperature is 0; otherwise
/// temperature, top-k, top-p and an inverse-CDF draw with the row's `uniforms` (`[batch, 1]`
/// in `[0, 1)`), as [`crate::generate::sample`] does on the host.
///
/// # Shapes
/// - logits: `[batch, vocab]`, f32
/// - uniforms: `[batch, 1]`, f32 (required when the temperature is above 0)
/// - output: `[batch, 1]` token ids
pub fn sample_on_device<B: Backend>(
    logits: Tensor<B, 2>,
    config: &SamplingConfig,
    uniforms: Option<Tensor<B, 2>>,
) -> Tensor<B, 2, Int> {
    if config.temperature <= 0.0 {
        return top_k(logits, 1).1;
    }
    let uniforms = uniforms.expect("a uniform draw per row when sampling");
    let [b, vocab] = logits.dims();
    let scaled = logits / config.temperature as f64;
    // Candidates in descending order of logit: top-k on the device when it restricts anything;
    // otherwise a full sort (which burn 0.21 may do on the host: top_k = 0 is the slow path).
    let (values, candidates) = if config.top_k > 0 && config.top_k < vocab {
        top_k(scaled, config.top_k)
    } else {
        scaled.sort_descending_with_indices(1)
    };
    let k = values.dims()[1];
    let max = values.clone().slice([0..b, 0..1]);
    let probs = (values - max.expand([b, k])).exp();
    let total = probs.clone().sum_dim(1);
    let probs = probs / total.expand([b, k]);
    let probs = if config.top_p < 1.0 {
        // Keep a token while the mass before it is below top_p: the smallest prefix that
        // reaches top_p, as the host sampler keeps.
        let before = probs.clone().cumsum(1) - probs.clone();
        probs.mask_fill(before.greater_equal_elem(config.top_p as f64), 0.0)
    } else {
        probs
    };
    let kept = probs.clone().greater_elem(0.0).int().sum_dim(1);
    let cumulative = probs.cumsum(1);
    let total = cumulative.clone().slice([0..b, k - 1..k]);
    let target = uniforms * total;
    // The first candidate whose cumulative mass exceeds the target: the number of candidates
    // whose cumulative mass does not. Rounding can push that past the kept ones: take the last.
    let choice = cumulative
        .lower_equal(target.expand([b, k]))
        .int()
        .sum_dim(1);
    let last_kept = kept.sub_scalar(1).clamp_min(0);
    let choice = choice
        .clone()
        .mask_where(choice.greater(last_kept.clone()), last_kept);
    candidates.gather(1, choice)
}

/// Rows longer than this are cut into chunks of this length for [`top_k`]'s first stage.
const TOP_K_CHUNK: usize = 1024;

/// The `k` largest values of each row, in descending order (ties: lower index first), and their
/// indices.
///
/// burn 0.21 reduces a row in one GPU thread without autotune, which for a 128k vocabulary is a
/// long serial scan per row; so long rows go in two exact stages: the top `k` of every chunk of
/// [`TOP_K_CHUNK`] in parallel, then the top `k` of those candidates.
///
/// # Shapes
/// - x: `[batch, n]` with `n > k`
/// - output: `[batch, k]` values and `[batch, k]` indices into `n`
pub fn top_k<B: Backend>(x: Tensor<B, 2>, k: usize) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
    let n = x.dims()[1];
    if n <= 4 * TOP_K_CHUNK || k >= TOP_K_CHUNK {
        let idx = arg_top_k(x.clone(), k);
        return (x.gather(1, idx.clone()), idx);
    }
    if is_cpu::<B>() {
        two_stage_top_k(x, k, arg_top_k)
    } else {
        two_stage_top_k(x, k, argmax_rounds)
    }
}

/// Row-wise top-k as `k` rounds of a row-wise argmax, each masking its winner out.
///
/// For long rows (the 11B's 128k vocabulary) on CUDA: with burn 0.21's `argtopk` there, the
/// first device-sampled generate call stopped with cubecl's device thread at 100% CPU and the
/// GPU idle for minutes after the last logged kernel (scripts/device_11b_hang.sh, notes/gpu.md),
/// which is what compiling one enormous kernel looks like; the host-sampled call went through.
/// An argmax is a plain reduction every model compiles anyway. Equal values may come out in
/// another order than `argtopk`'s (their probabilities are the same).
fn argmax_rounds<B: Backend>(x: Tensor<B, 2>, k: usize) -> Tensor<B, 2, Int> {
    let [b, n] = x.dims();
    let positions = Tensor::<B, 1, Int>::arange(0..n as i64, &x.device())
        .reshape([1, n])
        .expand([b, n]);
    let mut x = x;
    let mut picks = Vec::with_capacity(k);
    for round in 0..k {
        let idx = x.clone().argmax(1);
        if round + 1 < k {
            let hit = positions.clone().equal(idx.clone().expand([b, n]));
            x = x.mask_fill(hit, f32::MIN);
        }
        picks.push(idx);
    }
    Tensor::cat(picks, 1)
}

/// One row-wise top-k launch: burn's `argtopk`, except on the CPU backend, which has none in
/// burn 0.21 (its "device" is the host: a sort does).
fn arg_top_k<B: Backend>(x: Tensor<B, 2>, k: usize) -> Tensor<B, 2, Int> {
    if is_cpu::<B>() {
        let b = x.dims()[0];
        x.sort_descending_with_indices(1).1.slice([0..b, 0..k])
    } else {
        x.argtopk(k, 1)
    }
}

/// [`top_k`] in two stages, each row cut into chunks of [`TOP_K_CHUNK`].
fn two_stage_top_k<B: Backend>(
    x: Tensor<B, 2>,
    k: usize,
    arg_top_k: impl Fn(Tensor<B, 2>, usize) -> Tensor<B, 2, Int>,
) -> (Tensor<B, 2>, Tensor<B, 2, Int>) {
    let [b, n] = x.dims();
    let device = x.device();
    let chunks = n.div_ceil(TOP_K_CHUNK);
    let padded = chunks * TOP_K_CHUNK;
    let x = if padded > n {
        let fill = Tensor::<B, 2>::full([b, padded - n], f32::MIN, (&device, x.dtype()));
        Tensor::cat(vec![x, fill], 1)
    } else {
        x
    };
    let x = x.reshape([b * chunks, TOP_K_CHUNK]);
    let local = arg_top_k(x.clone(), k);
    let local_values = x.gather(1, local.clone()).reshape([b, chunks * k]);
    let offsets = Tensor::<B, 1, Int>::arange_step(0..padded as i64, TOP_K_CHUNK, &device)
        .reshape([1, chunks, 1])
        .expand([b, chunks, k])
        .reshape([b * chunks, k]);
    let global = (local + offsets).reshape([b, chunks * k]);
    let pick = arg_top_k(local_values.clone(), k);
    (local_values.gather(1, pick.clone()), global.gather(1, pick))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::sample;

    type B = burn::backend::NdArray<f32>;

    #[test]
    fn argmax_rounds_is_an_exact_top_k_without_ties() {
        let device = Default::default();
        // Distinct values: the rounds must give the sort's order exactly.
        let values: Vec<f32> = (0..2 * 300).map(|i| ((i * 7919) % 601) as f32).collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(values.clone(), [2, 300]), &device);
        let ours: Vec<i64> = argmax_rounds(x.clone(), 9)
            .into_data()
            .iter::<i64>()
            .collect();
        let sorted: Vec<i64> = x
            .sort_descending_with_indices(1)
            .1
            .slice([0..2, 0..9])
            .into_data()
            .iter::<i64>()
            .collect();
        assert_eq!(ours, sorted);
    }

    #[test]
    fn two_stage_top_k_is_exact() {
        let device = Default::default();
        let (rows, n, k) = (3, 5 * TOP_K_CHUNK + 77, 50);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let data: Vec<f32> = (0..rows * n).map(|_| rng.random::<f32>()).collect();
        let (values, idx) = two_stage_top_k::<B>(
            Tensor::from_data(TensorData::new(data.clone(), [rows, n]), &device),
            k,
            arg_top_k,
        );
        let values: Vec<f32> = values.into_data().to_vec().unwrap();
        let idx: Vec<i64> = idx.into_data().convert::<i64>().to_vec().unwrap();
        for r in 0..rows {
            let row = &data[r * n..(r + 1) * n];
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let want: Vec<i64> = order[..k].iter().map(|&i| i as i64).collect();
            assert_eq!(&idx[r * k..(r + 1) * k], want.as_slice());
            for j in 0..k {
                assert_eq!(values[r * k + j], row[want[j] as usize]);
            }
        }
    }

    #[test]
    fn device_sampler_draws_what_the_host_sampler_draws() {
        let device = Default::default();
        let vocab = 40;
        let rows = 64;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let logits: Vec<f32> = (0..rows * vocab)
            .map(|_| rng.random::<f32>() * 6.0 - 3.0)
            .collect();
        for config in [
            SamplingConfig {
                temperature: 0.7,
                top_k: 10,
                top_p: 0.9,
            },
            SamplingConfig {
                temperature: 1.3,
                top_k: 0,
                top_p: 1.0,
            },
            SamplingConfig {
                temperature: 0.6,
                top_k: 50,
                top_p: 0.5,
            },
            SamplingConfig::greedy(),
        ] {
            let mut same = 0;
            let draws = 20;
            for draw in 0..draws {
                let seeds: Vec<u64> = (0..rows as u64).map(|r| r * 1000 + draw).collect();
                let uniforms: Vec<f32> = seeds
                    .iter()
                    .map(|&s| ChaCha8Rng::seed_from_u64(s).random::<f64>() as f32)
                    .collect();
                let device_tokens: Vec<i64> = sample_on_device::<B>(
                    Tensor::from_data(TensorData::new(logits.clone(), [rows, vocab]), &device),
                    &config,
                    Some(Tensor::from_data(
                        TensorData::new(uniforms, [rows, 1]),
                        &device,
                    )),
                )
                .into_data()
                .convert::<i64>()
                .to_vec()
                .unwrap();
                for r in 0..rows {
                    let mut rng = ChaCha8Rng::seed_from_u64(seeds[r]);
                    let host = sample(&logits[r * vocab..(r + 1) * vocab], &config, &mut rng);
                    same += usize::from(host as i64 == device_tokens[r]);
                }
            }
            // Only a draw within f32 rounding of a bucket edge may differ.
            let total = rows * draws as usize;
            assert!(
                same * 1000 >= total * 998,
                "{config:?}: {same} of {total} draws agree"
            );
        }
    }
}
