//! The `vigil` command's library half: the full set of connectors a Vigil binary offers, how
//! its allocator keeps memory, and
//! the work behind `vigil train` (fitting a model on history with the engine's own feature
//! code), `vigil score` (every customer's churn score as of a time), `vigil replay` (history
//! through the full engine with a candidate model) and `vigil replay --policy` (`backtest`: a
//! candidate policy against today's), with `history`, the reading of history they share. The
//! command line itself is in `main.rs` and `commands/`.

pub mod backtest;
pub mod history;
pub mod replay;
pub mod score;
pub mod train;

use vigil_engine::pipeline::Connectors;

/// Every source and sink Vigil ships: the engine's files and standard streams, the scenario
/// generator, Fluvio topics and webhooks.
pub fn connectors() -> Connectors {
    vigil_webhook::register(vigil_fluvio::register(vigil_scenario::register(
        Connectors::builtin(),
    )))
}

/// mimalloc's `mi_option_purge_delay` (mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes the binary's allocator (mimalloc) keep freed memory for reuse instead of handing it
/// back to the OS 10 ms after it falls free: returning it only to fault it in again cost the
/// engine 5% of its CPU, half its system time, at the same peak memory, and passivation is what
/// bounds the engine's memory. `MIMALLOC_PURGE_DELAY` in the environment still decides when set.
/// Call it first thing in `main`.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores one option value; the runtime's threads are idle
        // until `main`'s future runs.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
