//! The pipeline: wires one run together in data-flow order, runs the ingest loop, then drains.
//!
//! - `connectors` opens the source and sinks from their specs;
//! - the publisher (`publish`) and the router (`actors::router`) are started, the router
//!   feeding the customer actors, whose outcomes reach the publisher;
//! - `reference` reads the reference data beside the events: customer profiles and changes
//!   to the policy's lists, up to date before the first event, then followed;
//! - `ingest` reads, decodes and routes until the source is exhausted, the duration elapses or
//!   shutdown is requested, pausing at the checkpoint `barrier`; it keeps the `watermark`,
//!   which drives the customers' inactivity checks;
//! - in each case every record already taken in is decided and published before `run`
//!   returns (within `engine.shutdown_deadline` after a shutdown), and a run that keeps state
//!   takes a last checkpoint.

mod barrier;
pub mod connectors;
mod ingest;
pub mod lookout;
mod reference;
pub mod watermark;

pub use connectors::{Connectors, SinkOptions};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::actors::router::{Router, RouterArgs, RouterMsg};
use crate::config::Config;
use crate::decode::Decoder;
use crate::error::{Error, Result};
use crate::event::Offsets;
use crate::outcome::{Audit, Report};
use crate::profile::ProfileBook;
use crate::publish::{Publisher, Route, RunSummary, Sinks, Tick};
use crate::scoring::live_policy::{load_candidate, PolicyRole, PolicyWatcher};
use crate::scoring::models::{ModelWatcher, WatchCounts};
use crate::scoring::{AfterFeatures, Scoring};
use crate::sink::Sink;
use crate::source::{PartitionChoice, Source, SourceOptions};
use crate::state::checkpoint::Checkpoint;
use crate::state::store::StateStore;
use crate::telemetry::Telemetry;
use barrier::Barrier;
use ingest::{Ingest, Ingested};
use lookout::Lookout;
use watermark::Watermark;

/// What to run and where to send it.
#[derive(Clone)]
pub struct RunOptions {
    pub config: Config,
    /// The sources and sinks specs are looked up in.
    pub connectors: Connectors,
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
    /// Which source partitions to read.
    pub partitions: PartitionChoice,
    /// Rebuild the customers' state from the log into an empty state directory, publishing
    /// nothing for what was decided before (Fluvio).
    pub rebuild: bool,
    /// Where each second's progress goes, for a caller that follows the run.
    pub ticks: Option<mpsc::UnboundedSender<Tick>>,
    /// A column mapping: the `file:` source is CSV history read through it.
    pub mapping: Option<PathBuf>,
    /// Where challengers' would-be decisions go (sink spec).
    pub shadow: String,
    /// Where each scored event's `Audit` goes, when someone wants them (replay).
    pub audit: Option<mpsc::UnboundedSender<Audit>>,
    /// Called on every event once its features are computed; the fault tests' seam.
    pub after_features: Option<AfterFeatures>,
    /// Where customer profiles come from (source spec), when decisions use them.
    pub profiles: Option<String>,
    /// Where changes to the policy's lists come from (source spec).
    pub lists: Option<String>,
    /// What the run shows the risk console, when one watches it.
    pub lookout: Option<Arc<Lookout>>,
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
    /// A run from `source` to `sink` with dead letters to `dead_letter`, through the built-in
    /// connectors, and no live summary, state, record limit, partition choice or duration.
    pub fn new(config: Config, source: &str, sink: &str, dead_letter: &str) -> Self {
        RunOptions {
            config,
            connectors: Connectors::builtin(),
            source: source.to_owned(),
            sink: sink.to_owned(),
            dead_letter: dead_letter.to_owned(),
            duration: None,
            live: false,
            state_dir: None,
            max_records: None,
            partitions: PartitionChoice::All,
            rebuild: false,
            ticks: None,
            mapping: None,
            shadow: "discard".to_owned(),
            audit: None,
            after_features: None,
            profiles: None,
            lists: None,
            lookout: None,
        }
    }
}

/// Runs the pipeline until the source ends, `duration` passes or `shutdown` resolves.
pub async fn run(options: RunOptions, shutdown: impl Future<Output = ()>) -> Result<RunSummary> {
    run_with(options, Endpoints::default(), shutdown).await
}

/// `run`, with any of the source and sinks supplied in code.
pub async fn run_with(
    options: RunOptions,
    endpoints: Endpoints,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary> {
    let config = &options.config;
    let telemetry = Telemetry::new();
    let store = Arc::new(StateStore::open(options.state_dir.as_deref())?);
    let profiles = options.profiles.as_ref().map(|_| {
        Arc::new(ProfileBook::new(
            store.clone(),
            &config.profiles,
            telemetry.clone(),
        ))
    });
    let models = start_models(&options, profiles.clone(), telemetry.clone())?;
    let scoring = models.scoring.clone();
    // With a state directory, checkpoints live in the store with the customers' state; the
    // JSON file beside it mirrors them for operators (and is read when the store has none).
    let checkpoint = options
        .state_dir
        .as_ref()
        .map(|dir| Checkpoint::new(dir, &options.source));
    let resume = resume_offsets(&store, checkpoint.as_ref(), &options.source)?;
    let mut watermark = Watermark::new(
        &store.event_times(&options.source)?,
        config.engine.late_tolerance,
        config.engine.idle_partition_timeout,
        config.engine.max_future_skew,
        Instant::now(),
    );
    if options.rebuild && (!resume.is_empty() || store.partitions(&options.source)?.is_some()) {
        return Err(Error::Config {
            layer: "the command line".into(),
            key: "--rebuild".into(),
            reason: format!(
                "rebuilds state from the log into an empty state directory, and {} already holds {}'s: move it aside first",
                options.state_dir.as_deref().unwrap_or(Path::new("the state directory")).display(),
                options.source
            ),
        });
    }
    let stored_marks = store.replayed(&options.source)?;
    let (committed, committed_rx) = watch::channel(resume.clone());
    let opening = Opening {
        resume: &resume,
        replayed: stored_marks.clone(),
        committed: committed_rx,
    };
    let (source, sinks) = open_endpoints(&options, endpoints, opening).await?;
    let reading = source.partitions();
    if let Some(reading) = &reading {
        watermark.expect(reading, Instant::now());
        if let Some(dir) = &options.state_dir {
            claim_partitions(&store, dir, &options.source, reading.clone())?;
        }
    }
    let replayed = if options.rebuild {
        if reading.is_none() {
            return Err(Error::Config {
                layer: "the command line".into(),
                key: "--rebuild".into(),
                reason: format!(
                    "rebuilds state from a Fluvio topic's log and its consumer offsets; {} has neither",
                    options.source
                ),
            });
        }
        let replayed = source.replayed();
        store.set_replayed(&options.source, &replayed)?;
        tracing::info!(
            ?replayed,
            "Rebuilding state from the log; publishing from these offsets on."
        );
        replayed
    } else {
        stored_marks
    };
    let decoder = Decoder::for_format(&source.format())?;

    let in_flight = Arc::new(Semaphore::new(config.engine.max_in_flight));
    let actors = Arc::new(AtomicU64::new(0));
    let (to_publisher, inbox) = mpsc::unbounded_channel::<Report>();
    // Reference data is read up to date before the run's clock starts; the records refused
    // wait in the publisher's inbox.
    let _following_profiles = match (&options.profiles, &profiles) {
        (Some(spec), Some(book)) => {
            let feed = reference::open_profiles(&options, spec, book.clone()).await?;
            reference::load(feed, to_publisher.clone()).await?
        }
        _ => None,
    };
    let _following_lists = match &options.lists {
        Some(spec) => {
            let lists = scoring.policy.current().lists().to_vec();
            let feed = reference::open_list_changes(&options, spec, lists).await?;
            reference::load(feed, to_publisher.clone()).await?
        }
        None => None,
    };
    let publisher = tokio::spawn(
        Publisher {
            sinks,
            audit: options.audit.clone(),
            telemetry: telemetry.clone(),
            in_flight: in_flight.clone(),
            live: options.live,
            ticks: options.ticks.clone(),
            following: options.lookout.as_ref().map(|l| l.following.clone()),
            actors: actors.clone(),
            committed,
            dead_letter_raw_bytes: config.engine.dead_letter_raw_bytes,
            replayed,
        }
        .run(inbox),
    );
    let (router, router_task) = Actor::spawn(
        None,
        Router,
        RouterArgs {
            scoring: scoring.clone(),
            publisher: to_publisher.clone(),
            actors: actors.clone(),
            passivation: config.engine.passivation,
            store,
            checkpoints: checkpoint.as_ref().map(|_| options.source.clone()),
            watermark: watermark.current(),
        },
    )
    .await
    .map_err(|e| Error::Bug(format!("cannot start the router: {e}")))?;
    if let Some(lookout) = &options.lookout {
        lookout.started(scoring.clone(), router.clone(), actors);
    }

    tracing::info!(source = %source.describe(), "Reading.");
    let ingest = Ingest {
        source,
        decoder,
        max_record_bytes: config.engine.max_record_bytes,
        in_flight: in_flight.clone(),
        max_in_flight: config.engine.max_in_flight as u32,
        router: router.clone(),
        publisher: to_publisher,
        max_records: options.max_records,
        deadline: options.duration.map(|d| Instant::now() + d),
        barrier: Barrier::new(checkpoint, config.engine.checkpoint_interval),
        watermark,
        telemetry,
        lookout: options.lookout.clone(),
    };
    let ingested = match ingest.run(resume, shutdown).await {
        Ok(ingested) => ingested,
        Err(error) => {
            router.stop(None);
            // The publisher closes the limiter only when it stops on a sink error, and returns
            // that error at once: it is why the ingest loop stopped.
            if in_flight.is_closed() {
                return Err(joined(publisher.await)?.err().unwrap_or(error));
            }
            return Err(error);
        }
    };
    let summary = drain(publisher, &ingested, config).await?;
    finish(summary, ingested, router, router_task, &models).await
}

/// The models and policy every customer scores with, and the watcher that swaps in new
/// artifacts while the run lasts.
struct Models {
    scoring: Arc<Scoring>,
    changes: Arc<WatchCounts>,
    /// Stops the watchers when the run ends.
    _watching: Option<AbortOnDrop>,
    _watching_policies: Vec<AbortOnDrop>,
}

fn start_models(
    options: &RunOptions,
    profiles: Option<Arc<ProfileBook>>,
    telemetry: Telemetry,
) -> Result<Models> {
    let config = &options.config;
    // The watcher looks at the artifact files before they are loaded, so a file replaced
    // while they load is loaded again.
    let watcher = ModelWatcher::new(config, telemetry.clone());
    let changes = watcher.counts();
    let mut scoring = Scoring::from_config(config, telemetry)?;
    scoring.audit = options.audit.is_some();
    scoring.after_features = options.after_features.clone();
    scoring.profiles = profiles;
    let lists = scoring.policy.current().lists().to_vec();
    // Each policy file the run watches: the path, its role, the policy read from it, and
    // where it serves.
    let mut watched = Vec::new();
    if let Some(path) = &config.policy.file {
        watched.push((
            path.clone(),
            PolicyRole::Champion,
            config.policy.clone(),
            scoring.policy.clone(),
        ));
    }
    if let Some((serving, live)) = load_candidate(
        config,
        lists.clone(),
        &scoring.models.current(),
        &scoring.telemetry,
    )? {
        let live = Arc::new(live);
        scoring.candidate = Some(live.clone());
        let path = config
            .policy
            .shadow
            .clone()
            .expect("a candidate comes from policy.shadow");
        watched.push((path, PolicyRole::Candidate, serving, live));
    }
    let scoring = Arc::new(scoring);
    let interval = config.models.watch_interval;
    let watching = (!interval.is_zero())
        .then(|| AbortOnDrop(tokio::spawn(watcher.run(scoring.models.clone(), interval))));
    let policy_interval = config.policy.watch_interval.unwrap_or_default();
    let watching_policies = if policy_interval.is_zero() {
        Vec::new()
    } else {
        watched
            .into_iter()
            .map(|(path, role, serving, live)| {
                let watcher = PolicyWatcher::new(
                    path,
                    role,
                    serving,
                    lists.clone(),
                    scoring.telemetry.clone(),
                );
                let run = watcher.run(live, scoring.models.clone(), policy_interval);
                AbortOnDrop(tokio::spawn(run))
            })
            .collect()
    };
    Ok(Models {
        scoring,
        changes,
        _watching: watching,
        _watching_policies: watching_policies,
    })
}

/// Where the run resumes: the store's checkpoint, else the offsets file, else the beginning.
fn resume_offsets(
    store: &StateStore,
    checkpoint: Option<&Checkpoint>,
    source: &str,
) -> Result<Offsets> {
    let resume = match checkpoint {
        Some(file) => match store.offsets(source)? {
            Some(offsets) => offsets,
            None => file.load()?,
        },
        None => Offsets::new(),
    };
    if !resume.is_empty() {
        tracing::info!(?resume, "Resuming from checkpoint.");
    }
    Ok(resume)
}

/// Makes sure the state in `dir` is for the partitions the run reads, and records them when it
/// holds none yet: another instance's customers, or half of them, would be scored on a cold
/// start without a word.
fn claim_partitions(store: &StateStore, dir: &Path, source: &str, reading: Vec<u32>) -> Result<()> {
    match store.partitions(source)? {
        Some(held) if held != reading => Err(Error::PartitionsMoved {
            dir: dir.to_owned(),
            spec: source.to_owned(),
            held,
            reading,
        }),
        Some(_) => Ok(()),
        None => store.claim_partitions(source, &reading),
    }
}

/// Where an opened source starts and what it may commit.
struct Opening<'a> {
    resume: &'a Offsets,
    replayed: Offsets,
    committed: watch::Receiver<Offsets>,
}

/// Opens whatever `endpoints` does not supply, from the specs in `options`.
async fn open_endpoints(
    options: &RunOptions,
    endpoints: Endpoints,
    opening: Opening<'_>,
) -> Result<(Box<dyn Source>, Sinks)> {
    let fluvio = &options.config.fluvio;
    let connectors = &options.connectors;
    let source = match endpoints.source {
        Some(source) => source,
        None => {
            let source_options = SourceOptions {
                resume: opening.resume.clone(),
                partitions: options.partitions.clone(),
                rebuild: options.rebuild,
                replayed: opening.replayed,
                committed: Some(opening.committed),
                fluvio: fluvio.clone(),
                mapping: options.mapping.clone(),
                max_record_bytes: options.config.engine.max_record_bytes,
            };
            connectors
                .open_source(&options.source, source_options)
                .await?
        }
    };
    let config = &options.config;
    let decisions = match endpoints.decisions {
        Some(sink) => sink,
        None => connectors.open_sink(&options.sink, config).await?,
    };
    let dead_letters = match endpoints.dead_letters {
        Some(sink) => sink,
        None => connectors.open_sink(&options.dead_letter, config).await?,
    };
    let mut routes = Vec::with_capacity(config.sinks.len());
    for route in &config.sinks {
        let settings = SinkOptions {
            fluvio: fluvio.clone(),
            webhook: route.webhook(&config.webhook),
            connectors: connectors.clone(),
        };
        routes.push(Route {
            kinds: route.decisions.clone(),
            sink: connectors.open_sink_with(&route.sink, settings).await?,
        });
    }
    // Without a challenger or a candidate policy there is nothing to shadow (and no empty file
    // to leave behind).
    let models = &options.config.models;
    let challenged = models.fraud_challenger.is_some()
        || models.churn_challenger.is_some()
        || options.config.policy.shadow.is_some();
    let shadow_spec = if challenged {
        &options.shadow
    } else {
        "discard"
    };
    let shadow = connectors.open_sink(shadow_spec, config).await?;
    Ok((
        source,
        Sinks {
            decisions,
            dead_letters,
            shadow,
            routes,
        },
    ))
}

/// Waits until the publisher has published everything taken in: after a shutdown request, for
/// at most `engine.shutdown_deadline`.
async fn drain(
    publisher: JoinHandle<Result<RunSummary>>,
    ingested: &Ingested,
    config: &Config,
) -> Result<RunSummary> {
    if !ingested.stopping {
        return joined(publisher.await)?;
    }
    let grace = config.engine.shutdown_deadline;
    tracing::info!(deadline = ?grace, "Shutdown requested; draining what is in flight.");
    let published =
        tokio::time::timeout(grace, publisher)
            .await
            .map_err(|_| Error::ShutdownDeadline {
                deadline: humantime::format_duration(grace).to_string(),
            })?;
    joined(published)?
}

/// The last checkpoint (everything taken in is published, so it covers all of it), then the
/// run's figures from the router and the model watcher, then the router stops.
async fn finish(
    mut summary: RunSummary,
    ingested: Ingested,
    router: ActorRef<RouterMsg>,
    router_task: JoinHandle<()>,
    models: &Models,
) -> Result<RunSummary> {
    let mut barrier = ingested.barrier;
    if barrier.file.is_some() {
        barrier
            .take(
                &router,
                &ingested.taken_up_to,
                &ingested.event_times,
                &models.scoring.telemetry,
            )
            .await?;
    }
    (summary.checkpoints, summary.checkpoint_longest) = (barrier.taken, barrier.longest);
    let stats = ractor::call!(router, RouterMsg::Stats)
        .map_err(|_| Error::Bug("the router stopped before its figures were read".into()))?;
    (summary.passivations, summary.restores) = (stats.passivations, stats.restores);
    summary.model_swaps = models.changes.swaps.load(Ordering::Relaxed);
    summary.model_rejections = models.changes.rejections.load(Ordering::Relaxed);
    router.stop(None);
    router_task.await.ok();
    Ok(summary)
}

/// A task's result, with a panic in it reported as the bug it is.
fn joined<T>(result: std::result::Result<T, tokio::task::JoinError>) -> Result<T> {
    result.map_err(|e| Error::Bug(format!("the publisher task failed: {e}")))
}

/// A task that is stopped when its handle goes out of scope.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
