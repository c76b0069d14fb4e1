//! The run's reference data, read beside the events: customer profiles (`--profiles`) and
//! changes to the policy's lists (`--lists`). Each source is opened through the connectors like
//! any source, read up to date before the first event is read, then, when it goes on (a Fluvio
//! topic), followed for the rest of the run, each batch taking effect before the events that
//! follow it are scored. Records that are neither go to the dead-letter output.
//!
//! A profile file is a whole snapshot, read from its start on every run; a profile topic is a
//! changelog, resumed after the last record stored. List changes live in memory over the list
//! files, so their source is read from its start on every run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::{AbortOnDrop, RunOptions};
use crate::dead_letter::{DeadLetter, Rejection};
use crate::error::{ErrorKind, Result};
use crate::event::Offsets;
use crate::outcome::Report;
use crate::profile::{ProfileBook, ProfileFormat, ProfileUpdates};
use crate::scoring::lists::{List, ListChanges};
use crate::source::{Source, SourceOptions, SourceRecord};

/// A followed source that has had nothing new for this long has been read up to date.
const CAUGHT_UP: Duration = Duration::from_millis(500);
/// How long a followed source that failed waits before reading again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Records taken in per commit while loading: a profile commit is a sync to disk.
const LOAD_TRANSACTION: usize = 32_768;

/// What reading a reference-data source did: records taken in (stored or applied) and records
/// refused.
#[derive(Debug, Clone, Copy, Default)]
struct Loaded {
    taken: u64,
    rejected: u64,
}

/// What a kind of reference data does with its source's records.
pub(super) trait Reference: Send + 'static {
    /// What it carries, for logs.
    const WHAT: &'static str;
    /// Takes one record in, or says why it is none of this data.
    fn take(&mut self, record: &SourceRecord) -> Result<Option<Rejection>>;
    /// How many records taken in wait for `commit`.
    fn pending(&self) -> usize;
    /// Makes what was taken in take effect; returns how many records that was.
    fn commit(&mut self) -> Result<u64>;
}

impl Reference for ProfileUpdates {
    const WHAT: &'static str = "profiles";
    fn take(&mut self, record: &SourceRecord) -> Result<Option<Rejection>> {
        ProfileUpdates::take(self, record)
    }
    fn pending(&self) -> usize {
        self.unstored()
    }
    fn commit(&mut self) -> Result<u64> {
        self.store()
    }
}

impl Reference for ListChanges {
    const WHAT: &'static str = "list changes";
    fn take(&mut self, record: &SourceRecord) -> Result<Option<Rejection>> {
        Ok(ListChanges::take(self, record))
    }
    /// Changes apply to the lists as they are taken in.
    fn pending(&self) -> usize {
        0
    }
    fn commit(&mut self) -> Result<u64> {
        Ok(self.applied())
    }
}

/// A reference-data source and what its records go to.
pub(super) struct Feed<R> {
    source: Box<dyn Source>,
    spec: String,
    batch: Vec<SourceRecord>,
    reference: R,
}

impl<R: Reference> Feed<R> {
    /// Whether the source goes on after what it holds now (a topic), rather than ending.
    fn follows(&self) -> bool {
        self.source.partitions().is_some()
    }

    /// Reads one batch and takes it in, each refused record handed to `rejected` as a dead
    /// letter; `false` once the source is exhausted.
    async fn read(&mut self, loaded: &mut Loaded, rejected: &impl Fn(DeadLetter)) -> Result<bool> {
        self.batch.clear();
        let more = self.source.next_batch(&mut self.batch).await?;
        for record in &self.batch {
            if let Some(rejection) = self.reference.take(record)? {
                loaded.rejected += 1;
                rejected(DeadLetter {
                    rejection,
                    raw: record.payload.clone(),
                    position: Some(record.position),
                    cut: record.cut,
                });
            }
        }
        Ok(more)
    }

    fn commit(&mut self, loaded: &mut Loaded) -> Result<()> {
        loaded.taken += self.reference.commit()?;
        Ok(())
    }
}

/// Opens the profile source `spec`: from the start for a file, where the store left it for a
/// topic.
pub(super) async fn open_profiles(
    options: &RunOptions,
    spec: &str,
    book: Arc<ProfileBook>,
) -> Result<Feed<ProfileUpdates>> {
    let config = &options.config;
    let snapshot = spec.starts_with("file:");
    let resume = if snapshot {
        Offsets::new()
    } else {
        book.resume(spec)?
    };
    let source_options = SourceOptions {
        resume: resume.clone(),
        ..SourceOptions::new(config)
    };
    let source = options.connectors.open_source(spec, source_options).await?;
    let format = if snapshot && spec.ends_with(".csv") {
        ProfileFormat::Csv(config.profiles.clone())
    } else {
        ProfileFormat::Json
    };
    Ok(Feed {
        source,
        spec: spec.to_owned(),
        batch: Vec::new(),
        reference: ProfileUpdates::new(spec, book, format, resume),
    })
}

/// Opens the list changes source `spec`, from its start, over `lists`.
pub(super) async fn open_list_changes(
    options: &RunOptions,
    spec: &str,
    lists: Vec<Arc<List>>,
) -> Result<Feed<ListChanges>> {
    let source = options
        .connectors
        .open_source(spec, SourceOptions::new(&options.config))
        .await?;
    Ok(Feed {
        source,
        spec: spec.to_owned(),
        batch: Vec::new(),
        reference: ListChanges::new(lists),
    })
}

/// Reads `feed` up to date; returns the task following it, for a source that goes on.
pub(super) async fn load<R: Reference>(
    mut feed: Feed<R>,
    publisher: UnboundedSender<Report>,
) -> Result<Option<AbortOnDrop>> {
    let started = Instant::now();
    let follows = feed.follows();
    let mut loaded = Loaded::default();
    let refuse = move |letter: DeadLetter| {
        // A closed channel means the run is over.
        let _ = publisher.send(Report::Refused(Box::new(letter)));
    };
    loop {
        let read = feed.read(&mut loaded, &refuse);
        let more = if follows {
            match tokio::time::timeout(CAUGHT_UP, read).await {
                Ok(more) => more?,
                Err(_) => false,
            }
        } else {
            read.await?
        };
        if !more || feed.reference.pending() >= LOAD_TRANSACTION {
            feed.commit(&mut loaded)?;
        }
        if !more {
            break;
        }
    }
    tracing::info!(
        source = %feed.spec,
        taken = loaded.taken,
        rejected = loaded.rejected,
        took_ms = started.elapsed().as_millis() as u64,
        "Read {} up to date.",
        R::WHAT
    );
    if !follows {
        return Ok(None);
    }
    let follow = async move {
        let mut loaded = Loaded::default();
        loop {
            let step = async {
                let more = feed.read(&mut loaded, &refuse).await?;
                // What a failed commit leaves goes with the next.
                feed.commit(&mut loaded)?;
                Ok::<_, crate::error::Error>(more)
            };
            match step.await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) if error.kind() == ErrorKind::External => {
                    tracing::warn!(%error, source = %feed.spec, "Cannot follow {}; retrying.", R::WHAT);
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(error) => {
                    tracing::error!(%error, source = %feed.spec, "Stopped following {}; decisions use what was read so far.", R::WHAT);
                    return;
                }
            }
        }
    };
    Ok(Some(AbortOnDrop(tokio::spawn(follow))))
}
