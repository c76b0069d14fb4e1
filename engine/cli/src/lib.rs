//! The `vigil` command's library half: the full set of connectors a Vigil binary offers, and
//! the work behind `vigil train` (fitting a model on history with the engine's own feature
//! code), `vigil score` (every customer's churn score as of a time) and `vigil replay` (history
//! through the full engine with a candidate model), with `history`, the reading of history
//! they share. The command line itself is in `main.rs` and `commands/`.

pub mod history;
pub mod replay;
pub mod score;
pub mod train;

use vigil_engine::pipeline::Connectors;

/// Every source and sink Vigil ships: the engine's files and standard streams, the scenario
/// generator and Fluvio topics.
pub fn connectors() -> Connectors {
    vigil_fluvio::register(vigil_scenario::register(Connectors::builtin()))
}
