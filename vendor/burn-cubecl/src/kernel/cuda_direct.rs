//! judgeflow: what the routes that hand work to CUDA directly share (cuBLAS products,
//! `matmul/cublas.rs`; the Triton-compiled attention, `attention/flash_triton.rs`): the device's
//! index, its primary context made current, and an operand's device pointer and stream looked up
//! on cubecl's device thread. Enqueued work goes on the stream cubecl runs its kernels on, so it
//! is ordered with them without a host synchronisation.

use crate::{CubeRuntime, tensor::CubeTensor};
use cubecl::stream_id::StreamId;
use cubecl_cuda::{CudaDevice, CudaRuntime};
use cubecl_runtime::{
    runtime::Runtime,
    server::{Binding, ComputeServer},
    storage::ComputeStorage,
};
use std::any::TypeId;
use std::ffi::c_int;

/// cubecl-cuda's storage resource (`GpuResource`, in a private module): its `ptr` is the device
/// address, the handle's offset included.
type GpuResource =
    <<<CudaRuntime as Runtime>::Server as ComputeServer>::Storage as ComputeStorage>::Resource;

/// The CUDA device index of `tensor`, or `None` when its runtime is not CUDA.
pub(crate) fn cuda_device<R: CubeRuntime>(tensor: &CubeTensor<R>) -> Option<usize> {
    if TypeId::of::<R>() != TypeId::of::<CudaRuntime>() {
        return None;
    }
    // SAFETY: `R` is `CudaRuntime` (checked above), whose device is `CudaDevice`.
    Some(unsafe { &*(&tensor.device as *const R::Device as *const CudaDevice) }.index)
}

/// Makes `device`'s primary context (the one cubecl-cuda runs in) current on this thread.
pub(crate) fn make_current(device: usize) -> bool {
    let Ok(dev) = cudarc::driver::result::device::get(device as c_int) else {
        return false;
    };
    // SAFETY: `dev` is a valid device; the retained context is kept for the process.
    let Ok(ctx) = (unsafe { cudarc::driver::result::primary_ctx::retain(dev) }) else {
        return false;
    };
    // SAFETY: a primary context retained above.
    unsafe { cudarc::driver::result::ctx::set_current(ctx) }.is_ok()
}

/// The device pointer (the handle's offset included) and the stream of one operand's storage,
/// looked up on the device thread of a CUDA client (the caller checked the runtime, e.g. with
/// [`cuda_device`]); the returned guard keeps the storage valid. Looking storage up makes
/// cubecl's context current on this thread.
pub(crate) fn pointer<S: ComputeServer>(
    server: &mut S,
    binding: Binding,
    stream_id: StreamId,
) -> Result<(u64, cudarc::driver::sys::CUstream, impl Sized + use<S>), String> {
    let managed = server
        .get_resource(binding, stream_id)
        .map_err(|err| format!("no storage for an operand: {err:?}"))?;
    // SAFETY: the runtime is `CudaRuntime` (the caller's check), whose server's storage
    // resource is `GpuResource`.
    let resource = unsafe { &*(managed.resource() as *const _ as *const GpuResource) };
    Ok((resource.ptr, resource.stream, managed))
}
