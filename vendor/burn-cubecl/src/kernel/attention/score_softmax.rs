//! judgeflow: attention's softmax over its score matrix as one kernel forward and one backward,
//! for training.
//!
//! judgeflow's materialised attention (model `layers.rs`) runs, between its two matmuls, a cast
//! to f32, the scaling, the mask fill, burn's softmax (maximum, shift, exponential, sum,
//! division) and a cast back: ten launches forward and about as many backward, per attention
//! call, each costing the host more than the device at `tiny`'s training shape (issue 10).
//! Here: [`score_softmax_forward`] reads the scores once and writes the probabilities once,
//! with each row's log-sum-exp (f32) for [`score_softmax_backward`], which recomputes the f32
//! probabilities from the scores and writes the scores' gradient once.
//!
//! The arithmetic is the materialised attention's, in f32: `v = scale * s`, or `fill` (not
//! scaled) where the mask forbids the key; `p = exp(v - max) / sum(exp(v - max))`, rounded once
//! to the scores' type. A row the mask forbids entirely is uniform over its keys, as there.
//! Backward, with `lse = max + ln(sum)` and `p = exp(v - lse)`: `ds = scale * p * (dp - sum(p
//! dp))`, and 0 where the mask forbids (the mask fill passes no gradient).
//!
//! One plane (32 lanes) a row, eight rows a cube. `scores` is `[b, h, s, t]` (made
//! contiguous); the mask (boolean, any integer type) broadcasts over `b` and `h` where its
//! dimension is 1 and may be an expanded view.

use crate::{
    CubeRuntime, kernel::into_contiguous, ops::numeric::empty_device_contiguous_dtype,
    tensor::CubeTensor,
};
use burn_backend::DType;
use cubecl::prelude::*;

const LANES: usize = 32;
/// Rows (planes) a cube.
const ROWS: usize = 8;

/// The offset of row `row`'s first mask entry (`row` over `[b, h, s]`).
#[cube]
fn mask_base<M: Int>(mask: &Tensor<M>, row: usize, heads: usize, s: usize) -> usize {
    let i = row % s;
    let h = (row / s) % heads;
    let b = row / (heads * s);
    let mut base = i * mask.stride(2);
    if mask.shape(0) > 1 {
        base += b * mask.stride(0);
    }
    if mask.shape(1) > 1 {
        base += h * mask.stride(1);
    }
    base
}

/// Entry `j` of the row: scaled, or `fill` where the mask forbids it.
#[cube]
fn value_at<F: Float, M: Int>(
    scores: &Tensor<F>,
    mask: &Tensor<M>,
    base: usize,
    mbase: usize,
    j: usize,
    scale: f32,
    fill: f32,
    #[comptime] masked: bool,
) -> f32 {
    let mut v = f32::cast_from(scores[base + j]) * scale;
    if masked {
        if bool::cast_from(mask[mbase + j * mask.stride(3)]) {
            v = fill;
        }
    }
    v
}

#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn score_softmax_forward_kernel<F: Float, M: Int>(
    scores: &Tensor<F>,
    mask: &Tensor<M>,
    probs: &mut Tensor<F>,
    lse: &mut Tensor<f32>,
    rows: u32,
    heads: u32,
    s: u32,
    t: u32,
    scale: f32,
    fill: f32,
    #[comptime] masked: bool,
    #[comptime] lanes: usize,
    #[comptime] rows_a_cube: usize,
    #[define(F, M)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS_X as usize * rows_a_cube + UNIT_POS_Y as usize;
    if row >= rows as usize {
        terminate!();
    }
    let width = t as usize;
    let base = row * width;
    let mut mbase = 0usize;
    if masked {
        mbase = mask_base::<M>(mask, row, heads as usize, s as usize);
    }
    let mut max = f32::new(-3.0e38);
    let mut j = UNIT_POS_X as usize;
    while j < width {
        let v = value_at::<F, M>(scores, mask, base, mbase, j, scale, fill, masked);
        if v > max {
            max = v;
        }
        j += lanes;
    }
    let max = plane_max(max);
    let mut sum = 0.0f32;
    let mut k = UNIT_POS_X as usize;
    while k < width {
        sum += (value_at::<F, M>(scores, mask, base, mbase, k, scale, fill, masked) - max).exp();
        k += lanes;
    }
    let sum = plane_sum(sum);
    let inv = 1.0f32 / sum;
    let mut i = UNIT_POS_X as usize;
    while i < width {
        let e = (value_at::<F, M>(scores, mask, base, mbase, i, scale, fill, masked) - max).exp();
        probs[base + i] = F::cast_from(e * inv);
        i += lanes;
    }
    if UNIT_POS_X == 0 {
        lse[row] = max + sum.ln();
    }
}

#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn score_softmax_backward_kernel<F: Float, M: Int>(
    scores: &Tensor<F>,
    mask: &Tensor<M>,
    lse: &Tensor<f32>,
    dprobs: &Tensor<F>,
    dscores: &mut Tensor<F>,
    rows: u32,
    heads: u32,
    s: u32,
    t: u32,
    scale: f32,
    fill: f32,
    #[comptime] masked: bool,
    #[comptime] lanes: usize,
    #[comptime] rows_a_cube: usize,
    #[define(F, M)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS_X as usize * rows_a_cube + UNIT_POS_Y as usize;
    if row >= rows as usize {
        terminate!();
    }
    let width = t as usize;
    let base = row * width;
    let mut mbase = 0usize;
    if masked {
        mbase = mask_base::<M>(mask, row, heads as usize, s as usize);
    }
    let l = lse[row];
    let mut dot = 0.0f32;
    let mut j = UNIT_POS_X as usize;
    while j < width {
        let p = (value_at::<F, M>(scores, mask, base, mbase, j, scale, fill, masked) - l).exp();
        dot += p * f32::cast_from(dprobs[base + j]);
        j += lanes;
    }
    let dot = plane_sum(dot);
    let mut i = UNIT_POS_X as usize;
    while i < width {
        let p = (value_at::<F, M>(scores, mask, base, mbase, i, scale, fill, masked) - l).exp();
        let mut g = scale * p * (f32::cast_from(dprobs[base + i]) - dot);
        if masked {
            if bool::cast_from(mask[mbase + i * mask.stride(3)]) {
                g = 0.0f32;
            }
        }
        dscores[base + i] = F::cast_from(g);
        i += lanes;
    }
}

fn dims4<R: CubeRuntime>(t: &CubeTensor<R>) -> [usize; 4] {
    let shape = t.meta.shape();
    assert_eq!(shape.num_dims(), 4, "scores as [b, h, s, t]");
    [shape[0], shape[1], shape[2], shape[3]]
}

fn check_mask<R: CubeRuntime>(mask: &CubeTensor<R>, [b, h, s, t]: [usize; 4]) {
    let m = dims4(mask);
    assert!(
        (m[0] == 1 || m[0] == b) && (m[1] == 1 || m[1] == h) && m[2] == s && m[3] == t,
        "mask {m:?} does not broadcast to the scores' [{b}, {h}, {s}, {t}]"
    );
}

/// The attention probabilities of `scores` (`[b, h, s, t]`, any layout) scaled by `scale`,
/// with `fill` where `mask` (broadcast to the scores; `true` = forbidden) forbids: the
/// probabilities (contiguous, the scores' type) and each row's log-sum-exp (f32, `[b h s]`).
pub fn score_softmax_forward<R: CubeRuntime>(
    scores: CubeTensor<R>,
    mask: Option<CubeTensor<R>>,
    scale: f32,
    fill: f32,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let scores = into_contiguous(scores);
    let dims = dims4(&scores);
    let [b, h, s, t] = dims;
    let rows = b * h * s;
    assert!(
        rows * t < u32::MAX as usize,
        "more scores than the kernels count"
    );
    if let Some(m) = &mask {
        check_mask(m, dims);
    }
    let client = scores.client.clone();
    let device = scores.device.clone();
    let dtype = scores.dtype;
    let probs = empty_device_contiguous_dtype(client.clone(), device.clone(), dims.into(), dtype);
    let lse =
        empty_device_contiguous_dtype(client.clone(), device, [rows.max(1)].into(), DType::F32);
    if rows == 0 || t == 0 {
        return (probs, lse);
    }
    let masked = mask.is_some();
    // Without a mask the kernel's mask argument is the scores, never read.
    let mask = mask.unwrap_or_else(|| scores.clone());
    let mask_dtype = mask.dtype;
    unsafe {
        score_softmax_forward_kernel::launch_unchecked::<R>(
            &client,
            CubeCount::Static(rows.div_ceil(ROWS) as u32, 1, 1),
            CubeDim::new_2d(LANES as u32, ROWS as u32),
            scores.into_tensor_arg(),
            mask.into_tensor_arg(),
            probs.clone().into_tensor_arg(),
            lse.clone().into_tensor_arg(),
            rows as u32,
            h as u32,
            s as u32,
            t as u32,
            scale,
            fill,
            masked,
            LANES,
            ROWS,
            [dtype.into(), mask_int_type(mask_dtype).into()],
        );
    }
    (probs, lse)
}

/// The scores' gradient from the probabilities' gradient `dprobs` (`[b, h, s, t]`, any
/// layout), the forward pass's `scores`, `mask`, `scale`, `fill` and log-sum-exp: contiguous,
/// the scores' type.
pub fn score_softmax_backward<R: CubeRuntime>(
    scores: CubeTensor<R>,
    mask: Option<CubeTensor<R>>,
    lse: &CubeTensor<R>,
    dprobs: CubeTensor<R>,
    scale: f32,
    fill: f32,
) -> CubeTensor<R> {
    let scores = into_contiguous(scores);
    let dprobs = into_contiguous(dprobs);
    let dims = dims4(&scores);
    assert_eq!(
        dims4(&dprobs),
        dims,
        "the probabilities' gradient has the scores' shape"
    );
    let [b, h, s, t] = dims;
    let rows = b * h * s;
    let client = scores.client.clone();
    let device = scores.device.clone();
    let dtype = scores.dtype;
    let dscores = empty_device_contiguous_dtype(client.clone(), device, dims.into(), dtype);
    if rows == 0 || t == 0 {
        return dscores;
    }
    let masked = mask.is_some();
    let mask = mask.unwrap_or_else(|| scores.clone());
    let mask_dtype = mask.dtype;
    unsafe {
        score_softmax_backward_kernel::launch_unchecked::<R>(
            &client,
            CubeCount::Static(rows.div_ceil(ROWS) as u32, 1, 1),
            CubeDim::new_2d(LANES as u32, ROWS as u32),
            scores.into_tensor_arg(),
            mask.into_tensor_arg(),
            lse.clone().into_tensor_arg(),
            dprobs.into_tensor_arg(),
            dscores.clone().into_tensor_arg(),
            rows as u32,
            h as u32,
            s as u32,
            t as u32,
            scale,
            fill,
            masked,
            LANES,
            ROWS,
            [dtype.into(), mask_int_type(mask_dtype).into()],
        );
    }
    dscores
}

/// The integer type the kernels read a mask as: its own for a boolean or integer mask; for the
/// unread stand-in (the scores, when there is no mask) any integer of its width.
fn mask_int_type(dtype: DType) -> DType {
    match dtype {
        DType::F32 => DType::U32,
        DType::F16 | DType::BF16 => DType::U16,
        DType::F64 => DType::U64,
        other => other,
    }
}
