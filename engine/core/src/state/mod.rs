//! State that outlives an actor or a run: the `store` keeps customers' encoded state
//! (passivated, and snapshotted at each checkpoint with the source offsets), and `checkpoint`
//! is the offsets file an operator can read.

pub mod checkpoint;
pub mod store;
