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

use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedSender;

use super::{AbortOnDrop, RunOptions};
use crate::dead_letter::DeadLetter;
use crate::error::{ErrorKind, Result};
use crate::event::Offsets;
use crate::outcome::Report;
use crate::profile::{Loaded, ProfileBook, ProfileFeed, ProfileFormat};
use crate::scoring::lists::{List, ListFeed};
use crate::source::SourceOptions;

/// A followed source that has had nothing new for this long has been read up to date.
const CAUGHT_UP: Duration = Duration::from_millis(500);
/// How long a followed source that failed waits before reading again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Records taken in per commit while loading: a profile commit is a sync to disk.
const LOAD_TRANSACTION: usize = 32_768;

/// A source of reference data.
#[async_trait]
pub(super) trait Feed: Send + 'static {
    /// What it carries, for logs.
    fn what(&self) -> &'static str;
    fn spec(&self) -> &str;
    /// Whether the source goes on after what it holds now.
    fn follows(&self) -> bool;
    /// Reads one batch; `false` once the source is exhausted.
    async fn read(
        &mut self,
        loaded: &mut Loaded,
        rejected: &(dyn Fn(DeadLetter) + Send + Sync),
    ) -> Result<bool>;
    /// How many records read wait for `commit`.
    fn pending(&self) -> usize;
    /// Makes what was read take effect.
    fn commit(&mut self, loaded: &mut Loaded) -> Result<()>;
}

#[async_trait]
impl Feed for ProfileFeed {
    fn what(&self) -> &'static str {
        "profiles"
    }
    fn spec(&self) -> &str {
        ProfileFeed::spec(self)
    }
    fn follows(&self) -> bool {
        ProfileFeed::follows(self)
    }
    async fn read(
        &mut self,
        loaded: &mut Loaded,
        rejected: &(dyn Fn(DeadLetter) + Send + Sync),
    ) -> Result<bool> {
        ProfileFeed::read(self, loaded, rejected).await
    }
    fn pending(&self) -> usize {
        self.unstored()
    }
    fn commit(&mut self, loaded: &mut Loaded) -> Result<()> {
        self.store(loaded)
    }
}

#[async_trait]
impl Feed for ListFeed {
    fn what(&self) -> &'static str {
        "list changes"
    }
    fn spec(&self) -> &str {
        ListFeed::spec(self)
    }
    fn follows(&self) -> bool {
        ListFeed::follows(self)
    }
    async fn read(
        &mut self,
        loaded: &mut Loaded,
        rejected: &(dyn Fn(DeadLetter) + Send + Sync),
    ) -> Result<bool> {
        ListFeed::read(self, loaded, rejected).await
    }
    /// Changes apply to the lists as they are read.
    fn pending(&self) -> usize {
        0
    }
    fn commit(&mut self, _: &mut Loaded) -> Result<()> {
        Ok(())
    }
}

/// Opens the profile source `spec`: from the start for a file, where the store left it for a
/// topic.
pub(super) async fn open_profiles(
    options: &RunOptions,
    spec: &str,
    book: Arc<ProfileBook>,
) -> Result<ProfileFeed> {
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
    Ok(ProfileFeed::new(source, spec, book, format, resume))
}

/// Opens the list changes source `spec`, from its start, over `lists`.
pub(super) async fn open_list_changes(
    options: &RunOptions,
    spec: &str,
    lists: Vec<Arc<List>>,
) -> Result<ListFeed> {
    let source = options
        .connectors
        .open_source(spec, SourceOptions::new(&options.config))
        .await?;
    Ok(ListFeed::new(source, spec, lists))
}

/// Reads `feed` up to date; returns the task following it, for a source that goes on.
pub(super) async fn load(
    mut feed: impl Feed,
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
        if !more || feed.pending() >= LOAD_TRANSACTION {
            feed.commit(&mut loaded)?;
        }
        if !more {
            break;
        }
    }
    tracing::info!(
        source = %feed.spec(),
        taken = loaded.stored,
        rejected = loaded.rejected,
        took_ms = started.elapsed().as_millis() as u64,
        "Read {} up to date.", feed.what()
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
                    tracing::warn!(%error, source = %feed.spec(), "Cannot follow {}; retrying.", feed.what());
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(error) => {
                    tracing::error!(%error, source = %feed.spec(), "Stopped following {}; decisions use what was read so far.", feed.what());
                    return;
                }
            }
        }
    };
    Ok(Some(AbortOnDrop(tokio::spawn(follow))))
}
