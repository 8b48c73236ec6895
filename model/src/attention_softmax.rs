//! The materialised attention's softmax (scale, mask, softmax in f32, back to the scores' type)
//! as one autodiff node, with burn-cubecl kernels on CUDA.
//!
//! Contract: [`score_softmax`] computes what [`crate::layers::attention`] computes between its
//! two matmuls: `softmax(scale * scores, with MASK_VALUE where the mask forbids)` over the last
//! dimension, in f32, returned in the scores' type; a row the mask forbids entirely is uniform.
//! It runs only where [`fused`] says so: on burn's CUDA backend (`Autodiff<CudaBackend>`: one
//! node, `vendor/burn-cubecl/src/kernel/attention/score_softmax.rs`, one launch forward and one
//! backward; `CudaBackend`: the forward launch), unless `JUDGEFLOW_SCORE_SOFTMAX=burn`. Every
//! other backend keeps `attention`'s composite: CPU results do not change.
//!
//! Why: the composite is a cast, a scaling, a mask fill, burn's five-launch softmax and a cast
//! back, and about as many launches backward: ~20 a call, 14 calls a `tiny` training step
//! (issue 10).
//!
//! The node keeps the scores and each row's log-sum-exp; its backward pass recomputes the f32
//! probabilities from them. Off CUDA, the node's arithmetic runs as burn tensor operations
//! ([`score_softmax_node`]), which the CPU tests compare against the composite.
// Off CUDA nothing routes to the node: only the tests run it.
#![cfg_attr(not(feature = "cuda"), allow(dead_code))]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::{BoolTensor, FloatTensor};

use crate::fused::{NodeTensor, Route, Switch, prim, tensor};
#[cfg(feature = "cuda")]
use crate::fused::{is_cuda, same};
use crate::layers::MASK_VALUE;

/// The environment variable that turns the kernels off on CUDA: `burn` keeps the composite.
pub const SCORE_SOFTMAX_VAR: &str = "JUDGEFLOW_SCORE_SOFTMAX";

/// `SCORE_SOFTMAX_VAR`, read once.
static SWITCH: Switch = Switch::new(SCORE_SOFTMAX_VAR);

/// Whether [`score_softmax`] runs on `B` (else the caller keeps its composite).
pub fn fused<B: Backend>() -> bool {
    SWITCH.route::<B>() != Route::Composite
}

/// The attention probabilities of `scores`: see the module's contract. Only where
/// [`fused`]`::<B>()`.
///
/// # Shapes
/// - scores: `[batch, heads, q_len, kv_len]`
/// - mask: broadcastable to the scores (`[batch or 1, heads or 1, q_len, kv_len]`), `true`
///   where attention is forbidden
/// - output: like scores
pub fn score_softmax<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (scores, mask, scale);
        unreachable!("only CUDA builds have the attention softmax's kernels")
    }
    #[cfg(feature = "cuda")]
    cuda_score_softmax(scores, mask, scale)
}

#[cfg(feature = "cuda")]
fn cuda_score_softmax<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
    scale: f64,
) -> Tensor<B, 4> {
    let scores = prim(scores);
    let mask = mask.map(|m| m.into_primitive());
    let out: FloatTensor<B> = match SWITCH.route::<B>() {
        Route::CudaNode => same(score_softmax_node::<crate::backend::CudaBackend>(
            same(scores),
            mask.map(same),
            scale,
        )),
        Route::CudaForward => {
            type I = crate::backend::CudaBackend;
            same(inner_forward::<I>(same(scores), mask.map(same), scale).0)
        }
        Route::Composite => {
            panic!("score_softmax on a backend without its kernels: ask `fused` first")
        }
    };
    tensor(out)
}

/// The softmax as one node of `Autodiff<I>` (parent: the scores). On CUDA the kernels, on any
/// other `I` their arithmetic as tensor operations (the CPU tests').
pub(crate) fn score_softmax_node<I: Backend>(
    scores: NodeTensor<I>,
    mask: Option<BoolTensor<I>>,
    scale: f64,
) -> NodeTensor<I> {
    let node = [scores.node.clone()];
    let backward = ScoreSoftmaxBackward { scale };
    match backward
        .prepare::<NoCheckpointing>(node)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (probs, lse) = inner_forward::<I>(scores.primitive.clone(), mask.clone(), scale);
            prep.finish((scores.primitive, mask, lse), probs)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(inner_forward::<I>(scores.primitive, mask, scale).0)
        }
    }
}

#[derive(Debug)]
struct ScoreSoftmaxBackward {
    scale: f64,
}

impl<I: Backend> Backward<I, 1> for ScoreSoftmaxBackward {
    /// The scores, the mask, each row's log-sum-exp.
    type State = (FloatTensor<I>, Option<BoolTensor<I>>, FloatTensor<I>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dprobs = grads.consume::<I>(&ops.node);
        let Some(parent) = parent else { return };
        let (scores, mask, lse) = ops.state;
        let dscores = inner_backward::<I>(scores, mask, lse, dprobs, self.scale);
        grads.register::<I>(parent.id, dscores);
    }
}

fn inner_forward<I: Backend>(
    scores: FloatTensor<I>,
    mask: Option<BoolTensor<I>>,
    scale: f64,
) -> (FloatTensor<I>, FloatTensor<I>) {
    #[cfg(feature = "cuda")]
    if is_cuda::<I>() {
        use burn_cubecl::kernel::attention::score_softmax::score_softmax_forward;
        let (probs, lse) = score_softmax_forward::<cubecl_cuda::CudaRuntime>(
            same(scores),
            mask.map(same),
            scale as f32,
            MASK_VALUE,
        );
        return (same(probs), same(lse));
    }
    let v = scaled::<I>(scores.clone(), mask, scale);
    let dtype = tensor::<I, 4>(scores).dtype();
    let [b, h, s, _] = v.dims();
    let max = v.clone().max_dim(3);
    let e = (v - max.clone()).exp();
    let sum = e.clone().sum_dim(3);
    let probs = (e / sum.clone()).cast(dtype);
    let lse = (max + sum.log()).reshape([b * h * s]);
    (prim(probs), prim(lse))
}

fn inner_backward<I: Backend>(
    scores: FloatTensor<I>,
    mask: Option<BoolTensor<I>>,
    lse: FloatTensor<I>,
    dprobs: FloatTensor<I>,
    scale: f64,
) -> FloatTensor<I> {
    #[cfg(feature = "cuda")]
    if is_cuda::<I>() {
        use burn_cubecl::kernel::attention::score_softmax::score_softmax_backward;
        let dscores = score_softmax_backward::<cubecl_cuda::CudaRuntime>(
            same(scores),
            mask.map(same),
            &same(lse),
            same(dprobs),
            scale as f32,
            MASK_VALUE,
        );
        return same(dscores);
    }
    let dtype = tensor::<I, 4>(scores.clone()).dtype();
    let v = scaled::<I>(scores, mask.clone(), scale);
    let [b, h, s, t] = v.dims();
    let p = (v - tensor::<I, 1>(lse).reshape([b, h, s, 1])).exp();
    let dp = tensor::<I, 4>(dprobs).cast(DType::F32);
    let dot = (p.clone() * dp.clone()).sum_dim(3);
    let g = p * (dp - dot) * scale;
    let g = match mask {
        Some(m) => g.mask_fill(
            Tensor::<I, 4, Bool>::from_primitive(m).expand([b, h, s, t]),
            0.0,
        ),
        None => g,
    };
    prim(g.cast(dtype))
}

/// `scale * scores` in f32, `MASK_VALUE` where the mask forbids.
fn scaled<I: Backend>(
    scores: FloatTensor<I>,
    mask: Option<BoolTensor<I>>,
    scale: f64,
) -> Tensor<I, 4> {
    let v = tensor::<I, 4>(scores).cast(DType::F32) * scale;
    let dims = v.dims();
    match mask {
        Some(m) => v.mask_fill(
            Tensor::<I, 4, Bool>::from_primitive(m).expand(dims),
            MASK_VALUE,
        ),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use burn::backend::Autodiff;
    use burn::tensor::TensorPrimitive;
    use burn::tensor::{Distribution, Tolerance};

    type A = Autodiff<CpuBackend>;

    /// The node (its arithmetic as tensor operations) against the materialised attention's
    /// composite through autodiff: the probabilities and the scores' gradient, with a mask
    /// broadcast over the heads that forbids whole rows in one batch row and part of others.
    #[test]
    fn the_score_softmax_node_is_the_composite_with_its_gradient() {
        let device = Default::default();
        let (b, h, s, t) = (2, 3, 4, 5);
        let scores = Tensor::<A, 4>::random([b, h, s, t], Distribution::Normal(0.0, 3.0), &device)
            .require_grad();
        let w = Tensor::<A, 4>::random([b, h, s, t], Distribution::Normal(0.0, 1.0), &device);
        // Batch row 0: causal; batch row 1: query 2 forbidden everything.
        let flags: Vec<bool> = (0..b * s * t)
            .map(|i| {
                let (bi, q, k) = (i / (s * t), (i / t) % s, i % t);
                if bi == 0 { k > q } else { q == 2 || k == 4 }
            })
            .collect();
        let mask = Tensor::<A, 4, Bool>::from_data(
            burn::tensor::TensorData::new(flags, [b, 1, s, t]),
            &device,
        );
        let scale = 0.35;
        let reference = burn::tensor::activation::softmax(
            (scores.clone().cast(DType::F32) * scale)
                .mask_fill(mask.clone().expand([b, h, s, t]), MASK_VALUE),
            3,
        );
        let ours: Tensor<A, 4> =
            Tensor::from_primitive(TensorPrimitive::Float(score_softmax_node::<CpuBackend>(
                prim(scores.clone()),
                Some(mask.into_primitive()),
                scale,
            )));
        ours.clone()
            .into_data()
            .assert_approx_eq::<f32>(&reference.clone().into_data(), Tolerance::absolute(1e-6));
        let g_ref = (reference * w.clone()).sum().backward();
        let g_ours = (ours * w).sum().backward();
        let d_ref = scores.grad(&g_ref).unwrap();
        let d_ours = scores.grad(&g_ours).unwrap();
        d_ours
            .into_data()
            .assert_approx_eq::<f32>(&d_ref.into_data(), Tolerance::absolute(1e-5));
    }
}
