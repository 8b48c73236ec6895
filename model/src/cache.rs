//! Key/value cache for decoding: self-attention K/V live in buffers preallocated for the whole
//! generation (written in place at the current length), cross-attention K/V are computed once
//! from the image and reused for every step.
//!
//! Two views of the buffers: [`KvView::Written`] hands attention the keys written so far (its
//! length grows by one each step), [`KvView::Full`] always hands it the whole buffer, so that
//! every decode step has the same shapes and a backend that compiles kernels per shape (CUDA)
//! compiles them once; the caller then masks the unwritten slots (see `decode_static`).

use burn::prelude::*;

use crate::config::MllamaTextConfig;

/// Cache of one decoder layer.
#[derive(Debug, Clone)]
pub enum LayerKv<B: Backend> {
    /// Self-attention buffers `[batch, kv_heads, capacity, head_dim]`.
    SelfAttention {
        /// Keys (RoPE applied).
        k: Tensor<B, 4>,
        /// Values.
        v: Tensor<B, 4>,
    },
    /// Cross-attention K/V `[batch, kv_heads, vision_tokens, head_dim]`, once computed.
    CrossAttention(Option<(Tensor<B, 4>, Tensor<B, 4>)>),
}

impl<B: Backend> LayerKv<B> {
    /// Writes `k`/`v` for positions `past..past + seq` and returns the K/V of positions
    /// `0..past + seq`.
    ///
    /// # Shapes
    /// - k, v: `[batch, kv_heads, seq, head_dim]`
    /// - output: two `[batch, kv_heads, past + seq, head_dim]`
    pub fn append_self(
        &mut self,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        past: usize,
        view: KvView,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        // Take the buffers out so that `slice_assign` holds the only handle and can write in
        // place; with a second handle alive it would copy the whole buffer on every step.
        let LayerKv::SelfAttention { k: kc, v: vc } =
            std::mem::replace(self, LayerKv::CrossAttention(None))
        else {
            panic!("self-attention cache requested from a cross-attention layer");
        };
        let [b, h, s, d] = k.dims();
        let capacity = kc.dims()[2];
        assert!(
            past + s <= capacity,
            "KV cache overflow: {} tokens into a cache of {capacity}",
            past + s
        );
        let kc = kc.slice_assign([0..b, 0..h, past..past + s, 0..d], k);
        let vc = vc.slice_assign([0..b, 0..h, past..past + s, 0..d], v);
        let seen = match view {
            KvView::Written => (
                kc.clone().slice([0..b, 0..h, 0..past + s, 0..d]),
                vc.clone().slice([0..b, 0..h, 0..past + s, 0..d]),
            ),
            KvView::Full => (kc.clone(), vc.clone()),
        };
        *self = LayerKv::SelfAttention { k: kc, v: vc };
        seen
    }

    /// The cached cross-attention K/V, if computed.
    pub fn cross_kv(&self) -> Option<(Tensor<B, 4>, Tensor<B, 4>)> {
        match self {
            LayerKv::CrossAttention(kv) => kv.clone(),
            LayerKv::SelfAttention { .. } => None,
        }
    }

    /// Stores the cross-attention K/V.
    pub fn set_cross(&mut self, k: Tensor<B, 4>, v: Tensor<B, 4>) {
        *self = LayerKv::CrossAttention(Some((k, v)));
    }
}

/// Which keys self-attention sees through the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvView {
    /// Positions `0..len` (shapes grow with every step).
    Written,
    /// All `capacity` slots (fixed shapes; unwritten slots must be masked by the caller).
    Full,
}

/// The cache of a whole decoder for one batch.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerKv<B>>,
    len: usize,
    capacity: usize,
    view: KvView,
}

impl<B: Backend> KvCache<B> {
    /// Allocates zeroed buffers for `capacity` tokens per row.
    pub fn new(
        config: &MllamaTextConfig,
        batch: usize,
        capacity: usize,
        device: &B::Device,
    ) -> Self {
        let shape = [
            batch,
            config.num_key_value_heads,
            capacity,
            config.head_dim(),
        ];
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                if config.is_cross_attention_layer(i) {
                    LayerKv::CrossAttention(None)
                } else {
                    LayerKv::SelfAttention {
                        k: Tensor::zeros(shape, device),
                        v: Tensor::zeros(shape, device),
                    }
                }
            })
            .collect();
        Self {
            layers,
            len: 0,
            capacity,
            view: KvView::Written,
        }
    }

    /// The same buffers seen through `view`.
    pub fn with_view(mut self, view: KvView) -> Self {
        self.view = view;
        self
    }

    /// How attention sees the buffers.
    pub fn view(&self) -> KvView {
        self.view
    }

    /// Tokens written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tokens the buffers can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The cache of layer `index`.
    pub fn layer_mut(&mut self, index: usize) -> &mut LayerKv<B> {
        &mut self.layers[index]
    }

    /// Marks `seq` more tokens as written (called once per forward, after all layers).
    pub fn advance(&mut self, seq: usize) {
        self.len += seq;
    }
}
