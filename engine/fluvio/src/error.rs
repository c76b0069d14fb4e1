//! The Fluvio connector's one error. The client reports failures as `anyhow` chains; they are
//! kept as text with what was being done, and sorted by what they mean for the engine: a
//! record the cluster will never take is `InvalidInput` (dead-lettered), a topic or setting
//! that is wrong is `Configuration` (the run stops), and anything else is `External` (retried).

use vigil_engine::ErrorKind;

/// How to get a cluster on one machine, for errors and for tests that skip without one.
pub const GET_A_CLUSTER: &str = "For a local cluster: install Fluvio \
(`curl -fsS https://hub.infinyon.cloud/install/install.sh | bash`) and run `fluvio cluster start`, \
or run the `infinyon/fluvio` container image (SC on port 9003, SPU on 9010) as in the docker-compose \
example of the Fluvio repository; then `export FLUVIO_ENDPOINT=127.0.0.1:9003`.";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no Fluvio cluster: set FLUVIO_ENDPOINT, create a Fluvio profile, or set fluvio.endpoint in the configuration. {}",
        GET_A_CLUSTER
    )]
    NoCluster,
    #[error("FLUVIO_ENDPOINT={env} is set, but the current Fluvio profile connects to {profile} with TLS; FLUVIO_ENDPOINT would connect without it. Unset FLUVIO_ENDPOINT to use the profile, or switch to a profile without TLS")]
    EndpointBypassesTls { env: String, profile: String },
    #[error("cannot connect to Fluvio at {origin}: {detail}")]
    Connect { origin: String, detail: String },
    #[error("Fluvio topic `{0}` does not exist")]
    NoTopic(String),
    /// The partition choice names none of the topic's partitions, or one it lacks.
    #[error("cannot read `{topic}`: {detail}")]
    Partitions { topic: String, detail: String },
    /// The cluster refused a setting or a name.
    #[error("{what}: {detail}")]
    Refused { what: String, detail: String },
    /// The cluster will never take this record as it is.
    #[error("{what}: {detail}")]
    Unacceptable { what: String, detail: String },
    /// The client or the cluster failed; trying again may work.
    #[error("{what}: {detail}")]
    Client { what: String, detail: String },
    /// Writing decisions out (e.g. `tail`'s standard output) failed.
    #[error("cannot write decisions: {0}")]
    Output(std::io::Error),
    #[error(transparent)]
    Engine(#[from] vigil_engine::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A client failure while doing `what`, with its whole cause chain on one line.
    pub fn client(what: impl Into<String>, error: impl std::fmt::Display) -> Error {
        Error::Client {
            what: what.into(),
            detail: format!("{error:#}"),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoCluster
            | Error::EndpointBypassesTls { .. }
            | Error::NoTopic(_)
            | Error::Partitions { .. }
            | Error::Refused { .. } => ErrorKind::Configuration,
            Error::Unacceptable { .. } => ErrorKind::InvalidInput,
            Error::Connect { .. } | Error::Client { .. } | Error::Output(_) => ErrorKind::External,
            Error::Engine(e) => e.kind(),
        }
    }
}

impl From<Error> for vigil_engine::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Engine(e) => e,
            other => vigil_engine::Error::Connector {
                kind: other.kind(),
                what: "fluvio".into(),
                cause: Box::new(other),
            },
        }
    }
}
