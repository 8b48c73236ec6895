//! The mllama tiled ViT: patch convolution, class token, gated tile/position embeddings, local
//! layers whose intermediate inputs are kept, and gated global layers. Field names follow HF's
//! `MllamaVisionModel` so parameters map 1:1 onto `vision_model.*` safetensors names.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use crate::config::MllamaVisionConfig;
use crate::layers::{AttentionKernel, attention_every_row_sees, merge_heads, split_heads};
use crate::lora::LoraLinear;
use crate::norms::layer_norm;

/// Multi-head self-attention without biases (`self_attn`).
#[derive(Module, Debug)]
pub struct VisionAttention<B: Backend> {
    /// Query projection.
    pub q_proj: LoraLinear<B>,
    /// Key projection.
    pub k_proj: LoraLinear<B>,
    /// Value projection.
    pub v_proj: LoraLinear<B>,
    /// Output projection.
    pub o_proj: LoraLinear<B>,
    heads: usize,
}

impl<B: Backend> VisionAttention<B> {
    fn new(c: &MllamaVisionConfig, device: &B::Device) -> Self {
        let lin = |i, o| LoraLinear::from(LinearConfig::new(i, o).with_bias(false).init(device));
        Self {
            q_proj: lin(c.hidden_size, c.hidden_size),
            k_proj: lin(c.hidden_size, c.hidden_size),
            v_proj: lin(c.hidden_size, c.hidden_size),
            o_proj: lin(c.hidden_size, c.hidden_size),
            heads: c.attention_heads,
        }
    }

    /// The attention kernel is `JUDGEFLOW_ATTENTION`'s ([`AttentionKernel::from_env`]); the
    /// encoder's mask hides padding from padding only, so every row sees a key, as the fused
    /// kernels need.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, hidden]`
    /// - mask: `[batch, 1, tokens, tokens]`, `true` = forbidden, no row all `true`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let q = split_heads(self.q_proj.forward(x.clone()), self.heads);
        let k = split_heads(self.k_proj.forward(x.clone()), self.heads);
        let v = split_heads(self.v_proj.forward(x), self.heads);
        let out = attention_every_row_sees(q, k, v, mask, AttentionKernel::from_env());
        self.o_proj.forward(merge_heads(out))
    }
}

/// GELU MLP with biases (`mlp`).
#[derive(Module, Debug)]
pub struct VisionMlp<B: Backend> {
    /// Up projection.
    pub fc1: LoraLinear<B>,
    /// Down projection.
    pub fc2: LoraLinear<B>,
}

impl<B: Backend> VisionMlp<B> {
    /// # Shapes
    /// - x: `[batch, tokens, hidden]`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// The epsilon of the norms before and after the local layers: torch's `LayerNorm` default,
/// which HF's mllama leaves them with (not `norm_eps`).
const PRE_POST_EPS: f64 = 1e-5;

/// Pre-norm encoder layer; global layers scale both branches by `tanh(gate)`.
#[derive(Module, Debug)]
pub struct VisionEncoderLayer<B: Backend> {
    /// Attention.
    pub self_attn: VisionAttention<B>,
    /// MLP.
    pub mlp: VisionMlp<B>,
    /// Norm before attention.
    pub input_layernorm: LayerNorm<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: LayerNorm<B>,
    /// Attention gate (global layers only), initialised at π/4 as in HF.
    pub gate_attn: Option<Param<Tensor<B, 1>>>,
    /// MLP gate (global layers only).
    pub gate_ffn: Option<Param<Tensor<B, 1>>>,
    /// Both norms' epsilon (burn's `LayerNorm` keeps its own private; `norms::layer_norm`
    /// is given it).
    norm_eps: f64,
}

impl<B: Backend> VisionEncoderLayer<B> {
    fn new(c: &MllamaVisionConfig, gated: bool, device: &B::Device) -> Self {
        let gate = || {
            gated.then(|| {
                Initializer::Constant {
                    value: std::f64::consts::FRAC_PI_4,
                }
                .init([1], device)
            })
        };
        Self {
            self_attn: VisionAttention::new(c, device),
            mlp: VisionMlp {
                fc1: LinearConfig::new(c.hidden_size, c.intermediate_size)
                    .init(device)
                    .into(),
                fc2: LinearConfig::new(c.intermediate_size, c.hidden_size)
                    .init(device)
                    .into(),
            },
            input_layernorm: LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.norm_eps)
                .init(device),
            post_attention_layernorm: LayerNormConfig::new(c.hidden_size)
                .with_epsilon(c.norm_eps)
                .init(device),
            gate_attn: gate(),
            gate_ffn: gate(),
            norm_eps: c.norm_eps,
        }
    }

    /// # Shapes
    /// - x: `[batch, tokens, hidden]`
    /// - mask: `[batch, 1, tokens, tokens]`
    /// - output: `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 4, Bool>>) -> Tensor<B, 3> {
        let h = self.self_attn.forward(
            layer_norm(&self.input_layernorm, self.norm_eps, x.clone()),
            mask,
        );
        let h = gated(h, self.gate_attn.as_ref());
        let x = x + h;
        let h = self.mlp.forward(layer_norm(
            &self.post_attention_layernorm,
            self.norm_eps,
            x.clone(),
        ));
        x + gated(h, self.gate_ffn.as_ref())
    }
}

fn gated<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gate: Option<&Param<Tensor<B, 1>>>,
) -> Tensor<B, D> {
    match gate {
        Some(g) => x * g.val().tanh().unsqueeze(),
        None => x,
    }
}

/// A stack of encoder layers (`transformer` / `global_transformer`).
#[derive(Module, Debug)]
pub struct VisionEncoder<B: Backend> {
    /// The layers.
    pub layers: Vec<VisionEncoderLayer<B>>,
}

impl<B: Backend> VisionEncoder<B> {
    /// Runs all layers; also returns the hidden states *entering* the layers listed in `keep`, in
    /// that order (`keep[j] == layers.len()` names the encoder's output). Entering, as in Meta's
    /// reference encoder and transformers 4.x's `hidden_states[i]`, which the released weights
    /// were trained with; transformers 5.x's output recording takes the state *leaving* layer
    /// `i` instead (indices one higher here).
    ///
    /// # Shapes
    /// - x: `[batch, tokens, hidden]`
    /// - mask: `[batch, 1, tokens, tokens]`
    /// - output: `[batch, tokens, hidden]` and `keep.len()` tensors of the same shape
    pub fn forward(
        &self,
        mut x: Tensor<B, 3>,
        mask: Option<Tensor<B, 4, Bool>>,
        keep: &[usize],
    ) -> (Tensor<B, 3>, Vec<Tensor<B, 3>>) {
        let mut kept = vec![None; keep.len()];
        for (i, layer) in self.layers.iter().enumerate() {
            for (slot, _) in keep.iter().enumerate().filter(|(_, k)| **k == i) {
                kept[slot] = Some(x.clone());
            }
            x = layer.forward(x, mask.clone());
        }
        for (slot, _) in keep
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == self.layers.len())
        {
            kept[slot] = Some(x.clone());
        }
        (
            x,
            kept.into_iter()
                .map(|k| k.expect("index checked by config"))
                .collect(),
        )
    }
}

/// Per-aspect-ratio embedding added to every patch of a tile, gated by `tanh(gate)`
/// (`pre_tile_positional_embedding`, `post_tile_positional_embedding`).
#[derive(Module, Debug)]
pub struct AspectRatioEmbedding<B: Backend> {
    /// `[max_aspect_ratio_id + 1, max_num_tiles * hidden]`.
    pub embedding: Embedding<B>,
    /// Gate, initialised at 0.
    pub gate: Param<Tensor<B, 1>>,
    max_num_tiles: usize,
}

impl<B: Backend> AspectRatioEmbedding<B> {
    fn new(c: &MllamaVisionConfig, device: &B::Device) -> Self {
        Self {
            embedding: EmbeddingConfig::new(
                c.max_aspect_ratio_id() + 1,
                c.max_num_tiles * c.hidden_size,
            )
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            })
            .init(device),
            gate: Initializer::Zeros.init([1], device),
            max_num_tiles: c.max_num_tiles,
        }
    }

    /// # Shapes
    /// - x: `[images, tiles, patches, hidden]`
    /// - aspect_ratio_ids: `[images]`
    /// - output: like x
    pub fn forward(&self, x: Tensor<B, 4>, aspect_ratio_ids: Tensor<B, 1, Int>) -> Tensor<B, 4> {
        let [n, _, _, hidden] = x.dims();
        let e = self
            .embedding
            .forward(aspect_ratio_ids.reshape([n, 1]))
            .reshape([n, self.max_num_tiles, 1, hidden]);
        x + e * self.gate.val().tanh().reshape([1, 1, 1, 1])
    }
}

/// Learned patch positions blended with per-aspect-ratio tile positions through one gate
/// (`gated_positional_embedding`).
#[derive(Module, Debug)]
pub struct PositionEmbedding<B: Backend> {
    /// Gate, initialised at 0 (all weight on `embedding`).
    pub gate: Param<Tensor<B, 1>>,
    /// `[num_patches, hidden]`.
    pub embedding: Param<Tensor<B, 2>>,
    /// `[max_aspect_ratio_id + 1, max_num_tiles * num_patches * hidden]`.
    pub tile_embedding: Embedding<B>,
    max_num_tiles: usize,
}

impl<B: Backend> PositionEmbedding<B> {
    fn new(c: &MllamaVisionConfig, device: &B::Device) -> Self {
        let p = c.num_patches();
        Self {
            gate: Initializer::Zeros.init([1], device),
            embedding: Initializer::Normal {
                mean: 0.0,
                std: (c.hidden_size as f64).powf(-0.5),
            }
            .init([p, c.hidden_size], device),
            tile_embedding: EmbeddingConfig::new(
                c.max_aspect_ratio_id() + 1,
                c.max_num_tiles * p * c.hidden_size,
            )
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            })
            .init(device),
            max_num_tiles: c.max_num_tiles,
        }
    }

    /// # Shapes
    /// - x: `[images, tiles, patches, hidden]` (class token included)
    /// - aspect_ratio_ids: `[images]`
    /// - output: like x
    pub fn forward(&self, x: Tensor<B, 4>, aspect_ratio_ids: Tensor<B, 1, Int>) -> Tensor<B, 4> {
        let [n, _, p, hidden] = x.dims();
        let gate = self.gate.val().tanh().reshape([1, 1, 1, 1]);
        let pos = self.embedding.val().reshape([1, 1, p, hidden]);
        let x = x + pos * (gate.clone().neg() + 1.0);
        let tile = self
            .tile_embedding
            .forward(aspect_ratio_ids.reshape([n, 1]))
            .reshape([n, self.max_num_tiles, p, hidden]);
        x + tile * gate
    }
}

/// The image encoder (`vision_model`).
#[derive(Module, Debug)]
pub struct MllamaVisionModel<B: Backend> {
    /// Patchify convolution, no bias.
    pub patch_embedding: Conv2d<B>,
    /// `[hidden]`, prepended to every tile.
    pub class_embedding: Param<Tensor<B, 1>>,
    /// Patch + tile positions.
    pub gated_positional_embedding: PositionEmbedding<B>,
    /// Aspect-ratio embedding before the local layers.
    pub pre_tile_positional_embedding: AspectRatioEmbedding<B>,
    /// Aspect-ratio embedding before the global layers.
    pub post_tile_positional_embedding: AspectRatioEmbedding<B>,
    /// Norm before the local layers.
    pub layernorm_pre: LayerNorm<B>,
    /// Norm after the local layers.
    pub layernorm_post: LayerNorm<B>,
    /// Local layers.
    pub transformer: VisionEncoder<B>,
    /// Gated global layers.
    pub global_transformer: VisionEncoder<B>,
    num_patches: usize,
    padded_num_patches: usize,
    intermediate_layers_indices: Vec<usize>,
}

impl MllamaVisionConfig {
    /// Builds a randomly initialised encoder.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MllamaVisionModel<B> {
        MllamaVisionModel {
            patch_embedding: Conv2dConfig::new(
                [self.num_channels, self.hidden_size],
                [self.patch_size, self.patch_size],
            )
            .with_stride([self.patch_size, self.patch_size])
            .with_bias(false)
            .init(device),
            class_embedding: Initializer::Normal {
                mean: 0.0,
                std: (self.hidden_size as f64).powf(-0.5),
            }
            .init([self.hidden_size], device),
            gated_positional_embedding: PositionEmbedding::new(self, device),
            pre_tile_positional_embedding: AspectRatioEmbedding::new(self, device),
            post_tile_positional_embedding: AspectRatioEmbedding::new(self, device),
            // HF builds these two with LayerNorm's default epsilon, not `norm_eps`.
            layernorm_pre: LayerNormConfig::new(self.hidden_size)
                .with_epsilon(PRE_POST_EPS)
                .init(device),
            layernorm_post: LayerNormConfig::new(self.hidden_size)
                .with_epsilon(PRE_POST_EPS)
                .init(device),
            transformer: VisionEncoder {
                layers: (0..self.num_hidden_layers)
                    .map(|_| VisionEncoderLayer::new(self, false, device))
                    .collect(),
            },
            global_transformer: VisionEncoder {
                layers: (0..self.num_global_layers)
                    .map(|_| VisionEncoderLayer::new(self, true, device))
                    .collect(),
            },
            num_patches: self.num_patches(),
            padded_num_patches: self.padded_num_patches(),
            intermediate_layers_indices: self.intermediate_layers_indices.clone(),
        }
    }
}

impl<B: Backend> MllamaVisionModel<B> {
    /// Encodes tiled images. Padding tiles (`aspect_ratio_mask` 0) and the padding patches added
    /// to reach a multiple of 8 are masked the way HF masks them: a pair of tokens is masked
    /// only when *both* are padding, so real tokens may still attend to padding. (HF's mask
    /// builder masks every pair when no patch padding is needed; we only mask padding there.)
    ///
    /// # Shapes
    /// - pixel_values: `[batch, images, tiles, channels, tile_px, tile_px]`
    /// - aspect_ratio_ids: `[batch, images]`
    /// - aspect_ratio_mask: `[batch, images, tiles]`, 1 for real tiles
    /// - output: `[batch, images, tiles, num_patches, vision_output_dim]` — the final state
    ///   followed by the kept intermediate states, interleaved per channel as HF's
    ///   `torch.stack(dim=-1)` then flatten lays them out
    pub fn forward(
        &self,
        pixel_values: Tensor<B, 6>,
        aspect_ratio_ids: Tensor<B, 2, Int>,
        aspect_ratio_mask: Tensor<B, 3, Int>,
    ) -> Tensor<B, 5> {
        let [b, m, t, c, hp, wp] = pixel_values.dims();
        let n = b * m;
        let ids = aspect_ratio_ids.reshape([n]);

        let x = patchify(
            &self.patch_embedding,
            pixel_values.reshape([n * t, c, hp, wp]),
        );
        let [_, np, hidden] = x.dims();

        let x = self
            .pre_tile_positional_embedding
            .forward(x.reshape([n, t, np, hidden]), ids.clone());
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, hidden])
            .expand([n * t, 1, hidden]);
        let x = Tensor::cat(vec![cls, x.reshape([n * t, np, hidden])], 1);
        let p = self.num_patches;
        let x = self
            .gated_positional_embedding
            .forward(x.reshape([n, t, p, hidden]), ids.clone());
        let x = layer_norm(&self.layernorm_pre, PRE_POST_EPS, x);

        let pp = self.padded_num_patches;
        let x = if pp > p {
            let pad = Tensor::zeros([n, t, pp - p, hidden], &x.device());
            Tensor::cat(vec![x, pad], 2)
        } else {
            x
        };
        let mask = self.padding_mask(aspect_ratio_mask.reshape([n, t]));

        let (x, kept) = self.transformer.forward(
            x.reshape([n, t * pp, hidden]),
            Some(mask.clone()),
            &self.intermediate_layers_indices,
        );
        let x = layer_norm(&self.layernorm_post, PRE_POST_EPS, x);
        let x = self
            .post_tile_positional_embedding
            .forward(x.reshape([n, t, pp, hidden]), ids);
        let (x, _) =
            self.global_transformer
                .forward(x.reshape([n, t * pp, hidden]), Some(mask), &[]);
        let x = x
            .reshape([n, t, pp, hidden])
            .slice([0..n, 0..t, 0..p, 0..hidden]);

        let k = kept.len();
        let inter = Tensor::cat(
            kept.into_iter().map(|h| h.unsqueeze_dim::<4>(3)).collect(),
            3,
        )
        .reshape([n, t, pp, hidden * k])
        .slice([0..n, 0..t, 0..p, 0..hidden * k]);
        Tensor::cat(vec![x, inter], 3).reshape([b, m, t, p, hidden * (k + 1)])
    }

    /// # Shapes
    /// - tile_mask: `[images, tiles]`, 1 for real tiles
    /// - output: `[images, 1, tiles * padded_patches, tiles * padded_patches]`
    fn padding_mask(&self, tile_mask: Tensor<B, 2, Int>) -> Tensor<B, 4, Bool> {
        let [n, t] = tile_mask.dims();
        let pp = self.padded_num_patches;
        let device = tile_mask.device();
        let real_patch: Vec<bool> = (0..pp).map(|i| i < self.num_patches).collect();
        let real_patch =
            Tensor::<B, 1, Bool>::from_data(TensorData::new(real_patch, [pp]), &device)
                .reshape([1, 1, pp])
                .expand([n, t, pp]);
        let real_tile = tile_mask
            .equal_elem(1)
            .reshape([n, t, 1])
            .expand([n, t, pp]);
        let pad = real_tile
            .bool_and(real_patch)
            .bool_not()
            .reshape([n, t * pp]);
        let l = t * pp;
        let rows = pad.clone().reshape([n, l, 1]).expand([n, l, l]);
        let cols = pad.reshape([n, 1, l]).expand([n, l, l]);
        rows.bool_and(cols).reshape([n, 1, l, l])
    }
}

/// A patch embedding (a convolution whose stride is its kernel, without bias) as one matmul
/// over the tiles' patches laid out as rows. The same function; burn 0.21's direct
/// convolution took 296 ms for 64 tiles of 560 px on an H100 (session 15's profile), a matmul
/// of 0.15 TFLOP.
///
/// # Shapes
/// - tiles: `[tiles, channels, tile_px, tile_px]`
/// - output: `[tiles, patches, hidden]`, patches row-major over the tile's grid
fn patchify<B: Backend>(conv: &Conv2d<B>, tiles: Tensor<B, 4>) -> Tensor<B, 3> {
    let weight = conv.weight.val();
    let [hidden, c, ph, pw] = weight.dims();
    let [nt, _, hp, wp] = tiles.dims();
    let (gh, gw) = (hp / ph, wp / pw);
    // A convolution without padding drops the pixels past the last whole patch.
    let tiles = if (gh * ph, gw * pw) == (hp, wp) {
        tiles
    } else {
        tiles.slice([0..nt, 0..c, 0..gh * ph, 0..gw * pw])
    };
    tiles
        .reshape([nt, c, gh, ph, gw, pw])
        .permute([0, 2, 4, 1, 3, 5])
        .reshape([nt * gh * gw, c * ph * pw])
        .matmul(weight.reshape([hidden, c * ph * pw]).transpose())
        .reshape([nt, gh * gw, hidden])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    type B = burn::backend::NdArray<f32>;

    #[test]
    fn patchify_is_the_strided_convolution() {
        let device = Default::default();
        let conv = Conv2dConfig::new([3, 5], [3, 3])
            .with_stride([3, 3])
            .with_bias(false)
            .init::<B>(&device);
        // 9 x 9 divides into whole patches; 8 x 7 leaves pixels the convolution drops.
        for (h, w) in [(9, 9), (8, 7)] {
            let tiles =
                Tensor::<B, 4>::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
            let reference = conv.forward(tiles.clone());
            let [_, hidden, gh, gw] = reference.dims();
            let reference = reference.reshape([2, hidden, gh * gw]).swap_dims(1, 2);
            let out = patchify(&conv, tiles);
            assert_eq!(out.dims(), [2, gh * gw, hidden]);
            let diff = (out - reference).abs().max().into_scalar();
            assert!(diff <= 1e-5, "({h}, {w}): max abs diff {diff}");
        }
    }
}
