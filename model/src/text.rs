//! The Llama text decoder with gated cross-attention layers (`language_model`). Field names
//! follow HF's `MllamaForCausalLM` so parameters map 1:1 onto `language_model.*` names.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::cache::{KvCache, KvView, LayerKv};
use crate::config::{MllamaTextConfig, rope_inv_freq};
use crate::layers::{
    AttentionKernel, apply_rope, attention_decoding, contiguous, merge_heads, split_heads,
};
use crate::lora::LoraLinear;
use crate::norms::rms_norm;

/// SwiGLU MLP (`mlp`).
#[derive(Module, Debug)]
pub struct TextMlp<B: Backend> {
    /// Gate projection.
    pub gate_proj: LoraLinear<B>,
    /// Up projection.
    pub up_proj: LoraLinear<B>,
    /// Down projection.
    pub down_proj: LoraLinear<B>,
}

impl<B: Backend> TextMlp<B> {
    fn new(c: &MllamaTextConfig, device: &B::Device) -> Self {
        let lin = |i, o| LoraLinear::from(LinearConfig::new(i, o).with_bias(false).init(device));
        Self {
            gate_proj: lin(c.hidden_size, c.intermediate_size),
            up_proj: lin(c.hidden_size, c.intermediate_size),
            down_proj: lin(c.intermediate_size, c.hidden_size),
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.down_proj
            .forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}

/// Rotary grouped-query self-attention (`self_attn`).
#[derive(Module, Debug)]
pub struct TextSelfAttention<B: Backend> {
    /// Query projection.
    pub q_proj: LoraLinear<B>,
    /// Key projection.
    pub k_proj: LoraLinear<B>,
    /// Value projection.
    pub v_proj: LoraLinear<B>,
    /// Output projection.
    pub o_proj: LoraLinear<B>,
    heads: usize,
    kv_heads: usize,
}

/// Query-side inputs shared by every self-attention layer of one forward pass.
#[derive(Debug, Clone)]
pub struct SelfAttentionInputs<B: Backend> {
    /// RoPE cosines `[batch, 1, seq, head_dim]`.
    pub cos: Tensor<B, 4>,
    /// RoPE sines `[batch, 1, seq, head_dim]`.
    pub sin: Tensor<B, 4>,
    /// `[batch, 1, seq, past + seq]`, `true` = forbidden (causal and padding); `None` only
    /// when every key may be seen (one query token and no padding).
    pub mask: Option<Tensor<B, 4, Bool>>,
}

/// Everything cross-attention layers need for one forward pass.
#[derive(Debug, Clone)]
pub struct CrossAttentionInputs<B: Backend> {
    /// Projected vision tokens `[batch, vision_tokens, hidden]`; `None` when the cache already
    /// holds the cross-attention K/V.
    pub states: Option<Tensor<B, 3>>,
    /// `[batch, 1, seq, vision_tokens]`, `true` = forbidden. Rows that see no tile are left
    /// unmasked, as HF does, and zeroed after the MLP through `row_keep`.
    pub mask: Tensor<B, 4, Bool>,
    /// HF's `full_text_row_masked_out_mask`: `[batch, seq, 1]`, 1 where the token sees a tile.
    pub row_keep: Tensor<B, 3>,
}

impl<B: Backend> TextSelfAttention<B> {
    fn new(c: &MllamaTextConfig, device: &B::Device) -> Self {
        let lin = |i, o| LoraLinear::from(LinearConfig::new(i, o).with_bias(false).init(device));
        let hd = c.head_dim();
        Self {
            q_proj: lin(c.hidden_size, c.num_attention_heads * hd),
            k_proj: lin(c.hidden_size, c.num_key_value_heads * hd),
            v_proj: lin(c.hidden_size, c.num_key_value_heads * hd),
            o_proj: lin(c.num_attention_heads * hd, c.hidden_size),
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
        }
    }

    /// With a cache, the new K/V are written at the cache's current length and attention runs
    /// over everything written so far (the cache length is advanced by the caller).
    ///
    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        inputs: &SelfAttentionInputs<B>,
        cache: Option<(&mut LayerKv<B>, usize, KvView)>,
    ) -> Tensor<B, 3> {
        let q = split_heads(self.q_proj.forward(x.clone()), self.heads);
        let k = split_heads(self.k_proj.forward(x.clone()), self.kv_heads);
        let v = split_heads(self.v_proj.forward(x), self.kv_heads);
        let q = apply_rope(q, inputs.cos.clone(), inputs.sin.clone());
        let k = apply_rope(k, inputs.cos.clone(), inputs.sin.clone());
        let (k, v) = match cache {
            Some((layer, past, view)) => layer.append_self(k, v, past, view),
            None => (k, v),
        };
        self.o_proj.forward(merge_heads(attention_decoding(
            q,
            k,
            v,
            inputs.mask.clone(),
            AttentionKernel::from_env(),
        )))
    }
}

/// Cross-attention to vision tokens with per-head RMSNorm on queries and keys (`cross_attn`).
#[derive(Module, Debug)]
pub struct TextCrossAttention<B: Backend> {
    /// Query projection.
    pub q_proj: LoraLinear<B>,
    /// Key projection.
    pub k_proj: LoraLinear<B>,
    /// Value projection.
    pub v_proj: LoraLinear<B>,
    /// Output projection.
    pub o_proj: LoraLinear<B>,
    /// Per-head query norm.
    pub q_norm: RmsNorm<B>,
    /// Per-head key norm.
    pub k_norm: RmsNorm<B>,
    heads: usize,
    kv_heads: usize,
}

impl<B: Backend> TextCrossAttention<B> {
    fn new(c: &MllamaTextConfig, device: &B::Device) -> Self {
        let lin = |i, o| LoraLinear::from(LinearConfig::new(i, o).with_bias(false).init(device));
        let hd = c.head_dim();
        let norm = || {
            RmsNormConfig::new(hd)
                .with_epsilon(c.rms_norm_eps)
                .init(device)
        };
        Self {
            q_proj: lin(c.hidden_size, c.num_attention_heads * hd),
            k_proj: lin(c.hidden_size, c.num_key_value_heads * hd),
            v_proj: lin(c.hidden_size, c.num_key_value_heads * hd),
            o_proj: lin(c.num_attention_heads * hd, c.hidden_size),
            q_norm: norm(),
            k_norm: norm(),
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
        }
    }

    /// Keys and values of the vision tokens; computed once per image and cached for decoding.
    ///
    /// # Shapes
    /// - states: `[batch, vision_tokens, hidden]`
    /// - output: two `[batch, kv_heads, vision_tokens, head_dim]`
    pub fn project_kv(&self, states: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let k = rms_norm(
            &self.k_norm,
            split_heads(self.k_proj.forward(states.clone()), self.kv_heads),
        );
        let v = split_heads(self.v_proj.forward(states), self.kv_heads);
        (k, v)
    }

    /// # Shapes
    /// - x: `[batch, seq, hidden]`
    /// - k, v: `[batch, kv_heads, vision_tokens, head_dim]`
    /// - mask: `[batch, 1, seq, vision_tokens]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        mask: Tensor<B, 4, Bool>,
    ) -> Tensor<B, 3> {
        let q = rms_norm(
            &self.q_norm,
            split_heads(self.q_proj.forward(x), self.heads),
        );
        self.o_proj.forward(merge_heads(attention_decoding(
            q,
            k,
            v,
            Some(mask),
            AttentionKernel::from_env(),
        )))
    }
}

/// A Llama decoder layer.
#[derive(Module, Debug)]
pub struct SelfAttentionDecoderLayer<B: Backend> {
    /// Attention.
    pub self_attn: TextSelfAttention<B>,
    /// MLP.
    pub mlp: TextMlp<B>,
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
}

/// A gated cross-attention decoder layer; both gates start at 0 so a fresh layer is the
/// identity and a pretrained text model is undisturbed.
#[derive(Module, Debug)]
pub struct CrossAttentionDecoderLayer<B: Backend> {
    /// Attention to vision tokens.
    pub cross_attn: TextCrossAttention<B>,
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// `tanh` gate on the attention branch.
    pub cross_attn_attn_gate: Param<Tensor<B, 1>>,
    /// MLP.
    pub mlp: TextMlp<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
    /// `tanh` gate on the MLP branch.
    pub cross_attn_mlp_gate: Param<Tensor<B, 1>>,
}

/// One entry of `layers`: HF numbers self- and cross-attention layers in one list.
// The variants differ by a few norms and gates; boxing them would buy nothing for a list built
// once, and burn's Module derive does not see through Box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum DecoderLayer<B: Backend> {
    /// Self-attention layer.
    SelfAttention(SelfAttentionDecoderLayer<B>),
    /// Cross-attention layer.
    CrossAttention(CrossAttentionDecoderLayer<B>),
}

/// Embedding, decoder layers and final norm (`language_model.model`).
#[derive(Module, Debug)]
pub struct MllamaTextModel<B: Backend> {
    /// `[vocab + 8, hidden]`.
    pub embed_tokens: Embedding<B>,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final norm.
    pub norm: RmsNorm<B>,
}

/// The decoder with its output head (`language_model`).
#[derive(Module, Debug)]
pub struct MllamaForCausalLM<B: Backend> {
    /// Decoder.
    pub model: MllamaTextModel<B>,
    /// `[hidden, vocab]` (no rows for the 8 extra embedding ids).
    pub lm_head: LoraLinear<B>,
    inv_freq: Vec<f64>,
}

impl MllamaTextConfig {
    /// Builds a randomly initialised decoder.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MllamaForCausalLM<B> {
        let norm = || {
            RmsNormConfig::new(self.hidden_size)
                .with_epsilon(self.rms_norm_eps)
                .init(device)
        };
        let layers = (0..self.num_hidden_layers)
            .map(|i| {
                if self.is_cross_attention_layer(i) {
                    DecoderLayer::CrossAttention(CrossAttentionDecoderLayer {
                        cross_attn: TextCrossAttention::new(self, device),
                        input_layernorm: norm(),
                        cross_attn_attn_gate: Initializer::Zeros.init([1], device),
                        mlp: TextMlp::new(self, device),
                        post_attention_layernorm: norm(),
                        cross_attn_mlp_gate: Initializer::Zeros.init([1], device),
                    })
                } else {
                    DecoderLayer::SelfAttention(SelfAttentionDecoderLayer {
                        self_attn: TextSelfAttention::new(self, device),
                        mlp: TextMlp::new(self, device),
                        input_layernorm: norm(),
                        post_attention_layernorm: norm(),
                    })
                }
            })
            .collect();
        MllamaForCausalLM {
            model: MllamaTextModel {
                embed_tokens: EmbeddingConfig::new(self.embedding_rows(), self.hidden_size)
                    .with_initializer(Initializer::Normal {
                        mean: 0.0,
                        std: 0.02,
                    })
                    .init(device),
                layers,
                norm: norm(),
            },
            lm_head: LinearConfig::new(self.hidden_size, self.vocab_size)
                .with_bias(false)
                .init(device)
                .into(),
            inv_freq: rope_inv_freq(self),
        }
    }
}

impl<B: Backend> MllamaForCausalLM<B> {
    /// RoPE inverse frequencies (host side, see [`crate::layers::rope_tables`]).
    pub fn inv_freq(&self) -> &[f64] {
        &self.inv_freq
    }

    /// Runs the decoder and returns final-norm hidden states. Cross-attention layers are
    /// skipped when there is neither `cross.states` nor cached cross K/V (text-only input), as
    /// in HF. With a cache, new self-attention K/V are appended after `cache.len()` tokens and
    /// the cache length is advanced by `seq`.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        self_inputs: &SelfAttentionInputs<B>,
        cross: Option<&CrossAttentionInputs<B>>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let seq = input_ids.dims()[1];
        let past = cache.as_ref().map_or(0, |c| c.len());
        let view = cache.as_ref().map_or(KvView::Written, |c| c.view());
        let mut x = self.model.embed_tokens.forward(input_ids);
        for (i, layer) in self.model.layers.iter().enumerate() {
            let layer_cache = cache.as_mut().map(|c| c.layer_mut(i));
            x = match layer {
                DecoderLayer::SelfAttention(l) => {
                    let h = l.self_attn.forward(
                        rms_norm(&l.input_layernorm, x.clone()),
                        self_inputs,
                        layer_cache.map(|c| (c, past, view)),
                    );
                    let x = x + h;
                    x.clone() + l.mlp.forward(rms_norm(&l.post_attention_layernorm, x))
                }
                DecoderLayer::CrossAttention(l) => {
                    let Some(cross) = cross else { continue };
                    let cached = layer_cache.as_ref().and_then(|c| c.cross_kv());
                    let (k, v) = match (cached, cross.states.as_ref()) {
                        (Some(kv), _) => kv,
                        (None, Some(states)) => {
                            let kv = l.cross_attn.project_kv(states.clone());
                            match layer_cache {
                                // Decoding reads them at every step: laid out once, here.
                                Some(c) => {
                                    let kv = (contiguous(kv.0), contiguous(kv.1));
                                    c.set_cross(kv.0.clone(), kv.1.clone());
                                    kv
                                }
                                None => kv,
                            }
                        }
                        (None, None) => continue,
                    };
                    let h = l.cross_attn.forward(
                        rms_norm(&l.input_layernorm, x.clone()),
                        k,
                        v,
                        cross.mask.clone(),
                    );
                    let x = x + h * l.cross_attn_attn_gate.val().tanh().reshape([1, 1, 1]);
                    let h = l
                        .mlp
                        .forward(rms_norm(&l.post_attention_layernorm, x.clone()));
                    let h = h * cross.row_keep.clone();
                    x + h * l.cross_attn_mlp_gate.val().tanh().reshape([1, 1, 1])
                }
            };
        }
        if let Some(c) = cache {
            c.advance(seq);
        }
        rms_norm(&self.model.norm, x)
    }

    /// Output logits for hidden states.
    ///
    /// # Shapes
    /// - hidden: `[batch, seq, hidden]`
    /// - output: `[batch, seq, vocab]`
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        self.lm_head.forward(hidden)
    }
}
