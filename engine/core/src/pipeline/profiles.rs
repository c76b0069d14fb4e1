//! The run's profile source (`--profiles`): opened through the connectors like any source,
//! read to its end into the state store before the first event is read, then, for a source
//! that goes on (a Fluvio topic), followed for the rest of the run. A file is a whole snapshot
//! and is read from its start on every run; a topic is a changelog, resumed after the last
//! record stored. Records that are no profile go to the dead-letter output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::{AbortOnDrop, RunOptions};
use crate::dead_letter::DeadLetter;
use crate::error::{ErrorKind, Result};
use crate::event::Offsets;
use crate::outcome::Report;
use crate::profile::{Loaded, ProfileBook, ProfileFeed, ProfileFormat};
use crate::source::SourceOptions;

/// A followed source that has had nothing new for this long has been read up to date.
const CAUGHT_UP: Duration = Duration::from_millis(500);
/// How long a followed source that failed waits before reading again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Profiles stored per transaction while loading: each commit is a sync to disk.
const LOAD_TRANSACTION: usize = 32_768;

/// Opens the profile source `spec`: from the start for a file, where the store left it for a
/// topic.
pub(super) async fn open(
    options: &RunOptions,
    spec: &str,
    book: Arc<ProfileBook>,
) -> Result<ProfileFeed> {
    let config = &options.config;
    let snapshot = spec.starts_with("file:");
    let mut source_options = SourceOptions::new(config);
    let resume = if snapshot {
        Offsets::new()
    } else {
        book.resume(spec)?
    };
    source_options.resume = resume.clone();
    let source = options.connectors.open_source(spec, source_options).await?;
    let format = if snapshot && spec.ends_with(".csv") {
        ProfileFormat::Csv(config.profiles.clone())
    } else {
        ProfileFormat::Json
    };
    Ok(ProfileFeed::new(source, spec, book, format, resume))
}

/// Reads the profile source up to date; returns the task following it, for a source that
/// goes on.
pub(super) async fn load(
    mut feed: ProfileFeed,
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
        if !more || feed.unstored() >= LOAD_TRANSACTION {
            feed.store(&mut loaded)?;
        }
        if !more {
            break;
        }
    }
    tracing::info!(
        source = %feed.spec(),
        stored = loaded.stored,
        rejected = loaded.rejected,
        took_ms = started.elapsed().as_millis() as u64,
        "Profiles loaded."
    );
    if !follows {
        return Ok(None);
    }
    let follow = async move {
        let mut loaded = Loaded::default();
        loop {
            match feed.step(&mut loaded, &refuse).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) if error.kind() == ErrorKind::External => {
                    tracing::warn!(%error, source = %feed.spec(), "Cannot read profiles; retrying.");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(error) => {
                    tracing::error!(%error, source = %feed.spec(), "Stopped following profiles; decisions use the profiles stored so far.");
                    return;
                }
            }
        }
    };
    Ok(Some(AbortOnDrop(tokio::spawn(follow))))
}
