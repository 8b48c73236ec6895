//! judgeflow: products through NVIDIA's cuBLAS on the CUDA runtime.
//!
//! cubek 0.2's tiled kernels reached ~130 TFLOP/s on the Llama-3.2-11B-Vision encoder's large
//! products and ~55 TFLOP/s on its attention products (head dimension 80) on an H100 (judgeflow's
//! notes/gpu.md, session 16), where cuBLAS, which PyTorch calls, runs such shapes several times
//! faster. This module hands a product to `cublasGemmStridedBatchedEx` instead.
//!
//! Contract:
//! - [`try_cublas`] computes `out = lhs @ rhs` (batch dimensions broadcast as burn's matmul does)
//!   and returns `Some(())`, or returns `None` having done nothing: not the CUDA runtime, cuBLAS
//!   not loadable (`libcublas.so.13` on the loader's path), a type other than bf16 / f16 / f32,
//!   quantized operands, an operand whose last two dimensions are neither row- nor column-major,
//!   a result that is not row-major, or a size beyond cuBLAS's 32-bit arguments. The caller then
//!   runs cubek's kernel.
//! - Sums in f32 (`CUBLAS_COMPUTE_32F`) for every type, as cubek's kernels do.
//! - Ordering: the product is enqueued on the CUDA stream the operands' storage belongs to
//!   (judgeflow's vendored cubecl-cuda exposes it as `GpuResource::stream`), the stream cubecl
//!   runs its kernels and stream-ordered allocations on: no host synchronisation, and buffers
//!   freed after the call are reused only by work queued behind it. Operands found on different
//!   streams are a failure (below): one client's tensors share its stream.
//! - Host cost: none beyond queueing. Everything that can refuse a product is decided on the
//!   calling thread; the operands' device pointers are then looked up, and the cuBLAS call
//!   enqueued, in a task on cubecl's device thread (`ComputeClient::submit_server_task`, added by
//!   judgeflow's vendored cubecl-runtime), queued like a kernel launch and not waited for. (Until
//!   session 18 each pointer came from `ComputeClient::get_resource`, a blocking round trip that
//!   first worked off every queued launch: three a product, which made decoding's ~350 products
//!   a step slower than cubek's kernels.)
//! - A cuBLAS call that fails inside such a task cannot fall back any more: stderr says so, and
//!   the next product asked of this module panics, naming the failure, rather than let the
//!   process go on with a result that was never computed.
//! - When cuBLAS cannot be loaded, stderr says so once and every product goes to cubek.

use super::cublas_layout::{BatchPlan, Operand, batch_strides, transposed_operand};
use crate::kernel::cuda_direct::{cuda_device, make_current, pointer};
use crate::{CubeRuntime, tensor::CubeTensor};
use burn_backend::DType;
use cubecl::stream_id::StreamId;
use cubecl_runtime::server::{Binding, ComputeServer};
use cudarc::cublas::sys as cb;
use std::ffi::{c_int, c_void};
use std::sync::{Mutex, OnceLock};

/// The process's cuBLAS handle, made in the primary context of the device of the first product.
struct Blas {
    /// Used under the mutex, one call at a time, on cubecl's device thread.
    handle: Mutex<Handle>,
    device: usize,
}

struct Handle(cb::cublasHandle_t);
// SAFETY: the handle is used under `Blas::handle`'s mutex only, one call at a time.
unsafe impl Send for Handle {}

/// The handle, made on the first call (in `device`'s context), or `None`: cuBLAS cannot be
/// loaded or made (a line on stderr, once), or `device` is not the device it was made for (a
/// second device's products stay with cubek).
fn blas(device: usize) -> Option<&'static Blas> {
    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();
    BLAS.get_or_init(|| {
        // SAFETY: loading a library by the names cudarc lists; nothing is called yet.
        if !unsafe { cb::is_culib_present() } {
            eprintln!(
                "judgeflow: JUDGEFLOW_MATMUL* names cublas but libcublas cannot be loaded \
                 (put its directory on LD_LIBRARY_PATH); cubek's kernels run instead"
            );
            return None;
        }
        // The handle belongs to the context current when it is made: cubecl's (primary) one,
        // which cubecl's device thread, where the products run, keeps current.
        if !make_current(device) {
            eprintln!(
                "judgeflow: device {device}'s CUDA context cannot be made current; cubek's \
                 kernels run instead of cuBLAS"
            );
            return None;
        }
        match cudarc::cublas::result::create_handle() {
            Ok(handle) => Some(Blas {
                handle: Mutex::new(Handle(handle)),
                device,
            }),
            Err(err) => {
                eprintln!("judgeflow: cublasCreate failed ({err:?}); cubek's kernels run instead");
                None
            }
        }
    })
    .as_ref()
    .filter(|blas| blas.device == device)
}

/// The first failure of a cuBLAS call inside a device-thread task (see the module's contract).
static FAILED: OnceLock<String> = OnceLock::new();

/// `out = lhs @ rhs` through cuBLAS, or `None` having done nothing (see the module's contract).
pub fn try_cublas<R: CubeRuntime>(
    lhs: &CubeTensor<R>,
    rhs: &CubeTensor<R>,
    out: &CubeTensor<R>,
) -> Option<()> {
    let device = cuda_device(lhs)?;
    let dtype = lhs.dtype;
    let data_type = match dtype {
        DType::BF16 => cb::cudaDataType::CUDA_R_16BF,
        DType::F16 => cb::cudaDataType::CUDA_R_16F,
        DType::F32 => cb::cudaDataType::CUDA_R_32F,
        _ => return None,
    };
    if rhs.dtype != dtype || out.dtype != dtype || lhs.qparams.is_some() || rhs.qparams.is_some() {
        return None;
    }
    let (ls, rs, os) = (lhs.meta.shape(), rhs.meta.shape(), out.meta.shape());
    let (ld, rd, od) = (ls.num_dims(), rs.num_dims(), os.num_dims());
    if ld < 2 || rd < 2 || od < ld.max(rd) {
        return None;
    }
    let (m, k, n) = (ls[ld - 2], ls[ld - 1], rs[rd - 1]);
    if rs[rd - 2] != k || os[od - 2] != m || os[od - 1] != n {
        return None;
    }
    let (lst, rst, ost) = (lhs.meta.strides(), rhs.meta.strides(), out.meta.strides());
    // out^T = rhs^T lhs^T, column-major: cuBLAS's A is rhs, its B is lhs, its C is out.
    let a = transposed_operand(k, n, rst[rd - 2], rst[rd - 1])?;
    let b = transposed_operand(m, k, lst[ld - 2], lst[ld - 1])?;
    let c = transposed_operand(m, n, ost[od - 2], ost[od - 1])?;
    if c.transpose {
        return None;
    }
    let out_batch = &os[..od - 2];
    let lhs_b = batch_strides(out_batch, ls, lst)?;
    let rhs_b = batch_strides(out_batch, rs, rst)?;
    let out_b: Vec<i64> = ost[..od - 2].iter().map(|&s| s as i64).collect();
    let fits = |v: i64| v >= 0 && v <= i32::MAX as i64;
    let batch: usize = out_batch.iter().product();
    if ![m as i64, n as i64, k as i64, a.ld, b.ld, c.ld, batch as i64]
        .into_iter()
        .all(fits)
    {
        return None;
    }
    if m == 0 || n == 0 || batch == 0 {
        return Some(());
    }
    let blas = blas(device)?;
    if let Some(failure) = FAILED.get() {
        panic!(
            "judgeflow: an earlier cuBLAS product failed on cubecl's device thread ({failure}); \
             the tensors computed since are wrong"
        );
    }
    let plan = BatchPlan::new(out_batch, [&lhs_b, &rhs_b, &out_b]);
    if plan.inner > i32::MAX as usize {
        return None;
    }
    let gemm = Gemm {
        a,
        b,
        c,
        m,
        n,
        k,
        data_type,
        elem: dtype.size() as u64,
        plan,
    };
    let bindings = [
        lhs.handle.clone().binding(),
        rhs.handle.clone().binding(),
        out.handle.clone().binding(),
    ];
    lhs.client.submit_server_task(move |server, stream_id| {
        if let Err(failure) = gemm.run(blas, server, stream_id, bindings) {
            eprintln!("judgeflow: {failure}");
            let _ = FAILED.set(failure);
        }
    });
    Some(())
}

/// One product as cuBLAS calls it, decided on the calling thread and run on the device thread.
struct Gemm {
    /// cuBLAS's A (rhs), B (lhs) and C (out), see [`transposed_operand`].
    a: Operand,
    b: Operand,
    c: Operand,
    m: usize,
    n: usize,
    k: usize,
    data_type: cb::cudaDataType,
    /// Bytes an element.
    elem: u64,
    plan: BatchPlan,
}

impl Gemm {
    /// Looks the operands' pointers up (lhs, rhs, out) and enqueues the calls on their stream.
    fn run<S: ComputeServer>(
        &self,
        blas: &Blas,
        server: &mut S,
        stream_id: StreamId,
        [lhs, rhs, out]: [Binding; 3],
    ) -> Result<(), String> {
        let Self { m, n, k, .. } = *self;
        // Looking storage up makes cubecl's context current on this thread, the one the handle
        // was made in.
        let (lp, stream, _lg) = pointer(server, lhs, stream_id)?;
        let (rp, rs_stream, _rg) = pointer(server, rhs, stream_id)?;
        let (op, os_stream, _og) = pointer(server, out, stream_id)?;
        if rs_stream != stream || os_stream != stream {
            return Err(format!(
                "operands on different streams (m {m}, n {n}, k {k})"
            ));
        }
        let handle = blas.handle.lock().unwrap();
        // SAFETY: a live handle and the stream cubecl runs this device's kernels on.
        unsafe { cudarc::cublas::result::set_stream(handle.0, stream as cb::cudaStream_t) }
            .map_err(|err| format!("cublasSetStream failed: {err:?}"))?;
        let (alpha, beta) = (1.0f32, 0.0f32);
        let op_of = |o: Operand| {
            if o.transpose {
                cb::cublasOperation_t::CUBLAS_OP_T
            } else {
                cb::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let (plan, elem) = (&self.plan, self.elem);
        for index in 0..plan.calls() {
            let [lo, ro, oo] = plan.offsets(index);
            // SAFETY: the pointers are live allocations (guards held) of the operands' sizes,
            // the strides and leading dimensions describe those tensors (checked by
            // `try_cublas`), and the context cuBLAS was made in is current.
            unsafe {
                cudarc::cublas::result::gemm_strided_batched_ex(
                    handle.0,
                    op_of(self.a),
                    op_of(self.b),
                    n as c_int,
                    m as c_int,
                    k as c_int,
                    &alpha as *const f32 as *const c_void,
                    (rp + ro as u64 * elem) as *const c_void,
                    self.data_type,
                    self.a.ld as c_int,
                    plan.inner_strides[1],
                    (lp + lo as u64 * elem) as *const c_void,
                    self.data_type,
                    self.b.ld as c_int,
                    plan.inner_strides[0],
                    &beta as *const f32 as *const c_void,
                    (op + oo as u64 * elem) as *mut c_void,
                    self.data_type,
                    self.c.ld as c_int,
                    plan.inner_strides[2],
                    plan.inner as c_int,
                    cb::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    cb::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            }
            .map_err(|err| {
                format!("cublasGemmStridedBatchedEx failed: {err:?} (m {m}, n {n}, k {k})")
            })?;
        }
        Ok(())
    }
}
