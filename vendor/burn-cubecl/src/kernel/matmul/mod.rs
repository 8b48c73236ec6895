mod base;
/// judgeflow: products through cuBLAS (`JUDGEFLOW_MATMUL*=cublas`).
#[cfg(feature = "cuda-direct")]
pub mod cublas;
/// judgeflow: the cuBLAS route's operand and batch layouts (plain Rust, tested by judgeflow's CI).
#[cfg(feature = "cuda-direct")]
mod cublas_layout;
/// judgeflow: products with few rows.
pub mod skinny;
mod tune;

/// Contains utilities for matmul operation
pub mod utils;

pub use base::*;
#[cfg(feature = "autotune")]
pub use tune::*;
pub use utils::*;
