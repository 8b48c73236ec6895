//! Batched generation with a preallocated KV cache, and log-probability scoring of given
//! continuations (the judge's verdict probabilities).
//!
//! Ragged prompts are left-padded for generation: every row then ends at the same cache slot,
//! padded keys are masked, and each row's positions start at 0 at its first real token, so a
//! row's result does not depend on the other rows (up to float rounding). Scoring right-pads
//! instead, which needs no padding mask under causal attention.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cache::KvCache;
pub use crate::decode_static::Placement;
use crate::decode_static::{Watched, decode_static};
use crate::layers::{causal_mask, rope_tables};
use crate::model::{
    ImageInputs, MllamaForConditionalGeneration, Padding, cross_attention_mask_tensor,
};
use crate::text::{CrossAttentionInputs, SelfAttentionInputs};

/// How the next token is drawn from the logits.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; 1 disables.
    pub top_p: f32,
}

impl SamplingConfig {
    /// Argmax decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

/// Generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Upper bound on generated tokens per row.
    pub max_new_tokens: usize,
    /// Sampling rule.
    pub sampling: SamplingConfig,
    /// A row stops after producing any of these (the stop token is not returned).
    pub stop_tokens: Vec<u32>,
    /// Token used for left padding (never attended to).
    pub pad_token: u32,
    /// Where the next token is chosen: on the host (the reference, CPU default) or on the
    /// device with fixed shapes ([`crate::decode_static`], CUDA default).
    pub placement: Placement,
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// Produced this stop token.
    Stop(u32),
    /// Reached `max_new_tokens`.
    Length,
}

/// One row's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated tokens, stop token excluded.
    pub tokens: Vec<u32>,
    /// Why generation ended.
    pub finish: FinishReason,
}

/// Log-probabilities of one continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Sum of `token_logprobs`.
    pub total_logprob: f64,
    /// `log p(token | prompt, earlier continuation tokens)` per continuation token.
    pub token_logprobs: Vec<f32>,
}

/// Generates continuations for a batch of prompts (one image set per row when `images` is
/// given), with one ChaCha seed per row, where `config.placement` says.
pub fn generate<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    prompts: &[Vec<u32>],
    images: Option<&ImageInputs<B>>,
    seeds: &[u64],
    config: &GenerateConfig,
) -> Vec<Generation> {
    generate_watching(model, prompts, images, seeds, config, &[])
        .into_iter()
        .map(|(g, _)| g)
        .collect()
}

/// [`generate`], also returning for every row and step the logits of the `watch` token ids
/// (the judge's verdict letters), up to and including the step that stopped the row.
pub fn generate_watching<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    prompts: &[Vec<u32>],
    images: Option<&ImageInputs<B>>,
    seeds: &[u64],
    config: &GenerateConfig,
    watch: &[u32],
) -> Vec<Watched> {
    match config.placement {
        Placement::Device => decode_static(model, prompts, images, seeds, config, watch),
        Placement::Host => {
            let mut watched: Vec<Vec<Vec<f32>>> = vec![Vec::new(); prompts.len()];
            let generations = decode(model, prompts, images, seeds, config, |logits| {
                if watch.is_empty() {
                    return;
                }
                for (row, l) in logits.iter().enumerate() {
                    watched[row].push(
                        watch
                            .iter()
                            .map(|&t| l.get(t as usize).copied().unwrap_or(f32::NEG_INFINITY))
                            .collect(),
                    );
                }
            });
            generations
                .into_iter()
                .zip(watched)
                .map(|(g, mut w)| {
                    // Steps after the row stopped are not the row's.
                    let seen = match g.finish {
                        FinishReason::Stop(_) => g.tokens.len() + 1,
                        FinishReason::Length => g.tokens.len(),
                    };
                    w.truncate(seen);
                    (g, w)
                })
                .collect()
        }
    }
}

/// [`generate`], also handing every step's next-token logits `[batch, vocab]` to `on_logits`
/// (row order as `prompts`; rows that already stopped are included).
pub fn decode<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    prompts: &[Vec<u32>],
    images: Option<&ImageInputs<B>>,
    seeds: &[u64],
    config: &GenerateConfig,
    mut on_logits: impl FnMut(&[Vec<f32>]),
) -> Vec<Generation> {
    assert_eq!(prompts.len(), seeds.len(), "one seed per prompt");
    assert!(
        prompts.iter().all(|p| !p.is_empty()),
        "prompts must not be empty"
    );
    let b = prompts.len();
    if b == 0 || config.max_new_tokens == 0 {
        return prompts
            .iter()
            .map(|_| Generation {
                tokens: vec![],
                finish: FinishReason::Length,
            })
            .collect();
    }
    let device = model.multi_modal_projector.base.weight.device();
    let s = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pad_len: Vec<usize> = prompts.iter().map(|p| s - p.len()).collect();
    let pad_len = pad_len.as_slice();
    let text_config = &model.config().text_config;
    let mut cache = KvCache::new(text_config, b, s + config.max_new_tokens, &device);
    let key_padding = |total: usize| -> Vec<bool> {
        (0..b)
            .flat_map(|r| (0..total).map(move |j| j < pad_len[r]))
            .collect()
    };

    let (ids, positions) = left_padded(prompts, s, config.pad_token);
    let (cos, sin) = rope_tables(model.language_model.inv_freq(), &positions, b, s, &device);
    let prefill = SelfAttentionInputs {
        cos,
        sin,
        mask: Some(causal_mask(Some(&key_padding(s)), b, s, 0, &device)),
    };
    let (cross_prefill, cross_step) = prompt_cross_inputs(model, prompts, images, s);
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, s]), &device);
    let hidden = model.language_model.hidden_states(
        input,
        &prefill,
        cross_prefill.as_ref(),
        Some(&mut cache),
    );
    let mut logits = last_logits(model, hidden);

    let mut rngs: Vec<ChaCha8Rng> = seeds
        .iter()
        .map(|&s| ChaCha8Rng::seed_from_u64(s))
        .collect();
    let mut out: Vec<Generation> = (0..b)
        .map(|_| Generation {
            tokens: vec![],
            finish: FinishReason::Length,
        })
        .collect();
    let mut done = vec![false; b];
    let mut next: Vec<i64> = vec![config.pad_token as i64; b];
    for step in 0..config.max_new_tokens {
        on_logits(&logits);
        for r in 0..b {
            if done[r] {
                continue;
            }
            let token = sample(&logits[r], &config.sampling, &mut rngs[r]);
            next[r] = token as i64;
            if config.stop_tokens.contains(&token) {
                done[r] = true;
                out[r].finish = FinishReason::Stop(token);
            } else {
                out[r].tokens.push(token);
            }
        }
        if done.iter().all(|&d| d) || step + 1 == config.max_new_tokens {
            break;
        }
        let past = cache.len();
        let positions: Vec<i64> = (0..b).map(|r| (past - pad_len[r]) as i64).collect();
        let (cos, sin) = rope_tables(model.language_model.inv_freq(), &positions, b, 1, &device);
        let inputs = SelfAttentionInputs {
            cos,
            sin,
            mask: Some(causal_mask(
                Some(&key_padding(past + 1)),
                b,
                1,
                past,
                &device,
            )),
        };
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(next.clone(), [b, 1]), &device);
        let hidden = model.language_model.hidden_states(
            input,
            &inputs,
            cross_step.as_ref(),
            Some(&mut cache),
        );
        logits = last_logits(model, hidden);
    }
    out
}

/// Cross-attention inputs for left-padded prompts of length `s`: the prefill's (with the encoded
/// images) and every later step's.
pub(crate) fn prompt_cross_inputs<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    prompts: &[Vec<u32>],
    images: Option<&ImageInputs<B>>,
    s: usize,
) -> (
    Option<CrossAttentionInputs<B>>,
    Option<CrossAttentionInputs<B>>,
) {
    let Some(images) = images else {
        return (None, None);
    };
    let b = prompts.len();
    let mask = cross_attention_mask_tensor(model.config(), prompts, Padding::Left, s, images);
    let [_, _, m, t] = mask.dims();
    // New tokens see what the last prompt token sees, as HF's generation does.
    let last = mask.clone().slice([0..b, s - 1..s, 0..m, 0..t]);
    (
        Some(model.cross_inputs(Some(model.encode_images(images)), mask)),
        Some(model.cross_inputs(None, last)),
    )
}

/// Host copy of the logits at the last position.
fn last_logits<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    hidden: Tensor<B, 3>,
) -> Vec<Vec<f32>> {
    let logits = last_position_logits(model, hidden);
    let v = logits.dims()[1];
    let flat: Vec<f32> = logits.into_data().iter::<f32>().collect();
    flat.chunks(v).map(<[f32]>::to_vec).collect()
}

/// Logits at the last position, `[batch, vocab]`, left on the device.
pub(crate) fn last_position_logits<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    hidden: Tensor<B, 3>,
) -> Tensor<B, 2> {
    let [b, s, d] = hidden.dims();
    let logits = model
        .language_model
        .logits(hidden.slice([0..b, s - 1..s, 0..d]));
    let v = logits.dims()[2];
    logits.reshape([b, v])
}

/// Prompts left-padded to `s` tokens with `pad_token`, row-major, and each token's position
/// (0 at a row's first real token; padding at 0, never attended to).
pub(crate) fn left_padded(prompts: &[Vec<u32>], s: usize, pad_token: u32) -> (Vec<i64>, Vec<i64>) {
    let ids = prompts
        .iter()
        .flat_map(|p| {
            std::iter::repeat_n(pad_token as i64, s - p.len()).chain(p.iter().map(|&t| t as i64))
        })
        .collect();
    let positions = prompts
        .iter()
        .flat_map(|p| {
            let pad = s - p.len();
            (0..s).map(move |j| j.saturating_sub(pad) as i64)
        })
        .collect();
    (ids, positions)
}

/// Draws a token: temperature, then top-k, then top-p (HF's order); argmax when the
/// temperature is 0. Ties go to the lower token id in every mode, so top-k 1 is greedy.
pub fn sample(logits: &[f32], config: &SamplingConfig, rng: &mut ChaCha8Rng) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &l)| {
                if l > best.1 { (i, l) } else { best }
            })
            .0 as u32
    };
    if config.temperature <= 0.0 {
        return argmax();
    }
    let mut order: Vec<usize> = (0..logits.len()).collect();
    let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    // Partition first so that top-k over a 128k vocabulary costs O(vocab), not a full sort.
    if config.top_k > 0 && config.top_k < order.len() {
        order.select_nth_unstable_by(config.top_k - 1, by_logit);
        order.truncate(config.top_k);
    }
    order.sort_unstable_by(by_logit);
    let t = config.temperature as f64;
    let max = logits[order[0]] as f64 / t;
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| (logits[i] as f64 / t - max).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if config.top_p < 1.0 {
        let mut cumulative = 0.0;
        let keep = probs
            .iter()
            .position(|&p| {
                cumulative += p;
                cumulative >= config.top_p as f64
            })
            .map_or(probs.len(), |i| i + 1);
        probs.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, p) in probs.iter().enumerate() {
        if u < *p {
            return order[i] as u32;
        }
        u -= p;
    }
    order[probs.len() - 1] as u32
}

/// Log-probabilities of `continuations[i]` after `prompts[i]` (with the row's images).
pub fn score<B: Backend>(
    model: &MllamaForConditionalGeneration<B>,
    prompts: &[Vec<u32>],
    continuations: &[Vec<u32>],
    images: Option<&ImageInputs<B>>,
) -> Vec<Scored> {
    assert_eq!(
        prompts.len(),
        continuations.len(),
        "one continuation per prompt"
    );
    assert!(
        prompts.iter().all(|p| !p.is_empty()),
        "prompts must not be empty"
    );
    let b = prompts.len();
    if b == 0 {
        return vec![];
    }
    let device = model.multi_modal_projector.base.weight.device();
    let rows: Vec<Vec<u32>> = prompts
        .iter()
        .zip(continuations)
        .map(|(p, c)| p.iter().chain(c).copied().collect())
        .collect();
    let s = rows.iter().map(Vec::len).max().unwrap_or(0);
    let ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| {
            r.iter()
                .map(|&t| t as i64)
                .chain(std::iter::repeat_n(0, s - r.len()))
        })
        .collect();
    let cross =
        images.map(|im| cross_attention_mask_tensor(model.config(), &rows, Padding::Right, s, im));
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.clone(), [b, s]), &device);
    let hidden = model.forward_hidden(input, images, cross);
    // Only positions that predict a continuation token need the (vocabulary-wide) head.
    let start = prompts.iter().map(Vec::len).min().unwrap_or(1) - 1;
    let span = s - 1 - start;
    if span == 0 {
        return continuations
            .iter()
            .map(|_| Scored {
                total_logprob: 0.0,
                token_logprobs: vec![],
            })
            .collect();
    }
    let d = hidden.dims()[2];
    let logp = log_softmax(
        model
            .language_model
            .logits(hidden.slice([0..b, start..s - 1, 0..d])),
        2,
    );
    // Prompt ids past the head (`<|image|>`) are never read back; clamp them for the gather.
    let vocab = model.config().text_config.vocab_size as i64;
    let targets: Vec<i64> = (0..b)
        .flat_map(|r| {
            (start + 1..s)
                .map(|j| ids[r * s + j].min(vocab - 1))
                .collect::<Vec<_>>()
        })
        .collect();
    let targets = Tensor::<B, 3, Int>::from_data(TensorData::new(targets, [b, span, 1]), &device);
    let picked: Vec<f32> = logp.gather(2, targets).into_data().iter::<f32>().collect();
    (0..b)
        .map(|r| {
            let first = prompts[r].len() - 1 - start;
            let token_logprobs: Vec<f32> =
                picked[r * span + first..r * span + first + continuations[r].len()].to_vec();
            Scored {
                total_logprob: token_logprobs.iter().map(|&l| l as f64).sum(),
                token_logprobs,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_and_top_p_restrict_the_candidates() {
        let logits = [1.0, 3.0, 2.9, -1.0, 0.5];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let config = |top_k, top_p| SamplingConfig {
            temperature: 1.0,
            top_k,
            top_p,
        };
        let draws: Vec<u32> = (0..300)
            .map(|_| sample(&logits, &config(2, 1.0), &mut rng))
            .collect();
        assert!(draws.iter().all(|&t| t == 1 || t == 2));
        assert!(draws.contains(&1) && draws.contains(&2));
        // The most likely token alone holds less than half the mass, so top-p 0.3 keeps only it.
        assert!((0..50).all(|_| sample(&logits, &config(0, 0.3), &mut rng) == 1));
        let all: std::collections::BTreeSet<u32> = (0..2000)
            .map(|_| sample(&logits, &config(0, 1.0), &mut rng))
            .collect();
        assert_eq!(all.len(), 5);
    }
}
