//! `vigil-bench`, the load-test runner SREs hold the engine to. A scenario file says what
//! traffic to send and which targets to meet; the runner sends it open-loop (each record at its
//! intended time, whether or not the engine keeps up), measures every record's latency from
//! that intended time to its publication in HDR histograms, checks the targets and writes a
//! terminal summary, a JSON report and an HTML report with plots. `--baseline` adds the cost of
//! the architecture: engine capacity as a fraction of the same work in a plain loop.
//!
//! Modules follow a run: `runner` drives the engine and follows it, `fluvio` puts a real
//! cluster between the producer and the engine, `baseline` measures the capacity comparison, `report` judges targets and writes JSON and the terminal summary,
//! `html` draws the plots.

pub mod baseline;
pub mod fluvio;
pub mod html;
pub mod report;
pub mod runner;
