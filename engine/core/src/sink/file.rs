//! JSON Lines sinks: a file opened for append (a restarted engine adds to what it wrote),
//! standard output or error, or nothing at all. Writes go through a 64 KiB buffer; `flush`
//! pushes them out. Decisions and dead letters name customers and hold their raw events, so a
//! file the sink creates is readable by its owner only (mode 0600); a file that already exists
//! keeps the mode it has, which is how an operator shares one.

use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use super::{Sink, SinkRecord};
use crate::error::{Error, Result};

pub struct JsonLinesSink {
    writer: BufWriter<Pin<Box<dyn AsyncWrite + Send>>>,
    spec: String,
}

impl JsonLinesSink {
    pub async fn append(path: &str) -> Result<Self> {
        let spec = format!("file:{path}");
        let open_error = |source| Error::Open {
            what: format!("sink {spec}"),
            cause: source,
        };
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(open_error)?;
            }
        }
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(path).await.map_err(open_error)?;
        Ok(Self::new(Box::pin(file), spec))
    }

    pub fn stdout() -> Self {
        Self::new(Box::pin(tokio::io::stdout()), "stdout".into())
    }

    pub fn stderr() -> Self {
        Self::new(Box::pin(tokio::io::stderr()), "stderr".into())
    }

    pub fn discard() -> Self {
        Self::new(Box::pin(tokio::io::sink()), "discard".into())
    }

    fn new(writer: Pin<Box<dyn AsyncWrite + Send>>, spec: String) -> Self {
        JsonLinesSink {
            writer: BufWriter::with_capacity(1 << 16, writer),
            spec,
        }
    }

    fn write_error(&self, source: std::io::Error) -> Error {
        Error::Io {
            what: format!("cannot write to sink {}", self.spec),
            cause: source,
        }
    }
}

#[async_trait]
impl Sink for JsonLinesSink {
    async fn send(&mut self, batch: &[SinkRecord]) -> Result<()> {
        for record in batch {
            let written = async {
                self.writer.write_all(&record.value).await?;
                self.writer.write_all(b"\n").await
            }
            .await;
            written.map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let flushed = self.writer.flush().await;
        flushed.map_err(|e| self.write_error(e))
    }

    fn describe(&self) -> String {
        self.spec.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record(value: &'static str) -> SinkRecord {
        SinkRecord {
            key: Bytes::from_static(b"c-1"),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    #[tokio::test]
    async fn file_sink_appends_across_reopenings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/decisions.jsonl");
        let path = path.to_str().unwrap();
        for value in ["{\"n\":1}", "{\"n\":2}"] {
            let mut sink = JsonLinesSink::append(path).await.unwrap();
            sink.send(&[record(value)]).await.unwrap();
            sink.flush().await.unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "{\"n\":1}\n{\"n\":2}\n"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_created_file_is_for_its_owner_only_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let created = dir.path().join("dead-letters.jsonl");
        JsonLinesSink::append(created.to_str().unwrap())
            .await
            .unwrap();
        assert_eq!(mode(&created), 0o600);

        let shared = dir.path().join("decisions.jsonl");
        std::fs::write(&shared, "").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        JsonLinesSink::append(shared.to_str().unwrap())
            .await
            .unwrap();
        assert_eq!(mode(&shared), 0o640);
    }
}
