//! Building blocks shared by the vision encoder and the text decoder: masked attention with
//! grouped K/V heads, rotary position embeddings, and host-side mask helpers.

use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::softmax;

/// Score given to masked attention logits. Finite (unlike -inf) so that a fully masked row —
/// left padding, or a text token that sees no image — yields a uniform distribution instead of
/// NaNs that would leak into later layers; large enough that `exp` underflows to 0 next to any
/// unmasked score, and representable in bf16.
pub const MASK_VALUE: f32 = -1.0e9;

/// Repeats each of `kv` heads `n_rep` times so grouped-query K/V line up with the query heads.
///
/// # Shapes
/// - x: `[batch, kv_heads, seq, head_dim]`
/// - output: `[batch, kv_heads * n_rep, seq, head_dim]`
pub fn repeat_kv<B: Backend>(x: Tensor<B, 4>, n_rep: usize) -> Tensor<B, 4> {
    if n_rep == 1 {
        return x;
    }
    let [b, kv, s, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, n_rep, s, d])
        .reshape([b, kv * n_rep, s, d])
}

/// Softmax attention `softmax(q kᵀ / sqrt(d) + mask) v`; the softmax runs in f32 as HF does,
/// because bf16 logits lose the small differences that decide the distribution.
///
/// # Shapes
/// - q: `[batch, heads, q_len, head_dim]`
/// - k, v: `[batch, kv_heads, kv_len, head_dim]` with `heads % kv_heads == 0`
/// - mask: `[batch or 1, 1, q_len, kv_len]`, `true` where attention is forbidden
/// - output: `[batch, heads, q_len, head_dim]`
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    let [_, h, s, _] = q.dims();
    let t = k.dims()[2];
    // The f32 score matrix is `b * h * s * t * 4` bytes: the 11B vision encoder's 4 tiles x
    // 1601 patches at batch 16 would need 43 GB in one buffer. Rows are independent, so long
    // inputs go through in slices of the batch, each under SCORE_BYTES.
    let per_row = h * s * t * 4;
    attention_in_slices(q, k, v, mask, (SCORE_BYTES / per_row.max(1)).max(1))
}

/// [`attention`] over slices of at most `rows` batch rows.
fn attention_in_slices<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    rows: usize,
) -> Tensor<B, 4> {
    let b = q.dims()[0];
    if b <= rows {
        return attention_unsliced(q, k, v, mask);
    }
    let slice = |x: &Tensor<B, 4>, start: usize, end: usize| {
        let [_, x1, x2, x3] = x.dims();
        x.clone().slice([start..end, 0..x1, 0..x2, 0..x3])
    };
    let parts = (0..b)
        .step_by(rows)
        .map(|start| {
            let end = (start + rows).min(b);
            let mask = mask.as_ref().map(|m| {
                if m.dims()[0] == 1 {
                    m.clone()
                } else {
                    let [_, m1, m2, m3] = m.dims();
                    m.clone().slice([start..end, 0..m1, 0..m2, 0..m3])
                }
            });
            attention_unsliced(
                slice(&q, start, end),
                slice(&k, start, end),
                slice(&v, start, end),
                mask,
            )
        })
        .collect();
    Tensor::cat(parts, 0)
}

/// Largest f32 attention score buffer [`attention`] builds at once.
const SCORE_BYTES: usize = 2 << 30;

fn attention_unsliced<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    let [b, h, s, d] = q.dims();
    let kv_heads = k.dims()[1];
    let k = repeat_kv(k, h / kv_heads);
    let v = repeat_kv(v, h / kv_heads);
    let t = k.dims()[2];
    let dtype = q.dtype();
    let scores = q.matmul(k.swap_dims(2, 3)).cast(DType::F32) / (d as f64).sqrt();
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask.expand([b, h, s, t]), MASK_VALUE),
        None => scores,
    };
    softmax(scores, 3).cast(dtype).matmul(v)
}

/// Splits the last dimension into heads.
///
/// # Shapes
/// - x: `[batch, seq, heads * head_dim]`
/// - output: `[batch, heads, seq, head_dim]`
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [b, s, hd] = x.dims();
    x.reshape([b, s, heads, hd / heads]).swap_dims(1, 2)
}

/// Inverse of [`split_heads`].
///
/// # Shapes
/// - x: `[batch, heads, seq, head_dim]`
/// - output: `[batch, seq, heads * head_dim]`
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, s, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, s, h * d])
}

/// Cosine and sine tables for the given positions, HF "rotate_half" layout (the two halves of
/// the head share frequencies). Computed on the host in f64: positions past 256 are not exact
/// in bf16, so building angles on a bf16 device would scramble RoPE.
///
/// # Shapes
/// - positions: `batch * seq` values, row-major
/// - output: two tensors `[batch, 1, seq, head_dim]`
pub fn rope_tables<B: Backend>(
    inv_freq: &[f64],
    positions: &[i64],
    batch: usize,
    seq: usize,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    assert_eq!(positions.len(), batch * seq, "one position per token");
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(batch * seq * half * 2);
    let mut sin = Vec::with_capacity(batch * seq * half * 2);
    for &p in positions {
        for _ in 0..2 {
            for &f in inv_freq {
                let angle = p as f64 * f;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
    }
    let shape = [batch, 1, seq, half * 2];
    (
        Tensor::from_data(TensorData::new(cos, shape), device),
        Tensor::from_data(TensorData::new(sin, shape), device),
    )
}

/// Applies rotary embeddings: `x * cos + rotate_half(x) * sin`.
///
/// # Shapes
/// - x: `[batch, heads, seq, head_dim]`
/// - cos, sin: `[batch, 1, seq, head_dim]`
/// - output: like x
pub fn apply_rope<B: Backend>(
    x: Tensor<B, 4>,
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, h, s, d] = x.dims();
    let first = x.clone().slice([0..b, 0..h, 0..s, 0..d / 2]);
    let second = x.clone().slice([0..b, 0..h, 0..s, d / 2..d]);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * cos + rotated * sin
}

/// Causal mask over a key range that starts `past` tokens before the queries, combined with a
/// key padding mask.
///
/// # Shapes
/// - key_padding: `batch * (past + seq)` flags, `true` for padding keys
/// - output: `[batch, 1, seq, past + seq]`, `true` where attention is forbidden
pub fn causal_mask<B: Backend>(
    key_padding: Option<&[bool]>,
    batch: usize,
    seq: usize,
    past: usize,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let total = past + seq;
    let causal: Vec<bool> = (0..seq)
        .flat_map(|i| (0..total).map(move |j| j > past + i))
        .collect();
    let causal = Tensor::<B, 2, Bool>::from_data(TensorData::new(causal, [seq, total]), device)
        .reshape([1, 1, seq, total])
        .expand([batch, 1, seq, total]);
    match key_padding {
        Some(pad) => {
            assert_eq!(pad.len(), batch * total, "one padding flag per key");
            let pad = Tensor::<B, 2, Bool>::from_data(
                TensorData::new(pad.to_vec(), [batch, total]),
                device,
            )
            .reshape([batch, 1, 1, total])
            .expand([batch, 1, seq, total]);
            causal.bool_or(pad)
        }
        None => causal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    type B = burn::backend::NdArray<f32>;

    #[test]
    fn attention_in_batch_slices_is_attention() {
        let device = Default::default();
        let q = Tensor::<B, 4>::random([5, 4, 3, 8], Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::<B, 4>::random([5, 2, 6, 8], Distribution::Normal(0.0, 1.0), &device);
        let v = Tensor::<B, 4>::random([5, 2, 6, 8], Distribution::Normal(0.0, 1.0), &device);
        let mask = causal_mask::<B>(None, 5, 3, 3, &device);
        let whole = attention_unsliced(q.clone(), k.clone(), v.clone(), Some(mask.clone()));
        let sliced = attention_in_slices(q, k, v, Some(mask), 2);
        whole.into_data().assert_eq(&sliced.into_data(), true);
    }
}
