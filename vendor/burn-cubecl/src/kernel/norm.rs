//! judgeflow: RMSNorm and LayerNorm over a row, forward and backward, as one node's kernels.
//!
//! burn 0.21 runs both norms as composites of tensor operations: RMSNorm (`burn-nn`'s
//! `RmsNorm::forward`) is eight launches forward and about twice that backward, LayerNorm
//! (`ModuleOps::layer_norm`'s default) about eleven forward and twenty backward. A `tiny`
//! training step has 21 RMSNorms and 14 LayerNorms: ~1,000 of its ~3,000 forward and backward
//! launches, each costing the host more than the device (issue 10, notes/gpu.md). Here a norm
//! is one kernel forward ([`norm_forward`]: a cube a row) and three backward
//! ([`norm_backward`]: a cube a row for the input's gradient; partial sums over chunks of rows
//! for the scale's and shift's gradients, then their sum).
//!
//! The arithmetic, in f32 whatever the tensors' type, with `centered` for LayerNorm:
//! `mean = centered ? sum(x) / d : 0`, `rstd = 1 / sqrt(sum((x - mean)^2) / d + eps)`,
//! `xhat = (x - mean) rstd`, `y = xhat gamma (+ beta)`, rounded once to the tensors' type.
//! Backward, with `g = dy gamma`: `dx = rstd (g - (centered ? mean(g) : 0) - xhat mean(g
//! xhat))`, `dgamma = sum over rows of dy xhat`, `dbeta = sum over rows of dy`. The means and
//! reciprocal deviations are kept (f32, one a row) for the backward pass.
//!
//! Rows are the last dimension of a contiguous `[rows, d]` tensor (inputs are made contiguous
//! first); `gamma` and `beta` are `[d]`.

use crate::{
    CubeRuntime,
    kernel::{attention::rows::cube_reduce, into_contiguous},
    ops::numeric::empty_device_contiguous_dtype,
    tensor::CubeTensor,
};
use burn_backend::DType;
use cubecl::prelude::*;

/// Threads a row's cube; CUDA's planes are 32 lanes.
const THREADS: usize = 128;
const LANES: usize = 32;

/// Threads (columns) a cube of the parameter gradients' partial sums.
const COLUMNS: usize = 128;

/// Rows a partial sum of the parameter gradients covers.
const CHUNK: usize = 32;

/// The forward pass of one row a cube.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn norm_forward_kernel<F: Float>(
    x: &Tensor<F>,
    gamma: &Tensor<F>,
    beta: &Tensor<F>,
    y: &mut Tensor<F>,
    mean_out: &mut Tensor<f32>,
    rstd_out: &mut Tensor<f32>,
    d: u32,
    eps: f32,
    #[comptime] centered: bool,
    #[comptime] has_beta: bool,
    #[comptime] threads: usize,
    #[comptime] lanes: usize,
    #[define(F)] _dtype: StorageType,
) {
    let row = CUBE_POS_X as usize;
    let width = d as usize;
    let base = row * width;
    let count = f32::cast_from(d);
    let mut mean = 0.0f32;
    if centered {
        let mut sum = 0.0f32;
        let mut j = UNIT_POS as usize;
        while j < width {
            sum += f32::cast_from(x[base + j]);
            j += threads;
        }
        mean = cube_reduce(sum, false, threads, lanes) / count;
    }
    let mut squares = 0.0f32;
    let mut k = UNIT_POS as usize;
    while k < width {
        let c = f32::cast_from(x[base + k]) - mean;
        squares += c * c;
        k += threads;
    }
    let rstd = 1.0f32 / (cube_reduce(squares, false, threads, lanes) / count + eps).sqrt();
    let mut i = UNIT_POS as usize;
    while i < width {
        let mut v = (f32::cast_from(x[base + i]) - mean) * rstd * f32::cast_from(gamma[i]);
        if has_beta {
            v += f32::cast_from(beta[i]);
        }
        y[base + i] = F::cast_from(v);
        i += threads;
    }
    if UNIT_POS == 0 {
        if centered {
            mean_out[row] = mean;
        }
        rstd_out[row] = rstd;
    }
}

/// The input's gradient, one row a cube.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn norm_backward_rows_kernel<F: Float>(
    dy: &Tensor<F>,
    x: &Tensor<F>,
    gamma: &Tensor<F>,
    mean_in: &Tensor<f32>,
    rstd_in: &Tensor<f32>,
    dx: &mut Tensor<F>,
    d: u32,
    #[comptime] centered: bool,
    #[comptime] threads: usize,
    #[comptime] lanes: usize,
    #[define(F)] _dtype: StorageType,
) {
    let row = CUBE_POS_X as usize;
    let width = d as usize;
    let base = row * width;
    let count = f32::cast_from(d);
    let rstd = rstd_in[row];
    let mut mean = 0.0f32;
    if centered {
        mean = mean_in[row];
    }
    let mut sum_g = 0.0f32;
    let mut sum_gx = 0.0f32;
    let mut j = UNIT_POS as usize;
    while j < width {
        let g = f32::cast_from(dy[base + j]) * f32::cast_from(gamma[j]);
        let xhat = (f32::cast_from(x[base + j]) - mean) * rstd;
        sum_g += g;
        sum_gx += g * xhat;
        j += threads;
    }
    let mut mean_g = 0.0f32;
    if centered {
        mean_g = cube_reduce(sum_g, false, threads, lanes) / count;
    }
    let mean_gx = cube_reduce(sum_gx, false, threads, lanes) / count;
    let mut i = UNIT_POS as usize;
    while i < width {
        let g = f32::cast_from(dy[base + i]) * f32::cast_from(gamma[i]);
        let xhat = (f32::cast_from(x[base + i]) - mean) * rstd;
        dx[base + i] = F::cast_from(rstd * (g - mean_g - xhat * mean_gx));
        i += threads;
    }
}

/// Partial sums of the parameters' gradients: column `j` of chunk `c` (cube `(j / COLUMNS,
/// c)`) over rows `c * CHUNK ..`.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn norm_backward_partials_kernel<F: Float>(
    dy: &Tensor<F>,
    x: &Tensor<F>,
    mean_in: &Tensor<f32>,
    rstd_in: &Tensor<f32>,
    partial_gamma: &mut Tensor<f32>,
    partial_beta: &mut Tensor<f32>,
    rows: u32,
    d: u32,
    #[comptime] centered: bool,
    #[comptime] has_beta: bool,
    #[comptime] columns: usize,
    #[comptime] chunk: usize,
    #[define(F)] _dtype: StorageType,
) {
    let width = d as usize;
    let j = CUBE_POS_X as usize * columns + UNIT_POS as usize;
    if j >= width {
        terminate!();
    }
    let c = CUBE_POS_Y as usize;
    let first = c * chunk;
    let mut last = first + chunk;
    if last > rows as usize {
        last = rows as usize;
    }
    let mut sum_gamma = 0.0f32;
    let mut sum_beta = 0.0f32;
    let mut r = first;
    while r < last {
        let mut mean = 0.0f32;
        if centered {
            mean = mean_in[r];
        }
        let g = f32::cast_from(dy[r * width + j]);
        sum_gamma += g * (f32::cast_from(x[r * width + j]) - mean) * rstd_in[r];
        if has_beta {
            sum_beta += g;
        }
        r += 1;
    }
    partial_gamma[c * width + j] = sum_gamma;
    if has_beta {
        partial_beta[c * width + j] = sum_beta;
    }
}

/// The parameters' gradients: column `j`'s partial sums added, rounded to the type.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn norm_backward_sums_kernel<F: Float>(
    partial_gamma: &Tensor<f32>,
    partial_beta: &Tensor<f32>,
    dgamma: &mut Tensor<F>,
    dbeta: &mut Tensor<F>,
    chunks: u32,
    d: u32,
    #[comptime] has_beta: bool,
    #[define(F)] _dtype: StorageType,
) {
    let j = ABSOLUTE_POS;
    let width = d as usize;
    if j >= width {
        terminate!();
    }
    let mut sum_gamma = 0.0f32;
    let mut sum_beta = 0.0f32;
    let mut c = 0usize;
    while c < chunks as usize {
        sum_gamma += partial_gamma[c * width + j];
        if has_beta {
            sum_beta += partial_beta[c * width + j];
        }
        c += 1;
    }
    dgamma[j] = F::cast_from(sum_gamma);
    if has_beta {
        dbeta[j] = F::cast_from(sum_beta);
    }
}

/// What [`norm_forward`] keeps for [`norm_backward`]: per row, the mean (`None` for RMSNorm)
/// and `1 / sqrt(variance + eps)`, f32 `[rows]`.
#[derive(Clone, Debug)]
pub struct NormStats<R: CubeRuntime> {
    /// Row means, LayerNorm only.
    pub mean: Option<CubeTensor<R>>,
    /// Row reciprocal standard deviations.
    pub rstd: CubeTensor<R>,
}

fn rows_and_width<R: CubeRuntime>(x: &CubeTensor<R>) -> (usize, usize) {
    let shape = x.meta.shape();
    assert_eq!(shape.num_dims(), 2, "a norm's input as [rows, d]");
    let (rows, d) = (shape[0], shape[1]);
    assert!(
        rows * d < u32::MAX as usize,
        "more elements than the kernels count"
    );
    (rows, d)
}

/// RMSNorm (`centered` false, `beta` None) or LayerNorm (`centered` true) of each row of `x`
/// (`[rows, d]`, any layout: made contiguous), scaled by `gamma` (`[d]`) and shifted by `beta`:
/// `y` (contiguous, `x`'s type) and the statistics [`norm_backward`] needs.
pub fn norm_forward<R: CubeRuntime>(
    x: CubeTensor<R>,
    gamma: CubeTensor<R>,
    beta: Option<CubeTensor<R>>,
    eps: f64,
    centered: bool,
) -> (CubeTensor<R>, NormStats<R>) {
    let x = into_contiguous(x);
    let gamma = into_contiguous(gamma);
    let beta = beta.map(into_contiguous);
    let (rows, d) = rows_and_width(&x);
    assert_eq!(gamma.meta.shape().num_elements(), d, "gamma has d elements");
    let client = x.client.clone();
    let device = x.device.clone();
    let dtype = x.dtype;
    let y = empty_device_contiguous_dtype(client.clone(), device.clone(), [rows, d].into(), dtype);
    let stat = || {
        empty_device_contiguous_dtype(
            client.clone(),
            device.clone(),
            [rows.max(1)].into(),
            DType::F32,
        )
    };
    let rstd = stat();
    let mean = centered.then(stat);
    let has_beta = beta.is_some();
    if rows > 0 {
        unsafe {
            norm_forward_kernel::launch_unchecked::<R>(
                &client,
                CubeCount::Static(rows as u32, 1, 1),
                CubeDim::new_1d(THREADS as u32),
                x.into_tensor_arg(),
                gamma.clone().into_tensor_arg(),
                beta.unwrap_or(gamma).into_tensor_arg(),
                y.clone().into_tensor_arg(),
                mean.clone()
                    .unwrap_or_else(|| rstd.clone())
                    .into_tensor_arg(),
                rstd.clone().into_tensor_arg(),
                d as u32,
                eps as f32,
                centered,
                has_beta,
                THREADS,
                LANES,
                dtype.into(),
            );
        }
    }
    (y, NormStats { mean, rstd })
}

/// The gradients of [`norm_forward`]'s input and, where `params`, of `gamma` and (`has_beta`)
/// `beta`, from the output's gradient `dy` (`[rows, d]`, any layout) and the forward pass's
/// `x`, `gamma` and statistics. All in `x`'s type, contiguous.
pub fn norm_backward<R: CubeRuntime>(
    dy: CubeTensor<R>,
    x: CubeTensor<R>,
    gamma: CubeTensor<R>,
    stats: &NormStats<R>,
    has_beta: bool,
    params: bool,
) -> (CubeTensor<R>, Option<CubeTensor<R>>, Option<CubeTensor<R>>) {
    let dy = into_contiguous(dy);
    let x = into_contiguous(x);
    let gamma = into_contiguous(gamma);
    let (rows, d) = rows_and_width(&x);
    assert_eq!(dy.meta.shape(), x.meta.shape(), "dy has x's shape");
    let client = x.client.clone();
    let device = x.device.clone();
    let dtype = x.dtype;
    let centered = stats.mean.is_some();
    let mean = stats.mean.clone().unwrap_or_else(|| stats.rstd.clone());
    let dx = empty_device_contiguous_dtype(client.clone(), device.clone(), [rows, d].into(), dtype);
    if rows > 0 {
        unsafe {
            norm_backward_rows_kernel::launch_unchecked::<R>(
                &client,
                CubeCount::Static(rows as u32, 1, 1),
                CubeDim::new_1d(THREADS as u32),
                dy.clone().into_tensor_arg(),
                x.clone().into_tensor_arg(),
                gamma.into_tensor_arg(),
                mean.clone().into_tensor_arg(),
                stats.rstd.clone().into_tensor_arg(),
                dx.clone().into_tensor_arg(),
                d as u32,
                centered,
                THREADS,
                LANES,
                dtype.into(),
            );
        }
    }
    if !params {
        return (dx, None, None);
    }
    let chunks = rows.div_ceil(CHUNK).max(1);
    let partial = || {
        empty_device_contiguous_dtype(
            client.clone(),
            device.clone(),
            [chunks, d].into(),
            DType::F32,
        )
    };
    let partial_gamma = partial();
    let partial_beta = if has_beta {
        partial()
    } else {
        partial_gamma.clone()
    };
    let out = || empty_device_contiguous_dtype(client.clone(), device.clone(), [d].into(), dtype);
    let dgamma = out();
    let dbeta = if has_beta { out() } else { dgamma.clone() };
    if rows == 0 {
        // No rows: nothing to sum; the partial sums are never read.
        let zeros = crate::ops::numeric::zeros_client(client.clone(), device, [d].into(), dtype);
        return (dx, Some(zeros.clone()), has_beta.then_some(zeros));
    }
    unsafe {
        norm_backward_partials_kernel::launch_unchecked::<R>(
            &client,
            CubeCount::Static(d.div_ceil(COLUMNS) as u32, chunks as u32, 1),
            CubeDim::new_1d(COLUMNS as u32),
            dy.into_tensor_arg(),
            x.into_tensor_arg(),
            mean.into_tensor_arg(),
            stats.rstd.clone().into_tensor_arg(),
            partial_gamma.clone().into_tensor_arg(),
            partial_beta.clone().into_tensor_arg(),
            rows as u32,
            d as u32,
            centered,
            has_beta,
            COLUMNS,
            CHUNK,
            dtype.into(),
        );
        norm_backward_sums_kernel::launch_unchecked::<R>(
            &client,
            CubeCount::Static(d.div_ceil(COLUMNS) as u32, 1, 1),
            CubeDim::new_1d(COLUMNS as u32),
            partial_gamma.into_tensor_arg(),
            partial_beta.into_tensor_arg(),
            dgamma.clone().into_tensor_arg(),
            dbeta.clone().into_tensor_arg(),
            chunks as u32,
            d as u32,
            has_beta,
            dtype.into(),
        );
    }
    (dx, Some(dgamma), has_beta.then_some(dbeta))
}
