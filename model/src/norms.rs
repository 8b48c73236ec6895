//! RMSNorm and LayerNorm as one autodiff node each, with burn-cubecl kernels on CUDA.
//!
//! Contract: [`rms_norm`] and [`layer_norm`] compute what `burn::nn::RmsNorm::forward` and
//! `burn::nn::LayerNorm::forward` compute, over the last dimension, with the same parameters.
//! On burn's CUDA backend (`Autodiff<CudaBackend>` in training, `CudaBackend` in inference) they
//! run judgeflow's kernels (`vendor/burn-cubecl/src/kernel/norm.rs`: one launch forward, three
//! backward), with f32 arithmetic and one rounding of each result to the tensors' type, where
//! burn's composites round after every operation; `JUDGEFLOW_NORM=burn` runs burn's instead.
//! Every other backend (the CPU) runs burn's composites: CPU results do not change.
//!
//! Why: burn 0.21's RMSNorm is eight launches forward and about sixteen backward, its LayerNorm
//! about eleven and twenty; a `tiny` training step has 21 RMSNorms and 14 LayerNorms, a third of
//! its launches, and each launch costs the host more than the device (issue 10, notes/gpu.md).
//!
//! The node's backward pass is generic over the inner backend: on CUDA the kernels, elsewhere
//! the same arithmetic as burn tensor operations, which is what the CPU
//! tests compare against burn's composites ([`norm_node`]).
// Off CUDA nothing routes to the node: only the tests run it.
#![cfg_attr(not(feature = "cuda"), allow(dead_code))]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::nn::{LayerNorm, RmsNorm};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape};

use crate::fused::{NodeTensor, Route, Switch, prim, tensor};
#[cfg(feature = "cuda")]
use crate::fused::{is_cuda, same};

/// The environment variable that turns the kernels off on CUDA: `burn` runs burn's composites;
/// unset or `fused` the kernels.
pub const NORM_VAR: &str = "JUDGEFLOW_NORM";

/// RMSNorm of `x` over its last dimension with `norm`'s scale and epsilon.
///
/// # Shapes
/// - x: `[..., d]`
/// - output: like x
pub fn rms_norm<B: Backend, const D: usize>(norm: &RmsNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    match SWITCH.route::<B>() {
        Route::Composite => norm.forward(x),
        route => fused(route, x, norm.gamma.val(), None, norm.epsilon, false),
    }
}

/// LayerNorm of `x` over its last dimension with `norm`'s scale and shift and epsilon `eps`,
/// which must be `norm`'s (burn keeps a `LayerNorm`'s epsilon private; burn's composite, where it
/// runs, uses its own).
///
/// # Shapes
/// - x: `[..., d]`
/// - output: like x
pub fn layer_norm<B: Backend, const D: usize>(
    norm: &LayerNorm<B>,
    eps: f64,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    match SWITCH.route::<B>() {
        Route::Composite => norm.forward(x),
        route => fused(
            route,
            x,
            norm.gamma.val(),
            norm.beta.as_ref().map(|b| b.val()),
            eps,
            true,
        ),
    }
}

/// `NORM_VAR`, read once.
static SWITCH: Switch = Switch::new(NORM_VAR);

fn fused<B: Backend, const D: usize>(
    route: Route,
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Option<Tensor<B, 1>>,
    eps: f64,
    centered: bool,
) -> Tensor<B, D> {
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (route, x, gamma, beta, eps, centered);
        unreachable!("only CUDA builds route a norm to its kernels")
    }
    #[cfg(feature = "cuda")]
    {
        type I = crate::backend::CudaBackend;
        let (x, gamma, beta) = (prim(x), prim(gamma), beta.map(prim));
        let out: FloatTensor<B> = match route {
            Route::CudaNode => same(norm_node::<I>(
                same(x),
                same(gamma),
                beta.map(same),
                eps,
                centered,
            )),
            Route::CudaForward => {
                let (y, _) =
                    inner_forward::<I>(same(x), same(gamma), beta.map(same), eps, centered);
                same(y)
            }
            Route::Composite => unreachable!("the composite route does not come here"),
        };
        tensor(out)
    }
}

/// Per row of the forward pass: the mean (LayerNorm) and `1 / sqrt(var + eps)`, f32 `[rows]`.
#[derive(Debug, Clone)]
struct Stats<I: Backend> {
    mean: Option<FloatTensor<I>>,
    rstd: FloatTensor<I>,
}

/// The norm as one node of `Autodiff<I>`: parents `x`, `gamma` and `beta` where there is one.
/// On CUDA the kernels; on any other `I` the same arithmetic as tensor operations (what the CPU
/// tests run).
pub(crate) fn norm_node<I: Backend>(
    x: NodeTensor<I>,
    gamma: NodeTensor<I>,
    beta: Option<NodeTensor<I>>,
    eps: f64,
    centered: bool,
) -> NodeTensor<I> {
    let (nx, ng) = (x.node.clone(), gamma.node.clone());
    let (x, gamma) = (x.primitive, gamma.primitive);
    match beta {
        Some(beta) => {
            let nodes = [nx, ng, beta.node.clone()];
            let ops = NormBackward.prepare(nodes).compute_bound().stateful();
            record::<I, 3>(ops, x, gamma, Some(beta.primitive), eps, centered)
        }
        None => {
            let ops = NormBackward.prepare([nx, ng]).compute_bound().stateful();
            record::<I, 2>(ops, x, gamma, None, eps, centered)
        }
    }
}

/// Runs the forward pass and records it under `ops` (with what the backward pass keeps where
/// the node is tracked); `N` is 2 or 3 parents (`beta` or not).
fn record<I: Backend, const N: usize>(
    ops: OpsKind<NormBackward, I, Saved<I>, NoCheckpointing, N>,
    x: FloatTensor<I>,
    gamma: FloatTensor<I>,
    beta: Option<FloatTensor<I>>,
    eps: f64,
    centered: bool,
) -> NodeTensor<I> {
    let has_beta = beta.is_some();
    match ops {
        OpsKind::Tracked(prep) => {
            let (y, stats) = inner_forward::<I>(x.clone(), gamma.clone(), beta, eps, centered);
            let saved = Saved {
                x,
                gamma,
                stats,
                has_beta,
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(inner_forward::<I>(x, gamma, beta, eps, centered).0)
        }
    }
}

/// What the node keeps for its backward pass: the forward pass's input, scale and statistics.
#[derive(Debug, Clone)]
struct Saved<I: Backend> {
    x: FloatTensor<I>,
    gamma: FloatTensor<I>,
    stats: Stats<I>,
    has_beta: bool,
}

/// The gradients of the input, the scale (where asked) and the shift (where there is one).
type Grads<I> = (
    FloatTensor<I>,
    Option<FloatTensor<I>>,
    Option<FloatTensor<I>>,
);

/// The node's backward pass; parents `[x, gamma]` or `[x, gamma, beta]`.
#[derive(Debug)]
struct NormBackward;

impl<I: Backend, const N: usize> Backward<I, N> for NormBackward {
    type State = Saved<I>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let parents = ops.parents;
        let dy = grads.consume::<I>(&ops.node);
        let params = parents[1..].iter().any(Option::is_some);
        let (dx, dgamma, dbeta) = inner_backward::<I>(dy, ops.state, params);
        let grads_of = [Some(dx), dgamma, dbeta];
        for (parent, grad) in parents.into_iter().zip(grads_of) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<I>(node.id, grad);
            }
        }
    }
}

/// `x`'s leading dimensions folded: `[rows, d]`.
fn as_rows<I: Backend>(x: FloatTensor<I>) -> (FloatTensor<I>, Shape) {
    use burn::tensor::TensorMetadata;
    let shape = x.shape();
    let d = shape[shape.num_dims() - 1];
    let rows = shape.num_elements() / d.max(1);
    (I::float_reshape(x, Shape::new([rows, d])), shape)
}

fn inner_forward<I: Backend>(
    x: FloatTensor<I>,
    gamma: FloatTensor<I>,
    beta: Option<FloatTensor<I>>,
    eps: f64,
    centered: bool,
) -> (FloatTensor<I>, Stats<I>) {
    let (x, shape) = as_rows::<I>(x);
    #[cfg(feature = "cuda")]
    if is_cuda::<I>() {
        let (y, stats) = cuda::norm_forward(same(x), same(gamma), beta.map(same), eps, centered);
        let stats = Stats {
            mean: stats.mean.map(same),
            rstd: same(stats.rstd),
        };
        return (I::float_reshape(same(y), shape), stats);
    }
    let (y, stats) = emulated_forward::<I>(x, gamma, beta, eps, centered);
    (I::float_reshape(y, shape), stats)
}

fn inner_backward<I: Backend>(dy: FloatTensor<I>, saved: Saved<I>, params: bool) -> Grads<I> {
    let Saved {
        x,
        gamma,
        stats,
        has_beta,
    } = saved;
    let (x, shape) = as_rows::<I>(x);
    let (dy, _) = as_rows::<I>(dy);
    #[cfg(feature = "cuda")]
    if is_cuda::<I>() {
        let stats = cuda::NormStats {
            mean: stats.mean.clone().map(same),
            rstd: same(stats.rstd.clone()),
        };
        let (dx, dgamma, dbeta) =
            cuda::norm_backward(same(dy), same(x), same(gamma), &stats, has_beta, params);
        return (
            I::float_reshape(same(dx), shape),
            dgamma.map(same),
            dbeta.map(same),
        );
    }
    let saved = Saved {
        x,
        gamma,
        stats,
        has_beta,
    };
    let (dx, dgamma, dbeta) = emulated_backward::<I>(dy, &saved, params);
    (I::float_reshape(dx, shape), dgamma, dbeta)
}

/// The kernels' forward arithmetic as tensor operations on `[rows, d]`.
fn emulated_forward<I: Backend>(
    x: FloatTensor<I>,
    gamma: FloatTensor<I>,
    beta: Option<FloatTensor<I>>,
    eps: f64,
    centered: bool,
) -> (FloatTensor<I>, Stats<I>) {
    let x = tensor::<I, 2>(x);
    let dtype = x.dtype();
    let [rows, _] = x.dims();
    let x = x.cast(DType::F32);
    let mean = centered.then(|| x.clone().mean_dim(1));
    let c = match &mean {
        Some(m) => x - m.clone(),
        None => x,
    };
    let rstd = (c.clone().square().mean_dim(1) + eps).sqrt().recip();
    let mut y = c * rstd.clone() * tensor::<I, 1>(gamma).cast(DType::F32).unsqueeze_dim(0);
    if let Some(beta) = beta {
        y = y + tensor::<I, 1>(beta).cast(DType::F32).unsqueeze_dim(0);
    }
    let stats = Stats {
        mean: mean.map(|m| prim(m.reshape([rows]))),
        rstd: prim(rstd.reshape([rows])),
    };
    (prim(y.cast(dtype)), stats)
}

/// The kernels' backward arithmetic as tensor operations on `[rows, d]`.
fn emulated_backward<I: Backend>(dy: FloatTensor<I>, saved: &Saved<I>, params: bool) -> Grads<I> {
    let (stats, has_beta) = (&saved.stats, saved.has_beta);
    let x = tensor::<I, 2>(saved.x.clone());
    let gamma = saved.gamma.clone();
    let dtype = x.dtype();
    let [rows, _] = x.dims();
    let dy = tensor::<I, 2>(dy).cast(DType::F32);
    let rstd = tensor::<I, 1>(stats.rstd.clone()).reshape([rows, 1]);
    let centred = match &stats.mean {
        Some(m) => x.cast(DType::F32) - tensor::<I, 1>(m.clone()).reshape([rows, 1]),
        None => x.cast(DType::F32),
    };
    let xhat = centred * rstd.clone();
    let g = dy.clone() * tensor::<I, 1>(gamma).cast(DType::F32).unsqueeze_dim(0);
    let mut inner = g.clone() - xhat.clone() * (g.clone() * xhat.clone()).mean_dim(1);
    if stats.mean.is_some() {
        inner = inner - g.mean_dim(1);
    }
    let dx = prim((inner * rstd).cast(dtype));
    if !params {
        return (dx, None, None);
    }
    let d = dy.dims()[1];
    let dgamma = prim::<I, 1>((dy.clone() * xhat).sum_dim(0).reshape([d]).cast(dtype));
    let dbeta = has_beta.then(|| prim::<I, 1>(dy.sum_dim(0).reshape([d]).cast(dtype)));
    (dx, Some(dgamma), dbeta)
}

#[cfg(feature = "cuda")]
mod cuda {
    //! burn-cubecl's norm kernels on the CUDA runtime.
    use burn_cubecl::kernel::norm::{
        NormStats as CubeStats, norm_backward as backward, norm_forward as forward,
    };
    use cubecl_cuda::CudaRuntime;

    use crate::fused::Cube;

    pub type NormStats = CubeStats<CudaRuntime>;

    pub fn norm_forward(
        x: Cube,
        gamma: Cube,
        beta: Option<Cube>,
        eps: f64,
        centered: bool,
    ) -> (Cube, NormStats) {
        forward(x, gamma, beta, eps, centered)
    }

    pub fn norm_backward(
        dy: Cube,
        x: Cube,
        gamma: Cube,
        stats: &NormStats,
        has_beta: bool,
        params: bool,
    ) -> (Cube, Option<Cube>, Option<Cube>) {
        backward(dy, x, gamma, stats, has_beta, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use burn::backend::Autodiff;
    use burn::module::Param;
    use burn::nn::{LayerNormConfig, RmsNormConfig};
    use burn::tensor::Distribution;
    use burn::tensor::TensorPrimitive;

    type A = Autodiff<CpuBackend>;

    /// The node (emulated inner arithmetic) against burn's composite through autodiff: the
    /// output and every gradient, for RMSNorm and LayerNorm, with parameters away from 1 and 0.
    fn check(centered: bool) {
        let device = Default::default();
        let d = 24;
        let x = Tensor::<A, 3>::random([2, 5, d], Distribution::Normal(0.3, 2.0), &device)
            .require_grad();
        let gamma = Tensor::<A, 1>::random([d], Distribution::Normal(1.0, 0.5), &device);
        let beta = Tensor::<A, 1>::random([d], Distribution::Normal(0.0, 0.5), &device);
        let weight = Tensor::<A, 3>::random([2, 5, d], Distribution::Normal(0.0, 1.0), &device);
        let (reference, gamma_p, beta_p) = if centered {
            let mut norm = LayerNormConfig::new(d)
                .with_epsilon(1e-5)
                .init::<A>(&device);
            norm.gamma = Param::from_tensor(gamma.clone());
            norm.beta = Some(Param::from_tensor(beta.clone()));
            let (g, b) = (norm.gamma.val(), norm.beta.as_ref().unwrap().val());
            (norm.forward(x.clone()), g, Some(b))
        } else {
            let mut norm = RmsNormConfig::new(d).with_epsilon(1e-5).init::<A>(&device);
            norm.gamma = Param::from_tensor(gamma.clone());
            let g = norm.gamma.val();
            (norm.forward(x.clone()), g, None)
        };
        let ours: Tensor<A, 3> =
            Tensor::from_primitive(TensorPrimitive::Float(norm_node::<CpuBackend>(
                prim(x.clone()),
                prim(gamma_p.clone()),
                beta_p.clone().map(prim),
                1e-5,
                centered,
            )));
        ours.clone().into_data().assert_approx_eq::<f32>(
            &reference.clone().into_data(),
            burn::tensor::Tolerance::absolute(1e-5),
        );
        let g_ref = (reference * weight.clone()).sum().backward();
        let g_ours = (ours * weight).sum().backward();
        let close = |a: Option<Tensor<CpuBackend, 3>>, b: Option<Tensor<CpuBackend, 3>>| {
            a.unwrap().into_data().assert_approx_eq::<f32>(
                &b.unwrap().into_data(),
                burn::tensor::Tolerance::absolute(1e-4),
            )
        };
        close(x.grad(&g_ours), x.grad(&g_ref));
        let close1 = |a: Option<Tensor<CpuBackend, 1>>, b: Option<Tensor<CpuBackend, 1>>| {
            a.unwrap().into_data().assert_approx_eq::<f32>(
                &b.unwrap().into_data(),
                burn::tensor::Tolerance::absolute(1e-4),
            )
        };
        close1(gamma_p.grad(&g_ours), gamma_p.grad(&g_ref));
        if let Some(b) = beta_p {
            close1(b.grad(&g_ours), b.grad(&g_ref));
        }
    }

    #[test]
    fn the_rms_norm_node_is_burns_rms_norm_with_its_gradients() {
        check(false);
    }

    #[test]
    fn the_layer_norm_node_is_burns_layer_norm_with_its_gradients() {
        check(true);
    }
}
