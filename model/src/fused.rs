//! Where judgeflow's own CUDA kernels stand in for burn composites: which backend gets them,
//! and the downcasts between a generic backend's tensors and burn-cubecl's.
//!
//! Contract: [`Switch::route`] says how an operation with its own kernels runs on backend `B`: as one
//! autodiff node with the kernels (`B` is `Autodiff<CudaBackend>`), as the forward kernel
//! (`B` is `CudaBackend`), or as burn's composite (every other backend, the CPU included, and
//! CUDA when the operation's environment switch says `burn`). The composite is the operation's
//! definition; the kernels compute it in f32 with one rounding of each result, so CUDA results
//! move within bf16 rounding and CPU results do not move at all.
//!
//! Why: at `tiny`'s training shape a step is ~3,000 launches and the host's cost per launch,
//! not the GPU, sets its time (issue 10, notes/gpu.md); the operations here (`norms`,
//! `attention_softmax`) are a third to a half of those launches as burn composites.

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::backend::BackendTypes;
use burn::tensor::ops::FloatTensor;
#[cfg(feature = "cuda")]
use std::any::{Any, TypeId};

/// How an operation runs on a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// burn's composite.
    Composite,
    /// `B` is `Autodiff<CudaBackend>`: one node, the kernels forward and backward.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    CudaNode,
    /// `B` is `CudaBackend`: the forward kernel.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    CudaForward,
}

/// An operation's environment switch: `burn` runs burn's composite on CUDA too; unset or
/// `fused` the kernels. Read once a process; each operation keeps one in a `static`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) struct Switch {
    var: &'static str,
    on: std::sync::OnceLock<bool>,
}

impl Switch {
    pub(crate) const fn new(var: &'static str) -> Self {
        Self {
            var,
            on: std::sync::OnceLock::new(),
        }
    }

    /// The route for backend `B`.
    #[cfg_attr(not(feature = "cuda"), allow(clippy::extra_unused_type_parameters))]
    pub(crate) fn route<B: Backend>(&self) -> Route {
        #[cfg(feature = "cuda")]
        if self.on() {
            let p = TypeId::of::<B::FloatTensorPrimitive>();
            if p == TypeId::of::<NodeTensor<crate::backend::CudaBackend>>() {
                return Route::CudaNode;
            }
            if p == TypeId::of::<Cube>() {
                return Route::CudaForward;
            }
        }
        Route::Composite
    }

    #[cfg(feature = "cuda")]
    fn on(&self) -> bool {
        let var = self.var;
        *self.on.get_or_init(|| match std::env::var(var).as_deref() {
            Err(_) | Ok("fused") => true,
            Ok("burn") => false,
            Ok(v) => {
                eprintln!("{var}={v:?} is neither \"fused\" nor \"burn\": using fused");
                true
            }
        })
    }
}

/// burn-cubecl's CUDA tensor.
#[cfg(feature = "cuda")]
pub(crate) type Cube = burn_cubecl::tensor::CubeTensor<cubecl_cuda::CudaRuntime>;

/// Whether `I`'s float tensor is burn-cubecl's CUDA tensor.
#[cfg(feature = "cuda")]
pub(crate) fn is_cuda<I: Backend>() -> bool {
    TypeId::of::<I::FloatTensorPrimitive>() == TypeId::of::<Cube>()
}

/// `Autodiff<I>`'s float tensor (burn-autodiff's `AutodiffTensor<I>`, which it does not export).
pub(crate) type NodeTensor<I> = <Autodiff<I> as BackendTypes>::FloatTensorPrimitive;

/// `value` as type `U`, which it is (the caller checked through `TypeId`, [`Switch::route`] or
/// [`is_cuda`]).
#[cfg(feature = "cuda")]
pub(crate) fn same<T: 'static, U: 'static>(value: T) -> U {
    *(Box::new(value) as Box<dyn Any>)
        .downcast::<U>()
        .expect("the type was checked")
}

/// A float primitive as a tensor.
pub(crate) fn tensor<I: Backend, const D: usize>(p: FloatTensor<I>) -> Tensor<I, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// A float tensor's primitive.
pub(crate) fn prim<I: Backend, const D: usize>(t: Tensor<I, D>) -> FloatTensor<I> {
    t.into_primitive().tensor()
}
