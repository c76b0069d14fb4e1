//! The engine's one error type. Every failure says what failed and, through `kind()`, what to
//! do about it: a sink or source retries an `External` failure with backoff, sends a record
//! refused as `InvalidInput` to the dead-letter output, and stops the run on `Configuration`
//! or `Bug`. Bad *events* are not errors at all: they are `Rejection`s that become dead
//! letters (see `dead_letter`).
//!
//! Each message is whole on its own, cause included, so a log line that prints it with `{}`
//! says everything; causes are therefore not also chained as `source()`, which would print
//! them twice.

use std::path::PathBuf;

/// What a failure means for whoever meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// This record can never be delivered or read as it is: dead-letter it, carry on.
    InvalidInput,
    /// Something outside the engine failed (a broker, a disk): retry with backoff.
    External,
    /// The engine was asked for something it cannot do: stop and say which setting.
    Configuration,
    /// The engine broke its own rules: stop, and report it.
    Bug,
}

/// A connector's own error, kept whole for its cause chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value the engine cannot run with; `layer` is where it came from.
    #[error("invalid configuration in {layer}: `{key}` {reason}")]
    Config {
        layer: String,
        key: String,
        reason: String,
    },
    /// A configuration layer that does not parse or has an unknown key or a wrong type.
    #[error("invalid configuration: {0}")]
    ConfigParse(Box<figment::Error>),
    #[error("cannot read configuration {path}: {cause}")]
    ConfigRead {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A source or sink spec no connector answers to.
    #[error("unknown {role} `{spec}`: expected {expected}")]
    UnknownSpec {
        role: &'static str,
        spec: String,
        expected: String,
    },
    /// A file the run was pointed at cannot be opened.
    #[error("cannot open {what}: {cause}")]
    Open { what: String, cause: std::io::Error },
    /// Reading or writing failed part way.
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error("column mapping {path}: {detail}")]
    Mapping { path: PathBuf, detail: String },
    #[error(transparent)]
    Model(#[from] vigil_models::Error),
    #[error("model artifact {path}: {detail}")]
    ModelCheck { path: PathBuf, detail: String },
    #[error("state store {path}: {detail}")]
    Store { path: PathBuf, detail: String },
    /// A state directory kept for other partitions of the source than the run reads.
    #[error(
        "state directory {dir} holds the customers of {spec} partitions {held:?}, but this \
         run reads {reading:?}: customer state follows partitions, so give each instance back \
         its own state directory, or rebuild this one from the log (see \"Scaling out\" in \
         the README)"
    )]
    PartitionsMoved {
        dir: PathBuf,
        spec: String,
        held: Vec<u32>,
        reading: Vec<u32>,
    },
    #[error("checkpoint {path} is not valid: {detail}")]
    CorruptCheckpoint { path: PathBuf, detail: String },
    /// A connector's failure, with the kind the connector gave it.
    #[error("{what}: {cause}")]
    Connector {
        kind: ErrorKind,
        what: String,
        cause: BoxError,
    },
    #[error("cannot serve metrics on {listen}: {detail}")]
    Metrics { listen: String, detail: String },
    /// The run gave up draining after a stop was asked for.
    #[error(
        "shutdown deadline of {deadline} passed before every record taken in was published \
         (engine.shutdown_deadline); the checkpoint stays below them, so a restart reads them again"
    )]
    ShutdownDeadline { deadline: String },
    #[error("internal error: {0}")]
    Bug(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. }
            | Error::ConfigParse(_)
            | Error::ConfigRead { .. }
            | Error::UnknownSpec { .. }
            | Error::Open { .. }
            | Error::Mapping { .. }
            | Error::Model(_)
            | Error::ModelCheck { .. }
            | Error::CorruptCheckpoint { .. }
            | Error::PartitionsMoved { .. }
            | Error::Metrics { .. } => ErrorKind::Configuration,
            Error::Io { .. } | Error::Store { .. } | Error::ShutdownDeadline { .. } => {
                ErrorKind::External
            }
            Error::Connector { kind, .. } => *kind,
            Error::Bug(_) => ErrorKind::Bug,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_keeps_the_kind_it_was_given_and_bugs_are_bugs() {
        let refused = Error::Connector {
            kind: ErrorKind::InvalidInput,
            what: "fluvio:decisions".into(),
            cause: "record too large".into(),
        };
        assert_eq!(refused.kind(), ErrorKind::InvalidInput);
        assert_eq!(refused.to_string(), "fluvio:decisions: record too large");
        assert_eq!(Error::Bug("x".into()).kind(), ErrorKind::Bug);
        let io = Error::Io {
            what: "cannot write to file:x".into(),
            cause: std::io::Error::other("disk full"),
        };
        assert_eq!(io.kind(), ErrorKind::External);
    }
}
