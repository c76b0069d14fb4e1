//! The scenario crate's one error: a scenario file that cannot be used, naming the file and
//! the key. To the engine it is a configuration error: the run was pointed at a bad scenario.

use vigil_engine::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read scenario {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("invalid scenario {path}: {cause}")]
    Parse {
        path: String,
        cause: Box<toml::de::Error>,
    },
    #[error("invalid scenario {path}: `{key}` {reason}")]
    Invalid {
        path: String,
        key: &'static str,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for vigil_engine::Error {
    fn from(error: Error) -> Self {
        vigil_engine::Error::Connector {
            kind: ErrorKind::Configuration,
            what: "generate".into(),
            cause: Box::new(error),
        }
    }
}
