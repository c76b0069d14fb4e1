//! Sources: where raw event records come from.
pub use serde::Serialize;

/// Where a record sits in its source: a partition and an offset within it (a line number for
/// files). Checkpoints and dead letters name records by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}
