//! What a sane artifact holds: the bounds loading checks every standardiser, weight, node
//! value and calibration term against, and the node cap. A trained model stays far inside
//! them; beyond them a value can only come from a corrupt or hostile artifact.

/// Most nodes a tree or boosted model may have unless the loader says otherwise: 300 trees of
/// 255 leaves is under 160k, and a corrupt or hostile artifact must not take the engine's
/// memory.
pub const MAX_FOREST_NODES: usize = 1_000_000;

/// The largest log-odds any weight, intercept, node value or calibration term may hold. A
/// trained model stays far below (a log-odds of 40 is already a certainty); beyond it a value
/// can only come from a corrupt or hostile artifact, and would pin or invert every score.
pub const MAX_LOG_ODDS: f64 = 1e3;

/// Whether `value` lies within `bound` of zero; never for NaN.
pub fn within(value: f64, bound: f64) -> bool {
    value.abs() <= bound
}

/// Sane standardisation: means within `MAX_MEAN` of zero, scales between `MIN_SCALE` and
/// `MAX_SCALE`. Training never writes a scale below `MIN_SCALE` (a constant feature gets 1).
pub const MAX_MEAN: f64 = 1e15;
pub const MIN_SCALE: f64 = 1e-9;
pub const MAX_SCALE: f64 = 1e15;
