mod base;
/// judgeflow: products through cuBLAS (`JUDGEFLOW_MATMUL*=cublas`).
#[cfg(feature = "cublas")]
pub mod cublas;
/// judgeflow: products with few rows.
pub mod skinny;
mod tune;

/// Contains utilities for matmul operation
pub mod utils;

pub use base::*;
#[cfg(feature = "autotune")]
pub use tune::*;
pub use utils::*;
