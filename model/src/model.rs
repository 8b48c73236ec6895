//! The vision encoder and text decoder joined through the multi-modal projector
//! (`MllamaForConditionalGeneration`), plus the cross-attention mask rules of HF's processor.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::chat::cross_attention_mask;
use crate::config::MllamaConfig;
use crate::layers::{causal_mask, rope_tables};
use crate::lora::{LoraConfig, LoraLinear};
use crate::text::{CrossAttentionInputs, MllamaForCausalLM, SelfAttentionInputs};
use crate::vision::MllamaVisionModel;

/// The whole judge model. Field names give HF's hub safetensors names
/// (`vision_model.*`, `language_model.model.*`, `language_model.lm_head.*`,
/// `multi_modal_projector.*`).
#[derive(Module, Debug)]
pub struct MllamaForConditionalGeneration<B: Backend> {
    /// Image encoder.
    pub vision_model: MllamaVisionModel<B>,
    /// Text decoder.
    pub language_model: MllamaForCausalLM<B>,
    /// `vision_output_dim -> text hidden`, with bias.
    pub multi_modal_projector: LoraLinear<B>,
    config: MllamaConfig,
    /// The LoRA adapters' settings once [`crate::lora::attach`] or [`crate::lora::load_adapter`]
    /// gave the model adapters; `None` for a plain model.
    pub(crate) lora: Option<LoraConfig>,
    /// A pretraining aid, never part of a checkpoint: a linear classifier from each vision
    /// token's features (`vision_output_dim`) to a per-patch label, trained alongside the
    /// language loss so the vision tower learns what the labels name (shapes) directly
    /// instead of only through the cross-attention. See [`Self::with_patch_probe`].
    pub patch_probe: Option<Linear<B>>,
}

/// Preprocessed images, laid out as `preprocess` produces them.
#[derive(Debug, Clone)]
pub struct ImageInputs<B: Backend> {
    /// `[batch, images, max_num_tiles, channels, tile_px, tile_px]`, normalised.
    pub pixel_values: Tensor<B, 6>,
    /// `[batch, images]`, 1-based index into `supported_aspect_ratios` (0 = padding image).
    pub aspect_ratio_ids: Tensor<B, 2, Int>,
    /// `[batch, images, max_num_tiles]`, 1 for real tiles.
    pub aspect_ratio_mask: Tensor<B, 3, Int>,
}

impl<B: Backend> ImageInputs<B> {
    /// Uploads host arrays (row-major, as `preprocess` stacks them).
    ///
    /// # Shapes
    /// - pixel_values: `[batch, images, max_num_tiles, channels, tile_px, tile_px]`
    /// - aspect_ratio_ids: `[batch, images]`
    /// - aspect_ratio_mask: `[batch, images, max_num_tiles]`
    pub fn from_host(
        pixel_values: Vec<f32>,
        pixel_shape: [usize; 6],
        aspect_ratio_ids: Vec<i64>,
        aspect_ratio_mask: Vec<i64>,
        device: &B::Device,
    ) -> Self {
        let [b, m, t, ..] = pixel_shape;
        Self {
            pixel_values: Tensor::from_data(TensorData::new(pixel_values, pixel_shape), device),
            aspect_ratio_ids: Tensor::from_data(TensorData::new(aspect_ratio_ids, [b, m]), device),
            aspect_ratio_mask: Tensor::from_data(
                TensorData::new(aspect_ratio_mask, [b, m, t]),
                device,
            ),
        }
    }

    /// Real tiles per image, row-major `[batch * images]` (a host read of the mask).
    pub fn tiles_per_image(&self) -> Vec<usize> {
        let [_, _, t] = self.aspect_ratio_mask.dims();
        let mask: Vec<i64> = self.aspect_ratio_mask.to_data().iter::<i64>().collect();
        mask.chunks(t)
            .map(|tiles| tiles.iter().filter(|&&v| v > 0).count())
            .collect()
    }
}

/// Where padding goes when token rows of different lengths share a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pads before the tokens (generation).
    Left,
    /// Pads after the tokens (training, scoring).
    Right,
}

/// Cross-attention masks `[rows, seq, images, max_num_tiles]` for token rows padded to `seq`,
/// from each row's `<|image|>` positions and its images' real tiles (HF's processor rule,
/// [`crate::chat::cross_attention_mask`]); padding positions see nothing.
pub fn cross_attention_mask_tensor<B: Backend>(
    config: &MllamaConfig,
    rows: &[Vec<u32>],
    padding: Padding,
    seq: usize,
    images: &ImageInputs<B>,
) -> Tensor<B, 4, Int> {
    let [b, m, t] = images.aspect_ratio_mask.dims();
    assert_eq!(rows.len(), b, "one token row per image row");
    let tiles = images.tiles_per_image();
    let image_token = config.image_token_index as u32;
    let mut all = vec![0i64; b * seq * m * t];
    for (r, row) in rows.iter().enumerate() {
        let mask = cross_attention_mask(row, image_token, &tiles[r * m..(r + 1) * m], t);
        let offset = match padding {
            Padding::Left => seq - row.len(),
            Padding::Right => 0,
        };
        let start = (r * seq + offset) * m * t;
        for (dst, &v) in all[start..start + mask.len()].iter_mut().zip(&mask) {
            *dst = v as i64;
        }
    }
    Tensor::from_data(
        TensorData::new(all, [b, seq, m, t]),
        &images.aspect_ratio_ids.device(),
    )
}

impl MllamaConfig {
    /// Builds a randomly initialised model (cross-attention gates at 0, as in HF).
    pub fn init<B: Backend>(&self, device: &B::Device) -> MllamaForConditionalGeneration<B> {
        MllamaForConditionalGeneration {
            vision_model: self.vision_config.init(device),
            language_model: self.text_config.init(device),
            multi_modal_projector: LinearConfig::new(
                self.vision_config.vision_output_dim,
                self.text_config.hidden_size,
            )
            .init(device)
            .into(),
            config: self.clone(),
            lora: None,
            patch_probe: None,
        }
    }
}

impl<B: Backend> MllamaForConditionalGeneration<B> {
    /// Sets every cross-attention gate (attention and MLP) to `value`.
    ///
    /// mllama initialises the gates at 0 so that adding vision leaves a pretrained text model
    /// unchanged. Trained from scratch, a closed gate also blocks all gradient to the
    /// cross-attention weights while the gate itself only sees their noise, so the model stays
    /// blind for hundreds of steps (measured on the world: it never learned to use the image).
    /// Pretraining from scratch therefore opens them.
    pub fn with_cross_attention_gates(mut self, value: f32) -> Self {
        let device = self.multi_modal_projector.base.weight.device();
        for layer in self.language_model.model.layers.iter_mut() {
            if let crate::text::DecoderLayer::CrossAttention(l) = layer {
                l.cross_attn_attn_gate =
                    burn::module::Param::from_tensor(Tensor::from_floats([value], &device));
                l.cross_attn_mlp_gate =
                    burn::module::Param::from_tensor(Tensor::from_floats([value], &device));
            }
        }
        self
    }

    /// Adds a freshly initialised patch probe with `classes` outputs (see the field's doc).
    pub fn with_patch_probe(mut self, classes: usize) -> Self {
        let device = self.multi_modal_projector.base.weight.device();
        self.patch_probe = Some(
            LinearConfig::new(self.config.vision_config.vision_output_dim, classes).init(&device),
        );
        self
    }

    /// The model without its patch probe: what checkpoints hold.
    pub fn without_patch_probe(mut self) -> Self {
        self.patch_probe = None;
        self
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &MllamaConfig {
        &self.config
    }

    /// The LoRA settings of the model's adapters; `None` for a model without adapters.
    pub fn lora_config(&self) -> Option<&LoraConfig> {
        self.lora.as_ref()
    }

    /// Encodes images into the vision tokens the decoder cross-attends to.
    ///
    /// # Shapes
    /// - images: see [`ImageInputs`]
    /// - output: `[batch, images * max_num_tiles * num_patches, text_hidden]`
    pub fn encode_images(&self, images: &ImageInputs<B>) -> Tensor<B, 3> {
        self.multi_modal_projector
            .forward(self.vision_features(images))
    }

    /// The vision tower's output, one row per vision token, before the projector.
    ///
    /// # Shapes
    /// - images: see [`ImageInputs`]
    /// - output: `[batch, images * max_num_tiles * num_patches, vision_output_dim]`
    fn vision_features(&self, images: &ImageInputs<B>) -> Tensor<B, 3> {
        let features = self.vision_model.forward(
            images.pixel_values.clone(),
            images.aspect_ratio_ids.clone(),
            images.aspect_ratio_mask.clone(),
        );
        let [b, m, t, p, d] = features.dims();
        features.reshape([b, m * t * p, d])
    }

    /// Turns a per-tile cross-attention mask into per-vision-token masks (HF's
    /// `_prepare_cross_attention_mask`).
    ///
    /// # Shapes
    /// - cross_attention_mask: `[batch, seq, images, max_num_tiles]`, 1 = token sees tile
    /// - states: `[batch, images * max_num_tiles * num_patches, hidden]`
    pub fn cross_inputs(
        &self,
        states: Option<Tensor<B, 3>>,
        cross_attention_mask: Tensor<B, 4, Int>,
    ) -> CrossAttentionInputs<B> {
        let [b, s, m, t] = cross_attention_mask.dims();
        let p = self.config.vision_config.num_patches();
        let k = m * t * p;
        let visible = cross_attention_mask.clone().greater_elem(0);
        let visible = visible
            .reshape([b, s, m, t, 1])
            .expand([b, s, m, t, p])
            .reshape([b, s, k]);
        let sees_any = cross_attention_mask
            .sum_dim(3)
            .sum_dim(2)
            .greater_elem(0)
            .reshape([b, s, 1]);
        let mask = visible
            .bool_not()
            .bool_and(sees_any.clone().expand([b, s, k]))
            .reshape([b, 1, s, k]);
        CrossAttentionInputs {
            states,
            mask,
            row_keep: sees_any.float(),
        }
    }

    /// Final hidden states for right-padded (or unpadded) sequences: positions `0..seq` in every
    /// row, causal attention. Pads after a row's end cannot influence its real tokens.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]`
    /// - cross_attention_mask: `[batch, seq, images, max_num_tiles]` (required with images)
    /// - output: `[batch, seq, hidden]`
    pub fn forward_hidden(
        &self,
        input_ids: Tensor<B, 2, Int>,
        images: Option<&ImageInputs<B>>,
        cross_attention_mask: Option<Tensor<B, 4, Int>>,
    ) -> Tensor<B, 3> {
        let states = images.map(|images| self.encode_images(images));
        self.hidden_from_states(input_ids, states, cross_attention_mask)
    }

    /// [`Self::forward_hidden`] from already encoded images (`states`, as
    /// [`Self::encode_images`] returns them).
    fn hidden_from_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        states: Option<Tensor<B, 3>>,
        cross_attention_mask: Option<Tensor<B, 4, Int>>,
    ) -> Tensor<B, 3> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let positions: Vec<i64> = (0..b).flat_map(|_| 0..s as i64).collect();
        let (cos, sin) = rope_tables(self.language_model.inv_freq(), &positions, b, s, &device);
        let self_inputs = SelfAttentionInputs {
            cos,
            sin,
            mask: Some(causal_mask(None, b, s, 0, &device)),
        };
        let cross = match (states, cross_attention_mask) {
            (Some(states), Some(mask)) => Some(self.cross_inputs(Some(states), mask)),
            (None, _) => None,
            (Some(_), None) => panic!("images given without a cross_attention_mask"),
        };
        self.language_model
            .hidden_states(input_ids, &self_inputs, cross.as_ref(), None)
    }

    /// Next-token logits and the patch probe's logits, from one pass of the vision tower.
    ///
    /// # Panics
    /// Without a patch probe ([`Self::with_patch_probe`]).
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]`
    /// - cross_attention_mask: `[batch, seq, images, max_num_tiles]`
    /// - output: (`[batch, seq, vocab]`, `[batch, images * max_num_tiles * num_patches, classes]`);
    ///   a tile's first vision token is its class token, then its patches row-major
    pub fn forward_with_patch_probe(
        &self,
        input_ids: Tensor<B, 2, Int>,
        images: &ImageInputs<B>,
        cross_attention_mask: Tensor<B, 4, Int>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let probe = self
            .patch_probe
            .as_ref()
            .expect("forward_with_patch_probe needs a patch probe");
        let features = self.vision_features(images);
        let probe_logits = probe.forward(features.clone());
        let states = self.multi_modal_projector.forward(features);
        let hidden = self.hidden_from_states(input_ids, Some(states), Some(cross_attention_mask));
        (self.language_model.logits(hidden), probe_logits)
    }

    /// Next-token logits for right-padded sequences.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]`
    /// - cross_attention_mask: `[batch, seq, images, max_num_tiles]` (required with images)
    /// - output: `[batch, seq, vocab]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        images: Option<&ImageInputs<B>>,
        cross_attention_mask: Option<Tensor<B, 4, Int>>,
    ) -> Tensor<B, 3> {
        let hidden = self.forward_hidden(input_ids, images, cross_attention_mask);
        self.language_model.logits(hidden)
    }
}
