mod base;
/// judgeflow: attention as two matmuls around one softmax kernel a row.
pub mod rows;
mod tune;

pub use base::*;
pub use tune::*;
