//! `vigil tail`: follow a decision topic without gaps, readable or as JSON, resumable under a
//! consumer name, with filters and a tally.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::ValueEnum;
use vigil_engine::decision::DecisionKind;
use vigil_fluvio::tail::{self, Filter, Format, Since, TailOptions};
use vigil_fluvio::Error;

use super::ConfigArgs;

#[derive(Clone, Copy, ValueEnum)]
enum DecisionArg {
    Freeze,
    Alert,
    Outreach,
}

impl From<DecisionArg> for DecisionKind {
    fn from(kind: DecisionArg) -> Self {
        match kind {
            DecisionArg::Freeze => DecisionKind::Freeze,
            DecisionArg::Alert => DecisionKind::Alert,
            DecisionArg::Outreach => DecisionKind::Outreach,
        }
    }
}

#[derive(clap::Args)]
pub struct TailArgs {
    /// The decision stream, e.g. fluvio:vigil-decisions.
    topic: String,
    /// Store progress on the cluster under this Fluvio consumer name, and resume from it.
    #[arg(long, value_name = "NAME")]
    consumer: Option<String>,
    /// Start from the oldest decision still on the topic (over a stored consumer offset).
    #[arg(long, conflicts_with = "from")]
    from_beginning: bool,
    /// Start from the first decision written at or after TIME: RFC 3339
    /// (2026-12-01T09:00:00Z) or a span ago (90m, 2h, 1day). Overrides a stored offset.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Stop once every partition has been read to its end as it was at the start.
    #[arg(long)]
    to_end: bool,
    /// Print the decision records unchanged, one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Only these kinds of decision (repeatable, or comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    decision: Vec<DecisionArg>,
    /// Only this customer.
    #[arg(long)]
    customer: Option<String>,
    /// Only decisions scored at or above this probability (rules-only decisions have no score).
    #[arg(long, value_name = "P")]
    min_score: Option<f64>,
    /// Print per-kind totals and what was read to standard error at the end.
    #[arg(long)]
    count: bool,
    /// How many recent decision ids are remembered to drop repeated decisions (0: none).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    dedupe_window: usize,
    /// Log more: -v for the Fluvio client's and Vigil's progress, -vv for debugging. Without
    /// it only warnings are logged (RUST_LOG overrides either).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    config: ConfigArgs,
}

impl TailArgs {
    /// The log filter when RUST_LOG is unset: quiet, so only decisions reach the terminal.
    pub fn log_filter(&self) -> &'static str {
        match self.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    }
}

pub async fn execute(args: TailArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let topic = args
        .topic
        .strip_prefix("fluvio:")
        .context("tail follows a Fluvio topic: fluvio:TOPIC")?;
    if let Some(min) = args.min_score {
        if !(0.0..=1.0).contains(&min) {
            bail!("--min-score {min}: a score is a probability between 0 and 1");
        }
    }
    let since = match (&args.from, args.from_beginning) {
        (Some(time), _) => Since::Time(parse_time(time)?),
        (None, true) => Since::Beginning,
        (None, false) => Since::Resume,
    };
    let options = TailOptions {
        topic: topic.to_owned(),
        consumer: args.consumer,
        since,
        filter: Filter {
            kinds: args.decision.into_iter().map(DecisionKind::from).collect(),
            customer: args.customer,
            min_score: args.min_score,
        },
        format: if args.json {
            Format::Json
        } else {
            Format::Readable
        },
        to_end: args.to_end,
        dedupe_window: args.dedupe_window,
        commit_interval: config.fluvio.commit_interval,
    };
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let tally = match tail::tail(&options, &config.fluvio, &mut out, interrupted).await {
        Ok(tally) => tally,
        // A reader that stopped reading (`| head`) ends the tail, not as a failure.
        Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if args.count {
        eprintln!("tail: {tally}");
    }
    if tally.unstored > 0 {
        eprintln!(
            "tail: the cluster has not yet acknowledged the last offsets stored for `{}` (it does once \
             a partition has more to send); resuming shows up to {} decisions again",
            options.consumer.as_deref().unwrap_or_default(),
            tally.unstored
        );
    }
    if tally.lost > 0 {
        eprintln!(
            "tail: {} decisions were gone from `{topic}` (retention) before they could be read",
            tally.lost
        );
    }
    Ok(())
}

/// RFC 3339 (with or without a zone; UTC when without) or a span before now.
fn parse_time(text: &str) -> anyhow::Result<SystemTime> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(time);
    }
    let ago: Duration = humantime::parse_duration(text).with_context(|| {
        format!("--from {text}: expected a time like 2026-12-01T09:00:00Z or a span like 90m")
    })?;
    SystemTime::now()
        .checked_sub(ago)
        .with_context(|| format!("--from {text}: too far back"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_takes_a_time_or_a_span_ago() {
        let at = parse_time("2026-12-01T09:00:00Z").unwrap();
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_796_115_600
        );
        let ago = SystemTime::now()
            .duration_since(parse_time("90m").unwrap())
            .unwrap();
        assert!((5399..5410).contains(&ago.as_secs()), "{ago:?}");
        let err = parse_time("yesterday-ish").unwrap_err().to_string();
        assert!(err.contains("--from yesterday-ish"), "{err}");
    }
}
