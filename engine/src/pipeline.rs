//! The pipeline: wires one run together in data-flow order. The ingest loop reads source
//! batches, waits for in-flight room, decodes and validates each record, sends rejects straight
//! to the publisher and the rest to the router in one message per batch; the router feeds the
//! customer actors; the actors' outcomes reach the publisher, which writes the sinks.
//!
//! A run ends when the source is exhausted, the duration elapses or shutdown is requested;
//! in each case every record already taken in is decided and published before `run` returns.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::checkpoint::{Checkpoint, Offsets};
use crate::config::Config;
use crate::customer::{Inbound, Scoring};
use crate::dead_letter::DeadLetter;
use crate::models::ModelWatcher;
use crate::publish::{Audit, Outcome, Publisher, PublisherMsg, RunSummary, Tick};
use crate::router::{Router, RouterArgs, RouterMsg};
use crate::sink::{self, Sink};
use crate::source::{self, Source};
use crate::store::StateStore;
use crate::telemetry::{CheckpointWritten, Telemetry};

/// What to run and where to send it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: Config,
    /// Source spec, e.g. `generate:scenarios/demo.toml`, `file:events.jsonl`, `-`.
    pub source: String,
    /// Decision sink spec, e.g. `stdout`, `file:decisions.jsonl`.
    pub sink: String,
    /// Dead-letter sink spec.
    pub dead_letter: String,
    /// Stop reading after this long.
    pub duration: Option<Duration>,
    /// Print a one-line summary every second.
    pub live: bool,
    /// Where checkpoints are kept; a run with a state directory resumes where the last one
    /// with the same source stopped.
    pub state_dir: Option<PathBuf>,
    /// Stop after taking in this many records.
    pub max_records: Option<u64>,
    /// Read only these source partitions (all when `None`).
    pub partitions: Option<Vec<u32>>,
    /// Where each second's progress goes, for a caller that follows the run.
    pub ticks: Option<mpsc::UnboundedSender<Tick>>,
    /// A column mapping: the `file:` source is CSV history read through it.
    pub mapping: Option<PathBuf>,
    /// Where challengers' would-be decisions go (sink spec).
    pub shadow: String,
    /// Where each scored event's `Audit` goes, when someone wants them (replay).
    pub audit: Option<mpsc::UnboundedSender<Audit>>,
}

/// A source or sinks supplied in code rather than by spec: a load-test runner's own decision
/// sink, or a test's source with a known fault. Any left `None` is opened from its spec.
#[derive(Default)]
pub struct Endpoints {
    pub source: Option<Box<dyn Source>>,
    pub decisions: Option<Box<dyn Sink>>,
    pub dead_letters: Option<Box<dyn Sink>>,
}

impl RunOptions {
    /// A run from `source` to `sink` with dead letters to `dead_letter`, and no live summary,
    /// state, record limit, partition choice or duration.
    pub fn new(config: Config, source: &str, sink: &str, dead_letter: &str) -> Self {
        RunOptions {
            config,
            source: source.to_owned(),
            sink: sink.to_owned(),
            dead_letter: dead_letter.to_owned(),
            duration: None,
            live: false,
            state_dir: None,
            max_records: None,
            partitions: None,
            ticks: None,
            mapping: None,
            shadow: "discard".to_owned(),
            audit: None,
        }
    }
}

/// Runs the pipeline until the source ends, `duration` passes or `shutdown` resolves.
pub async fn run(
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<RunSummary> {
    run_with(options, Endpoints::default(), shutdown).await
}

/// `run`, with any of the source and sinks supplied in code.
pub async fn run_with(
    options: RunOptions,
    endpoints: Endpoints,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<RunSummary> {
    let config = &options.config;
    let telemetry = Telemetry::new();
    // Hot swap: the watcher looks at the artifact files before they are loaded, and lives as
    // long as the run.
    let watcher = ModelWatcher::new(&config.models, telemetry.clone());
    let model_changes = watcher.counts();
    let mut scoring =
        Scoring::from_config(config, telemetry.clone()).context("cannot load models")?;
    scoring.audit = options.audit.is_some();
    let scoring = Arc::new(scoring);
    let _watching = (!config.models.watch_interval.is_zero()).then(|| {
        let run = watcher.run(scoring.models.clone(), config.models.watch_interval);
        AbortOnDrop(tokio::spawn(run))
    });

    let store = Arc::new(StateStore::open(options.state_dir.as_deref())?);
    // With a state directory, checkpoints live in the store with the customers' state; the
    // JSON file beside it mirrors them for operators (and is read when the store has none).
    let checkpoint = options
        .state_dir
        .as_ref()
        .map(|dir| Checkpoint::new(dir, &options.source));
    let resume = match &checkpoint {
        Some(file) => match store.offsets(&options.source)? {
            Some(offsets) => offsets,
            None => file.load()?,
        },
        None => Offsets::new(),
    };
    if !resume.is_empty() {
        tracing::info!(?resume, "Resuming from checkpoint.");
    }
    let (committed, committed_rx) = watch::channel(resume.clone());
    let mut source = match endpoints.source {
        Some(source) => source,
        None => {
            source::open(
                &options.source,
                source::SourceOptions {
                    resume: resume.clone(),
                    partitions: options.partitions.clone(),
                    committed: Some(committed_rx),
                    fluvio: config.fluvio.clone(),
                    mapping: options.mapping.clone(),
                },
            )
            .await?
        }
    };
    let decoder = source.decoder();
    let decisions = match endpoints.decisions {
        Some(sink) => sink,
        None => sink::open(&options.sink, &config.fluvio).await?,
    };
    let dead_letters = match endpoints.dead_letters {
        Some(sink) => sink,
        None => sink::open(&options.dead_letter, &config.fluvio).await?,
    };
    // Without a challenger there is nothing to shadow (and no empty file to leave behind).
    let challenged =
        config.models.fraud_challenger.is_some() || config.models.churn_challenger.is_some();
    let shadow = sink::open(
        if challenged {
            &options.shadow
        } else {
            "discard"
        },
        &config.fluvio,
    )
    .await?;

    let in_flight = Arc::new(Semaphore::new(config.engine.max_in_flight));
    let actors = Arc::new(AtomicU64::new(0));
    let (to_publisher, inbox) = mpsc::unbounded_channel::<PublisherMsg>();
    let publisher = tokio::spawn(
        Publisher {
            decisions,
            dead_letters,
            shadow,
            audit: options.audit.clone(),
            telemetry,
            in_flight: in_flight.clone(),
            live: options.live,
            ticks: options.ticks.clone(),
            actors: actors.clone(),
            committed,
        }
        .run(inbox),
    );
    let (router, router_task) = Actor::spawn(
        None,
        Router,
        RouterArgs {
            scoring: scoring.clone(),
            publisher: to_publisher.clone(),
            actors,
            passivation: config.engine.passivation,
            store,
            checkpoints: checkpoint.as_ref().map(|_| options.source.clone()),
        },
    )
    .await
    .context("cannot start the router")?;

    tracing::info!(source = %source.describe(), "Reading.");
    let started = Instant::now();
    let deadline = options.duration.map(|d| started + d);
    let max_record_bytes = config.engine.max_record_bytes;
    let mut records = 0u64;
    // Where each partition resumes once everything taken in is published.
    let mut taken_up_to = resume.clone();
    let mut checkpoints = Checkpoints {
        file: checkpoint,
        every: config.engine.checkpoint_interval,
        next: Instant::now() + config.engine.checkpoint_interval,
        taken: 0,
        longest: Duration::ZERO,
    };
    let mut batch = Vec::with_capacity(source::MAX_BATCH);
    tokio::pin!(shutdown);
    let mut stopping = false;
    loop {
        if checkpoints.due() {
            // Pause: once every permit is back, everything taken in is published.
            let everything = tokio::select! {
                all = in_flight.acquire_many(config.engine.max_in_flight as u32) => Some(all),
                _ = &mut shutdown, if !stopping => None,
            };
            let Some(everything) = everything else {
                stopping = true;
                break;
            };
            let everything = everything.context("in-flight limiter closed")?;
            checkpoints
                .take(&router, &taken_up_to, &scoring.telemetry)
                .await?;
            drop(everything);
        }
        batch.clear();
        let more = tokio::select! {
            more = source.next_batch(&mut batch) => more?,
            _ = &mut shutdown => {
                stopping = true;
                false
            }
            _ = sleep_until(deadline) => false,
        };
        if let Some(max) = options.max_records {
            // Records past the limit are not taken in: a resumed run reads them again.
            batch.truncate(max.saturating_sub(records) as usize);
        }
        let limit_reached = options
            .max_records
            .is_some_and(|max| records + batch.len() as u64 >= max);
        if !batch.is_empty() {
            let room = tokio::select! {
                room = in_flight.acquire_many(batch.len() as u32) => Some(room),
                _ = &mut shutdown, if !stopping => None,
            };
            let Some(room) = room else {
                // Not taken in: a resumed run reads this batch again.
                stopping = true;
                break;
            };
            room.context("in-flight limiter closed")?.forget();
            records += batch.len() as u64;
            for record in &batch {
                let next = taken_up_to.entry(record.position.partition).or_default();
                *next = (*next).max(record.position.offset + 1);
            }
            let _ = to_publisher.send(PublisherMsg::Taken {
                positions: batch.iter().map(|r| r.position).collect(),
                backlog: source.backlog(),
            });
            let mut routed = Vec::with_capacity(batch.len());
            for record in batch.drain(..) {
                match decoder.decode(&record.payload, max_record_bytes, record.position.offset) {
                    Ok(event) => routed.push(Inbound {
                        event,
                        position: record.position,
                        ingested: record.ingested,
                        raw: record.payload,
                    }),
                    Err(rejection) => {
                        let letter = DeadLetter {
                            rejection,
                            raw: record.payload,
                            position: record.position,
                        };
                        let _ = to_publisher.send(PublisherMsg::Outcome(Outcome::Rejected {
                            letter: Box::new(letter),
                            kind: None,
                            ingested: record.ingested,
                        }));
                    }
                }
            }
            if !routed.is_empty() {
                router
                    .send_message(RouterMsg::Route(routed))
                    .map_err(|_| anyhow::anyhow!("the router stopped"))?;
            }
        }
        if !more || limit_reached || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    let _ = to_publisher.send(PublisherMsg::SourceDone { records });
    drop(to_publisher);
    let publisher = if stopping {
        let grace = config.engine.shutdown_deadline;
        tracing::info!(
            deadline = ?grace,
            "Shutdown requested; draining what is in flight."
        );
        tokio::time::timeout(grace, publisher).await.map_err(|_| {
            anyhow::anyhow!(
                "shutdown deadline of {} passed before every record taken in was published \
                 (engine.shutdown_deadline); the checkpoint stays below them, so a restart \
                 reads them again",
                humantime::format_duration(grace)
            )
        })?
    } else {
        publisher.await
    };
    let mut summary = publisher.context("publisher task failed")?;
    if checkpoints.file.is_some() {
        // Everything taken in is published: the last checkpoint covers all of it.
        checkpoints
            .take(&router, &taken_up_to, &scoring.telemetry)
            .await?;
    }
    (summary.checkpoints, summary.checkpoint_longest) = (checkpoints.taken, checkpoints.longest);
    let stats = ractor::call!(router, RouterMsg::Stats).context("the router stopped")?;
    (summary.passivations, summary.restores) = (stats.passivations, stats.restores);
    summary.model_swaps = model_changes.swaps.load(Ordering::Relaxed);
    summary.model_rejections = model_changes.rejections.load(Ordering::Relaxed);
    router.stop(None);
    router_task.await.ok();
    Ok(summary)
}

/// Aligned checkpoints, when the run keeps state: every `every`, the ingest loop pauses until
/// everything in flight is published, and the router writes the touched customers' state with
/// the offsets in one store transaction; the JSON file then mirrors the offsets.
struct Checkpoints {
    file: Option<Checkpoint>,
    every: Duration,
    next: Instant,
    taken: u64,
    longest: Duration,
}

impl Checkpoints {
    fn due(&self) -> bool {
        self.file.is_some() && Instant::now() >= self.next
    }

    /// Takes one; the caller has made sure nothing is in flight.
    async fn take(
        &mut self,
        router: &ActorRef<RouterMsg>,
        offsets: &Offsets,
        telemetry: &Telemetry,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let written = router
            .call(
                |reply| RouterMsg::Checkpoint {
                    offsets: offsets.clone(),
                    reply,
                },
                None,
            )
            .await
            .map_err(|_| anyhow::anyhow!("the router stopped before the checkpoint"))?;
        let CallResult::Success(written) = written else {
            anyhow::bail!("the router stopped before the checkpoint");
        };
        let written = written.map_err(|e| anyhow::anyhow!("cannot write the checkpoint: {e}"))?;
        if let Some(file) = &self.file {
            file.save(offsets)?;
        }
        let paused = started.elapsed();
        telemetry.emit(CheckpointWritten {
            customers: written.customers,
            bytes: written.bytes,
            took: paused,
        });
        self.taken += 1;
        self.longest = self.longest.max(paused);
        self.next = Instant::now() + self.every;
        Ok(())
    }
}

/// A task that is stopped when its handle goes out of scope.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
