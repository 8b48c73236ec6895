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
