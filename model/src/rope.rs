//! Rotary position embeddings as one autodiff node, with burn-cubecl kernels on CUDA.
//!
//! Contract: [`rope`] computes what [`crate::layers::apply_rope`]'s composite computes,
//! `x cos + rotate_half(x) sin` (HF's "rotate half" layout), in f32 with one rounding, and runs
//! only where [`fused`] says so: burn's CUDA backend (`Autodiff<CudaBackend>`: one node,
//! `vendor/burn-cubecl/src/kernel/rope.rs`, one launch forward and one backward; `CudaBackend`:
//! the forward launch), unless `JUDGEFLOW_ROPE=burn`. Every other backend keeps the composite:
//! CPU results do not change. The tables get no gradient.
//!
//! Why: the composite is two slices, a negation, a concatenation, two products and a sum, and
//! about twice that backward: ~20 launches a call, twelve calls a `tiny` training step (issue
//! 10). Off CUDA the node's arithmetic runs as the composite ([`rope_node`]: what the CPU tests
//! compare).
// Off CUDA nothing routes to the node: only the tests run it.
#![cfg_attr(not(feature = "cuda"), allow(dead_code))]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;

use crate::fused::{NodeTensor, Route, Switch, prim, tensor};
#[cfg(feature = "cuda")]
use crate::fused::{is_cuda, same};

/// The environment variable that turns the kernels off on CUDA: `burn` keeps the composite.
pub const ROPE_VAR: &str = "JUDGEFLOW_ROPE";

/// `ROPE_VAR`, read once.
static SWITCH: Switch = Switch::new(ROPE_VAR);

/// Whether [`rope`] runs on `B` (else the caller keeps its composite).
pub fn fused<B: Backend>() -> bool {
    SWITCH.route::<B>() != Route::Composite
}

/// Rotary embeddings of `x`: see the module's contract. Only where [`fused`]`::<B>()`.
///
/// # Shapes
/// - x: `[batch, heads, seq, head_dim]` (any layout)
/// - cos, sin: `[batch or 1, 1, seq, head_dim]`
/// - output: like x (contiguous)
pub fn rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 4>, sin: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (x, cos, sin);
        unreachable!("only CUDA builds have RoPE's kernels")
    }
    #[cfg(feature = "cuda")]
    cuda_rope(x, cos, sin)
}

#[cfg(feature = "cuda")]
fn cuda_rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 4>, sin: Tensor<B, 4>) -> Tensor<B, 4> {
    // The tables are constants: their values, without a graph of their own.
    let (cos, sin) = (prim(cos.detach()), prim(sin.detach()));
    let x = prim(x);
    let out: FloatTensor<B> = match SWITCH.route::<B>() {
        Route::CudaNode => {
            type I = crate::backend::CudaBackend;
            use burn::tensor::backend::AutodiffBackend;
            let inner = |t: FloatTensor<B>| -> FloatTensor<I> {
                burn::backend::Autodiff::<I>::inner(same(t))
            };
            same(rope_node::<I>(same(x), inner(cos), inner(sin)))
        }
        Route::CudaForward => {
            type I = crate::backend::CudaBackend;
            same(inner_rope::<I>(same(x), same(cos), same(sin), false))
        }
        Route::Composite => panic!("rope on a backend without its kernels: ask `fused` first"),
    };
    tensor(out)
}

/// Rotary embeddings as one node of `Autodiff<I>` (parent: `x`; the tables are `I`'s, with no
/// gradient). On CUDA the kernels, on any other `I` the composite's operations.
pub(crate) fn rope_node<I: Backend>(
    x: NodeTensor<I>,
    cos: FloatTensor<I>,
    sin: FloatTensor<I>,
) -> NodeTensor<I> {
    match RopeBackward
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = inner_rope::<I>(x.primitive, cos.clone(), sin.clone(), false);
            prep.finish((cos, sin), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(inner_rope::<I>(x.primitive, cos, sin, false)),
    }
}

#[derive(Debug)]
struct RopeBackward;

impl<I: Backend> Backward<I, 1> for RopeBackward {
    /// The tables.
    type State = (FloatTensor<I>, FloatTensor<I>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<I>(&ops.node);
        let Some(parent) = parent else { return };
        let (cos, sin) = ops.state;
        grads.register::<I>(parent.id, inner_rope::<I>(dy, cos, sin, true));
    }
}

/// Forward (`backward` false) or the input's gradient from the output's (`backward` true).
fn inner_rope<I: Backend>(
    x: FloatTensor<I>,
    cos: FloatTensor<I>,
    sin: FloatTensor<I>,
    backward: bool,
) -> FloatTensor<I> {
    #[cfg(feature = "cuda")]
    if is_cuda::<I>() {
        use burn_cubecl::kernel::rope::{rope_backward, rope_forward};
        type R = cubecl_cuda::CudaRuntime;
        let (cos, sin) = (same(cos), same(sin));
        let out = if backward {
            rope_backward::<R>(same(x), &cos, &sin)
        } else {
            rope_forward::<R>(same(x), &cos, &sin)
        };
        return same(out);
    }
    let x = tensor::<I, 4>(x);
    let (cos, sin) = (tensor::<I, 4>(cos), tensor::<I, 4>(sin));
    let [b, h, s, d] = x.dims();
    let halves = |t: Tensor<I, 4>| {
        (
            t.clone().slice([0..b, 0..h, 0..s, 0..d / 2]),
            t.slice([0..b, 0..h, 0..s, d / 2..d]),
        )
    };
    let out = if backward {
        // rotate_half's transpose, [second, -first], of `dy sin`.
        let (first, second) = halves(x.clone() * sin);
        x * cos + Tensor::cat(vec![second, first.neg()], 3)
    } else {
        let (first, second) = halves(x.clone());
        x * cos + Tensor::cat(vec![second.neg(), first], 3) * sin
    };
    prim(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::layers::{apply_rope, rope_tables};
    use burn::backend::Autodiff;
    use burn::tensor::TensorPrimitive;
    use burn::tensor::{Distribution, Tolerance};

    type A = Autodiff<CpuBackend>;

    /// The node (the composite's operations, its own backward) against `apply_rope` through
    /// autodiff: the output and the input's gradient, tables per batch row, a permuted input.
    #[test]
    fn the_rope_node_is_apply_rope_with_its_gradient() {
        let device = Default::default();
        let (b, h, s, d) = (2, 3, 5, 8);
        // Two leaves of the same values: a backward pass consumes the graph it walks, and the
        // permutation between leaf and node would be walked twice.
        let data = Tensor::<A, 4>::random([b, s, h, d], Distribution::Normal(0.0, 1.0), &device)
            .into_data();
        let leaf = || Tensor::<A, 4>::from_data(data.clone(), &device).require_grad();
        let (x, x_ref) = (leaf(), leaf());
        let w = Tensor::<A, 4>::random([b, h, s, d], Distribution::Normal(0.0, 1.0), &device);
        let positions: Vec<i64> = (0..(b * s) as i64).map(|i| (i * 7) % 11).collect();
        let inv: Vec<f64> = (0..d / 2)
            .map(|i| 1.0 / 10_000f64.powf(2.0 * i as f64 / d as f64))
            .collect();
        let (cos, sin) = rope_tables::<A>(&inv, &positions, b, s, &device);
        let reference = apply_rope(x_ref.clone().swap_dims(1, 2), cos.clone(), sin.clone());
        let ours: Tensor<A, 4> =
            Tensor::from_primitive(TensorPrimitive::Float(rope_node::<CpuBackend>(
                prim(x.clone().swap_dims(1, 2)),
                prim(cos.inner()),
                prim(sin.inner()),
            )));
        ours.clone()
            .into_data()
            .assert_approx_eq::<f32>(&reference.clone().into_data(), Tolerance::absolute(1e-6));
        let g_ref = (reference * w.clone()).sum().backward();
        let g_ours = (ours * w).sum().backward();
        x.grad(&g_ours)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(
                &x_ref.grad(&g_ref).unwrap().into_data(),
                Tolerance::absolute(1e-5),
            );
    }
}
