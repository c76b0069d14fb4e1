//! `vigil tail`: follows a decision topic for risk analysts and their scripts, without gaps.
//!
//! Every partition has its own gap-free reader (see `reader`), so no decision the engine
//! published is skipped. Where each partition starts is settled before reading: the
//! beginning of its log, the first record at or after a time, the offset stored for a named
//! consumer, or its end (new decisions only). A named consumer's offsets are stored on the
//! cluster behind what was written out, so a restart resumes where the last one stopped, and
//! decisions seen again after an engine restart or a resume are dropped by `decision_id` within
//! a bounded window. Decisions are written to the output in batches, readable or as the JSON
//! records unchanged; everything else (warnings, the tally) goes to standard error.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fluvio::Fluvio;
use tokio::sync::{mpsc, watch};
use vigil_engine::config::FluvioConfig;
use vigil_engine::decision::{Decision, DecisionKind};
use vigil_engine::event::{Offsets, MAX_TS};
use vigil_engine::text::printable;

use crate::client;
use crate::error::{Error, Result};
use crate::reader::{Follow, PartitionReader, Start, HANDOFF};

/// Hand-offs buffered between the partition readers and the writer: up to 4,096 records.
const CHANNEL_CAPACITY: usize = 4096 / HANDOFF;
/// Hand-offs written out between flushes of the output: up to 1,024 records.
const WRITE_BATCH: usize = 1024 / HANDOFF;
/// How long a single record may take to arrive while looking for a start time.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where every partition starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Since {
    /// The consumer's stored offset when there is one, else new decisions only.
    Resume,
    /// The start of every partition's log.
    Beginning,
    /// The first decision written to the topic at or after this time.
    Time(SystemTime),
}

/// How decisions are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per decision for people (`render`).
    Readable,
    /// The decision records exactly as they are on the topic, one per line.
    Json,
}

/// Which decisions to write.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these kinds; all when empty.
    pub kinds: Vec<DecisionKind>,
    pub customer: Option<String>,
    /// Only decisions with a score at or above this (rules-only decisions have none).
    pub min_score: Option<f64>,
}

impl Filter {
    pub fn accepts(&self, d: &Decision) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&d.decision))
            && self.customer.as_ref().is_none_or(|c| *c == d.customer_id)
            && self
                .min_score
                .is_none_or(|min| d.score.is_some_and(|s| s >= min))
    }
}

#[derive(Debug, Clone)]
pub struct TailOptions {
    pub topic: String,
    /// Stores progress on the cluster under this Fluvio consumer name.
    pub consumer: Option<String>,
    pub since: Since,
    pub filter: Filter,
    pub format: Format,
    /// Stop once every partition has been read up to its end as it was at the start.
    pub to_end: bool,
    /// How many recent decision ids are remembered to drop repeats.
    pub dedupe_window: usize,
    /// How often a named consumer's offsets are stored.
    pub commit_interval: Duration,
}

/// What a tail read and wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Decisions written, by kind (`DecisionKind::index`).
    pub written: [u64; DecisionKind::COUNT],
    pub records: u64,
    pub duplicates: u64,
    pub filtered: u64,
    /// Records that are not decisions.
    pub unreadable: u64,
    /// Times a stream skipped records and was reopened to read them.
    pub rereads: u64,
    /// Records gone from the log (retention) before they could be read.
    pub lost: u64,
    /// With a consumer name: records read whose offsets the cluster had not acknowledged as
    /// stored when tail stopped, so a resume shows them again.
    pub unstored: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let written: u64 = self.written.iter().sum();
        let per_kind: Vec<String> = DecisionKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), self.written[k.index()]))
            .collect();
        let seconds = self.elapsed.as_secs_f64();
        write!(
            f,
            "{written} decisions ({}); {} records read in {seconds:.2} s ({:.0}/s); \
             {} repeated, {} filtered out, {} not decisions; \
             {} skipped by the client and re-read, {} lost to retention",
            per_kind.join(", "),
            self.records,
            self.records as f64 / seconds.max(1e-9),
            self.duplicates,
            self.filtered,
            self.unreadable,
            self.rereads,
            self.lost,
        )
    }
}

/// One decision as a line a risk analyst can read.
pub fn render(d: &Decision) -> String {
    let reasons: Vec<String> = d
        .reasons
        .iter()
        .map(|r| format!("{} {:+.2}", printable(&r.feature), r.contribution))
        .collect();
    let score = d
        .score
        .map_or("rules only".to_owned(), |s| format!("score {s:.4}"));
    let mut line = format!(
        "{:<8} {} event {} at {} | {score} {}",
        d.decision.name().to_uppercase(),
        printable(&d.customer_id),
        printable(&d.event_id),
        event_time(d.event_ts),
        printable(d.model.as_deref().unwrap_or("")),
    );
    if !reasons.is_empty() {
        line += &format!(" | {}", reasons.join(", "));
    }
    if !d.rules.is_empty() {
        let rules: Vec<_> = d.rules.iter().map(|r| printable(r)).collect();
        line += &format!(" | rules: {}", rules.join(", "));
    }
    if d.degraded {
        line += " | DEGRADED";
    }
    line
}

/// An event time as RFC 3339, or as raw milliseconds when it is outside 1970 to the year 9999
/// (which RFC 3339 cannot write).
fn event_time(ms: i64) -> String {
    if (0..=MAX_TS).contains(&ms) {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
    } else {
        format!("{ms} ms since the epoch (out of range)")
    }
}

/// The most recent decision ids, to drop a decision seen again (the engine publishes at least
/// once, so a restart can repeat decisions, always with the same id).
pub struct Dedupe {
    seen: HashSet<Box<str>>,
    order: VecDeque<Box<str>>,
    capacity: usize,
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        Dedupe {
            seen: HashSet::with_capacity(capacity.min(1 << 20)),
            order: VecDeque::with_capacity(capacity.min(1 << 20)),
            capacity,
        }
    }

    /// True the first time `id` is offered within the window.
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        let id: Box<str> = id.into();
        self.seen.insert(id.clone());
        self.order.push_back(id);
        true
    }
}

/// One record as read from a partition.
struct Received {
    partition: u32,
    offset: u64,
    value: Bytes,
}

/// Follows `options.topic` and writes its decisions to `out` until `stop` resolves, every
/// reader has failed for good, or (with `to_end`) every partition has reached its end. On the
/// way out, readers stop, what they read is written, and a named consumer's offsets are stored.
pub async fn tail<W: Write>(
    options: &TailOptions,
    settings: &FluvioConfig,
    out: &mut W,
    stop: impl Future<Output = ()>,
) -> Result<Tally> {
    let started = Instant::now();
    let fluvio = client::connect(settings).await?;
    let topic = options.topic.as_str();
    let partitions = client::partition_count(&fluvio, topic).await?;
    let ends = client::end_offsets(&fluvio, topic).await?;
    let starts = start_offsets(&fluvio, options, partitions, &ends).await?;
    tracing::info!(topic, ?starts, ?ends, "Tailing.");

    let (records_tx, mut records) = mpsc::channel(CHANNEL_CAPACITY);
    let (done_tx, done) = watch::channel(Offsets::new());
    let (stop_readers, stop_rx) = watch::channel(false);
    let mut readers = Vec::new();
    for (&partition, &start) in &starts {
        let reader = PartitionReader::new(
            fluvio.clone(),
            topic,
            partition,
            Start::At(start),
            options.consumer.clone(),
        );
        let follow = Follow {
            records: records_tx.clone(),
            done: options.consumer.as_ref().map(|_| done.clone()),
            commit_interval: options.commit_interval,
            next: None,
            stop: Some(stop_rx.clone()),
            until: options
                .to_end
                .then(|| ends.get(&partition).copied().unwrap_or(0)),
            commit_from: 0,
        };
        readers.push(tokio::spawn(reader.follow(
            follow,
            |partition, offset, record, _| Received {
                partition,
                offset,
                value: Bytes::copy_from_slice(record.value()),
            },
        )));
    }
    drop(records_tx);

    // Per partition, one past the last offset written out (or dropped).
    let mut written: Offsets = starts.clone();
    let reached_end = |written: &Offsets| {
        written
            .iter()
            .all(|(p, next)| *next >= ends.get(p).copied().unwrap_or(0))
    };
    let mut tally = Tally::default();
    let mut dedupe = Dedupe::new(options.dedupe_window);
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut stopping = options.to_end && reached_end(&written);
    if stopping {
        let _ = stop_readers.send(true);
    }
    tokio::pin!(stop);
    loop {
        batch.clear();
        let received = if stopping {
            records.recv_many(&mut batch, WRITE_BATCH).await
        } else {
            tokio::select! {
                received = records.recv_many(&mut batch, WRITE_BATCH) => received,
                _ = &mut stop => {
                    stopping = true;
                    let _ = stop_readers.send(true);
                    continue;
                }
            }
        };
        if received == 0 {
            break;
        }
        let wrote = batch.iter().flatten().try_for_each(|record| {
            tally.records += 1;
            written.insert(record.partition, record.offset + 1);
            write_one(record, options, &mut dedupe, &mut tally, out)
        });
        if let Err(error) = wrote.and_then(|()| out.flush().map_err(output_error)) {
            readers.iter().for_each(|reader| reader.abort());
            return Err(error);
        }
        done_tx.send_replace(written.clone());
        if options.to_end && !stopping && reached_end(&written) {
            stopping = true;
            let _ = stop_readers.send(true);
        }
    }
    for reader in readers {
        if let Ok(reader) = reader.await {
            tally.rereads += reader.rereads();
            tally.lost += reader.lost();
            if options.consumer.is_some() {
                let partition = reader.partition();
                let resume_at = reader.stored().map_or(starts[&partition], |s| s + 1);
                tally.unstored += written[&partition].saturating_sub(resume_at);
            }
        }
    }
    tally.elapsed = started.elapsed();
    Ok(tally)
}

fn write_one<W: Write>(
    record: &Received,
    options: &TailOptions,
    dedupe: &mut Dedupe,
    tally: &mut Tally,
    out: &mut W,
) -> Result<()> {
    let decision = match serde_json::from_slice::<Decision>(&record.value) {
        Ok(decision) => decision,
        Err(error) => {
            tally.unreadable += 1;
            tracing::warn!(
                partition = record.partition,
                offset = record.offset,
                %error,
                "Not a decision; skipped."
            );
            return Ok(());
        }
    };
    if !options.filter.accepts(&decision) {
        tally.filtered += 1;
        return Ok(());
    }
    if !dedupe.first_time(&decision.decision_id) {
        tally.duplicates += 1;
        return Ok(());
    }
    match options.format {
        Format::Readable => writeln!(out, "{}", render(&decision)),
        Format::Json => out
            .write_all(&record.value)
            .and_then(|()| out.write_all(b"\n")),
    }
    .map_err(output_error)?;
    tally.written[decision.decision.index()] += 1;
    Ok(())
}

fn output_error(error: std::io::Error) -> Error {
    Error::Output(error)
}

/// Where each partition starts, given where each ends, settled before any reading so that a
/// named consumer, a time and `to_end` all mean one thing.
async fn start_offsets(
    fluvio: &Arc<Fluvio>,
    options: &TailOptions,
    partitions: u32,
    ends: &Offsets,
) -> Result<Offsets> {
    let topic = options.topic.as_str();
    let log_starts = client::start_offsets(fluvio, topic).await?;
    let stored: BTreeMap<u32, u64> = match (&options.consumer, options.since) {
        (Some(consumer), Since::Resume) => fluvio
            .consumer_offsets()
            .await
            .map_err(|e| Error::client("cannot read Fluvio consumer offsets", e))?
            .into_iter()
            .filter(|c| c.consumer_id == *consumer && c.topic == topic && c.offset >= 0)
            .map(|c| (c.partition, c.offset as u64 + 1))
            .collect(),
        _ => BTreeMap::new(),
    };
    let mut starts = Offsets::new();
    for partition in 0..partitions {
        let first = log_starts.get(&partition).copied().unwrap_or(0);
        let end = ends.get(&partition).copied().unwrap_or(0);
        let start = match options.since {
            Since::Beginning => first,
            Since::Resume => stored.get(&partition).copied().unwrap_or(end),
            Since::Time(time) => seek(fluvio, topic, partition, first, end, time).await?,
        };
        starts.insert(partition, start.clamp(first, end.max(first)));
    }
    Ok(starts)
}

/// The first offset in `[first, end)` whose record reached the topic at or after `time`, by
/// binary search on the records' timestamps (which only grow within a partition); `end` when
/// there is none.
async fn seek(
    fluvio: &Arc<Fluvio>,
    topic: &str,
    partition: u32,
    first: u64,
    end: u64,
    time: SystemTime,
) -> Result<u64> {
    let wanted = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (mut low, mut high) = (first, end);
    while low < high {
        let middle = low + (high - low) / 2;
        let mut reader =
            PartitionReader::new(fluvio.clone(), topic, partition, Start::At(middle), None);
        let record = tokio::time::timeout(SEEK_TIMEOUT, reader.next())
            .await
            .map_err(|_| Error::Client {
                what: format!("reading `{topic}` partition {partition} at offset {middle}"),
                detail: "no record arrived".into(),
            })??;
        let timestamp = record.timestamp();
        if timestamp < 0 {
            return Err(Error::Client {
                what: format!("`{topic}` partition {partition}"),
                detail: "its records carry no timestamp, so --from cannot find a time; use --from-beginning".into(),
            });
        }
        if timestamp < wanted {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_engine::decision::ReasonCode;

    fn decision(id: &str, kind: DecisionKind, customer: &str, score: Option<f64>) -> Decision {
        Decision {
            degraded_reason: None,
            channel: None,
            suppressed: None,
            policy: None,
            schema: 1,
            decision_id: Decision::id_for(customer, id, 1_780_000_000_000, kind),
            decision: kind,
            customer_id: customer.into(),
            event_id: id.into(),
            event_ts: 1_780_000_000_000,
            trigger: vigil_engine::decision::Trigger::Event,
            timer_ts: None,
            decided_ts: 1_780_000_000_100,
            score,
            model: Some("fraud-lr@1".into()),
            reasons: vec![ReasonCode {
                feature: "amount_zscore".into(),
                contribution: 2.5,
            }],
            rules: vec![],
            degraded: false,
            latency_us: 300,
        }
    }

    #[test]
    fn filters_by_kind_customer_and_minimum_score() {
        let freeze = decision("e-1", DecisionKind::Freeze, "c-1", Some(0.999));
        let alert = decision("e-2", DecisionKind::Alert, "c-2", Some(0.95));
        let rules_only = decision("e-3", DecisionKind::Alert, "c-1", None);
        assert!(Filter::default().accepts(&rules_only));

        let kinds = Filter {
            kinds: vec![DecisionKind::Freeze, DecisionKind::Outreach],
            ..Filter::default()
        };
        assert!(kinds.accepts(&freeze));
        assert!(!kinds.accepts(&alert));

        let customer = Filter {
            customer: Some("c-1".into()),
            ..Filter::default()
        };
        assert!(customer.accepts(&freeze) && customer.accepts(&rules_only));
        assert!(!customer.accepts(&alert));

        let score = Filter {
            min_score: Some(0.99),
            ..Filter::default()
        };
        assert!(score.accepts(&freeze));
        assert!(!score.accepts(&alert));
        assert!(!score.accepts(&rules_only), "no score is below any minimum");
    }

    #[test]
    fn dedupe_forgets_the_oldest_id_beyond_its_window() {
        let mut dedupe = Dedupe::new(2);
        assert!(dedupe.first_time("a"));
        assert!(dedupe.first_time("b"));
        assert!(!dedupe.first_time("a"));
        assert!(dedupe.first_time("c")); // "a" leaves the window
        assert!(!dedupe.first_time("b"));
        assert!(dedupe.first_time("a"));
        assert!(Dedupe::new(0).first_time("a") && Dedupe::new(0).first_time("a"));
    }

    fn options(format: Format, filter: Filter) -> TailOptions {
        TailOptions {
            topic: "vigil-decisions".into(),
            consumer: None,
            since: Since::Beginning,
            filter,
            format,
            to_end: true,
            dedupe_window: 100,
            commit_interval: Duration::from_secs(1),
        }
    }

    fn received(offset: u64, d: &Decision) -> Received {
        Received {
            partition: 0,
            offset,
            value: Bytes::from(serde_json::to_vec(d).unwrap()),
        }
    }

    #[test]
    fn json_output_is_the_record_unchanged_and_repeats_are_written_once() {
        let freeze = decision("e-1", DecisionKind::Freeze, "c-1", Some(0.999));
        let options = options(Format::Json, Filter::default());
        let (mut dedupe, mut tally, mut out) = (Dedupe::new(10), Tally::default(), Vec::new());
        for offset in 0..2 {
            write_one(
                &received(offset, &freeze),
                &options,
                &mut dedupe,
                &mut tally,
                &mut out,
            )
            .unwrap();
        }
        let not_a_decision = Received {
            partition: 0,
            offset: 2,
            value: Bytes::from_static(b"{\"event_id\":\"e-9\"}"),
        };
        write_one(&not_a_decision, &options, &mut dedupe, &mut tally, &mut out).unwrap();

        let mut expected = serde_json::to_vec(&freeze).unwrap();
        expected.push(b'\n');
        assert_eq!(out, expected);
        assert_eq!(tally.written, [1, 0, 0, 0]);
        assert_eq!((tally.duplicates, tally.unreadable), (1, 1));
    }

    #[test]
    fn readable_output_escapes_control_characters_and_survives_any_event_time() {
        let mut hostile = decision("e-1\n", DecisionKind::Alert, "c-\u{1b}[2J", None);
        hostile.event_ts = i64::MAX;
        let line = render(&hostile);
        assert_eq!(
            line,
            "ALERT    c-\\u{1b}[2J event e-1\\n at 9223372036854775807 ms since the epoch (out of range) | rules only fraud-lr@1 | amount_zscore +2.50"
        );
        hostile.event_ts = -1;
        assert!(render(&hostile).contains("at -1 ms since the epoch (out of range)"));
    }

    #[test]
    fn readable_output_names_the_action_customer_score_and_reasons() {
        let line = render(&decision("e-7", DecisionKind::Freeze, "c-42", Some(0.9992)));
        assert_eq!(
            line,
            "FREEZE   c-42 event e-7 at 2026-05-28T20:26:40.000Z | score 0.9992 fraud-lr@1 | amount_zscore +2.50"
        );
        let filtered = options(
            Format::Readable,
            Filter {
                kinds: vec![DecisionKind::Alert],
                ..Filter::default()
            },
        );
        let (mut dedupe, mut tally, mut out) = (Dedupe::new(10), Tally::default(), Vec::new());
        let freeze = decision("e-7", DecisionKind::Freeze, "c-42", Some(0.9992));
        write_one(
            &received(0, &freeze),
            &filtered,
            &mut dedupe,
            &mut tally,
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        assert_eq!(tally.filtered, 1);
    }
}
