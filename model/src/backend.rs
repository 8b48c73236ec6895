//! Backend type aliases: NdArray (f32) on the CPU everywhere, CUDA (bf16 weights and
//! activations) behind the `cuda` feature.

/// CPU inference backend.
pub type CpuBackend = burn::backend::NdArray<f32>;
/// CPU training backend.
pub type CpuTrainBackend = burn::backend::Autodiff<CpuBackend>;

/// CUDA inference backend; bf16 halves memory and uses the tensor cores, at the precision the
/// released Llama-3.2-Vision weights are stored in.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<burn::tensor::bf16, i32>;
/// CUDA training backend.
#[cfg(feature = "cuda")]
pub type CudaTrainBackend = burn::backend::Autodiff<CudaBackend>;

/// Counts bytes uploaded to a device and, every [`UploadGuard::EVERY`] bytes, launches one
/// tiny kernel and waits for it.
///
/// Why: cubecl 0.10 keeps every uploaded host buffer in a drop queue and sums their bytes in a
/// `u32` that only a kernel launch resets (it flushes the queue once 64 MiB are staged; a sync
/// alone does not: `cubecl-cuda` 0.10's `Command::sync` waits on a fence and leaves the queue as
/// it is). Uploading more than 4 GiB with no kernel in between panics in its device thread
/// ("attempt to add with overflow", `drop_queue/policy.rs`): a large training set did (session
/// 5), and so did the 21 GB of an 11B checkpoint, whose loading runs no kernel at all (session
/// 10). The sync makes the kernel run under fusion too, which defers kernels until something
/// waits for them. On the CPU backend it costs one one-element addition per 256 MiB.
pub struct UploadGuard {
    since_launch: usize,
}

impl UploadGuard {
    /// Bytes uploaded between two launches: well under the counter's 4 GiB.
    pub const EVERY: usize = 256 << 20;

    /// A guard that has counted nothing yet.
    pub fn new() -> Self {
        Self { since_launch: 0 }
    }

    /// Counts `bytes` just uploaded to `device`; past [`Self::EVERY`] launches a kernel and
    /// waits for it. An error is the backend's, as text.
    pub fn uploaded<B: burn::tensor::backend::Backend>(
        &mut self,
        bytes: usize,
        device: &B::Device,
    ) -> Result<(), String> {
        self.since_launch += bytes;
        if self.since_launch < Self::EVERY {
            return Ok(());
        }
        self.since_launch = 0;
        let _launch = burn::tensor::Tensor::<B, 1>::ones([1], device).add_scalar(1.0);
        B::sync(device).map_err(|e| format!("{e:?}"))
    }
}

impl Default for UploadGuard {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps compiled GPU kernels in `dir`, so that a later process compiles nothing it compiled
/// before: cubecl's PTX cache (`dir/cubecl`, its kernels keyed by a stable hash of their source
/// and launch settings; autotune results in the same place when autotune is on) and the CUDA
/// driver's PTX-to-machine-code cache (`dir/nv`, through `CUDA_CACHE_PATH`, unless the
/// environment already sets it).
///
/// Must run before the first CUDA tensor exists and while the process has one thread (it sets
/// an environment variable): the binary calls it first thing in `main`. A `cubecl.toml` in the
/// working directory still applies; only its cache locations are replaced, and only where it
/// names none. Calling it twice keeps the first directory.
#[cfg(feature = "cuda")]
pub fn use_kernel_cache(dir: &std::path::Path) -> std::io::Result<()> {
    use cubecl_runtime::config::cache::CacheConfig;
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
    static DONE: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    DONE.call_once(|| {
        result = (|| {
            std::fs::create_dir_all(dir.join("cubecl"))?;
            std::fs::create_dir_all(dir.join("nv"))?;
            if std::env::var_os("CUDA_CACHE_PATH").is_none() {
                // SAFETY: called at the start of `main`, before any other thread exists.
                unsafe {
                    std::env::set_var("CUDA_CACHE_PATH", dir.join("nv"));
                    std::env::set_var("CUDA_CACHE_MAXSIZE", "4294967296");
                }
            }
            let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
            let kernels = CacheConfig::File(dir.join("cubecl"));
            if config.compilation.cache.is_none() {
                config.compilation.cache = Some(kernels.clone());
            }
            if matches!(config.autotune.cache, CacheConfig::Target) {
                config.autotune.cache = kernels;
            }
            CubeClRuntimeConfig::set(config);
            Ok(())
        })();
    });
    result
}

/// What cubecl's memory pool on a CUDA device holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolMemory {
    /// Bytes in live allocations (tensors, and buffers a kernel still uses).
    pub in_use: u64,
    /// Bytes the pool has taken from the driver: what `nvidia-smi` counts, less the context.
    /// The pool keeps freed pages for reuse, so this never shrinks on its own.
    pub reserved: u64,
}

/// The memory pool's figures for `device` (waits for the device's queue); `None` when the
/// device thread cannot answer.
#[cfg(feature = "cuda")]
pub fn cuda_memory(device: &burn::backend::cuda::CudaDevice) -> Option<PoolMemory> {
    use cubecl_runtime::runtime::Runtime;
    let usage = <cubecl_cuda::CudaRuntime as Runtime>::client(device)
        .memory_usage()
        .ok()?;
    Some(PoolMemory {
        in_use: usage.bytes_in_use,
        reserved: usage.bytes_reserved,
    })
}

/// What is using the GPU now, for [`exit_on_device_thread_panic`]'s message.
#[cfg(feature = "cuda")]
static GPU_WORK: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Names a piece of GPU work (a node) for as long as the guard lives.
#[cfg(feature = "cuda")]
pub struct GpuWork(String);

#[cfg(feature = "cuda")]
impl GpuWork {
    /// Registers `what` (e.g. "node `judge@2`").
    pub fn start(what: String) -> Self {
        if let Ok(mut work) = GPU_WORK.lock() {
            work.push(what.clone());
        }
        GpuWork(what)
    }
}

#[cfg(feature = "cuda")]
impl Drop for GpuWork {
    fn drop(&mut self) {
        if let Ok(mut work) = GPU_WORK.lock()
            && let Some(i) = work.iter().position(|w| *w == self.0)
        {
            work.remove(i);
        }
    }
}

/// Turns a panic in one of cubecl's device threads into a clear error and exit code 1.
///
/// cubecl runs each GPU behind a server thread (named `DSU-…`/`DSD-…`); when an allocation
/// fails there (out of memory) that thread panics and every later call of the process waits on
/// it forever — seen on the H200 with the 11B vision encoder, which hung until its time limit.
/// Nothing of a node is cached before it finishes, so exiting loses no result: the next run
/// redoes the nodes that were unfinished. Installed by the binary (and the speed benchmark)
/// before any GPU work.
#[cfg(feature = "cuda")]
pub fn exit_on_device_thread_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let device_thread = thread
            .name()
            .is_some_and(|n| n.starts_with("DSU-") || n.starts_with("DSD-"));
        if !device_thread {
            previous(info);
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let work = GPU_WORK.lock().map(|w| w.join(", ")).unwrap_or_default();
        let work = if work.is_empty() {
            "GPU work".to_string()
        } else {
            work
        };
        // Where it panicked: "attempt to add with overflow" alone did not say which crate.
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "Error: judgeflow::model::device\n\n  × {work}: the CUDA backend failed in its device \
             thread: {message}{at}\n  help: an allocation failure is GPU memory: lower the node's \
             `batch_size` (or `max_tokens`); unfinished nodes were not cached and the next run \
             redoes them"
        );
        std::process::exit(1);
    }));
}

#[cfg(test)]
mod tests {
    use super::{CpuBackend, UploadGuard};

    #[test]
    fn the_upload_guard_launches_past_its_threshold_and_starts_counting_again() {
        let device = Default::default();
        let mut guard = UploadGuard::new();
        guard
            .uploaded::<CpuBackend>(UploadGuard::EVERY - 1, &device)
            .unwrap();
        assert_eq!(guard.since_launch, UploadGuard::EVERY - 1);
        guard.uploaded::<CpuBackend>(1, &device).unwrap();
        assert_eq!(guard.since_launch, 0);
        guard.uploaded::<CpuBackend>(10, &device).unwrap();
        assert_eq!(guard.since_launch, 10);
    }
}
