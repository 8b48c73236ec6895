mod base;
/// judgeflow: attention as two matmuls around one softmax kernel a row.
pub mod rows;
/// judgeflow: flash-style attention on tensor cores, scores kept on chip.
pub mod flash_tiles;
mod tune;

pub use base::*;
pub use tune::*;
