//! One module per `vigil` command: its arguments (clap) and what it does with them. Every
//! command that reads configuration takes `--config FILE` and `--set key=value`, layered over
//! the built-in defaults with `VIGIL_*` environment variables between the two.

pub mod produce;
pub mod replay;
pub mod run;
pub mod score;
pub mod tail;
pub mod topics;
pub mod train;
pub mod webhook;

use std::path::PathBuf;

use vigil_engine::config::{Config, Layers};

/// Where a command's configuration comes from, besides the built-in defaults.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Configuration file, layered over the built-in defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One configuration key, over the file and the environment, e.g.
    /// --set engine.max_in_flight=8192 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl ConfigArgs {
    /// Defaults, then the file, then `VIGIL_*` variables, then `--set`.
    pub fn load(self) -> vigil_engine::Result<Config> {
        Config::load(&Layers::from_process(self.config, self.set))
    }
}

/// A UTC time as ms since the epoch: a date, a date and time, or RFC 3339.
pub fn parse_event_time(text: &str) -> Result<i64, String> {
    let full = if text.len() == 10 {
        format!("{text} 00:00:00")
    } else {
        text.to_owned()
    };
    humantime::parse_rfc3339_weak(&full)
        .map_err(|e| format!("`{text}` is not a UTC date or time ({e})"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("`{text}` is before 1970"))
}
