//! JSON Lines sources: a file (`file:PATH`) or standard input (`-`), one record per line.
//! A record's offset is its zero-based line number, so a resumed run skips the lines below its
//! checkpoint. Blank lines are not records and are skipped, and a UTF-8 byte order mark at the
//! start of the input (as some editors and exporters write) is not part of the first record.

use std::pin::Pin;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Source, SourceRecord};
use crate::error::{Error, Result};
use crate::event::{Position, MAX_BATCH};

pub struct LineSource {
    reader: BufReader<Pin<Box<dyn AsyncRead + Send>>>,
    spec: String,
    line: u64,
    /// Lines below this were decided by an earlier run.
    resume_at: u64,
    buffer: Vec<u8>,
}

impl LineSource {
    pub async fn open(path: &str) -> Result<Self> {
        let spec = format!("file:{path}");
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| Error::Open {
                what: format!("source {spec}"),
                cause: source,
            })?;
        Ok(Self::from_reader(file, spec))
    }

    pub fn stdin() -> Self {
        Self::from_reader(tokio::io::stdin(), "-".to_owned())
    }

    pub fn from_reader(reader: impl AsyncRead + Send + 'static, spec: String) -> Self {
        let reader: Pin<Box<dyn AsyncRead + Send>> = Box::pin(reader);
        LineSource {
            reader: BufReader::with_capacity(1 << 16, reader),
            spec,
            line: 0,
            resume_at: 0,
            buffer: Vec::new(),
        }
    }

    /// Skips the lines below `line`, already decided by an earlier run.
    pub fn resume_at(mut self, line: u64) -> Self {
        self.resume_at = line;
        self
    }
}

#[async_trait]
impl Source for LineSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> Result<bool> {
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            // Records read never wait behind a partial line (a pipe's writer may pause
            // mid-record): hand them over unless a whole line is already buffered.
            if batch.len() > before && !self.reader.buffer().contains(&b'\n') {
                break;
            }
            self.buffer.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.buffer)
                .await
                .map_err(|source| Error::Io {
                    what: format!("cannot read source {}", self.spec),
                    cause: source,
                })?;
            if read == 0 {
                return Ok(false);
            }
            let offset = self.line;
            self.line += 1;
            let mut record = self.buffer.trim_ascii();
            if offset == 0 {
                record = without_bom(record);
            }
            if record.is_empty() || offset < self.resume_at {
                continue;
            }
            batch.push(SourceRecord {
                position: Position {
                    partition: 0,
                    offset,
                },
                payload: Bytes::copy_from_slice(record),
                ingested: Instant::now(),
            });
        }
        Ok(true)
    }

    fn describe(&self) -> String {
        self.spec.clone()
    }
}

/// `bytes` without a leading UTF-8 byte order mark.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn resuming_skips_the_lines_below_the_checkpoint() {
        let input: &[u8] = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        let mut source = LineSource::from_reader(input, "test".into()).resume_at(1);
        let mut batch = Vec::new();
        while source.next_batch(&mut batch).await.unwrap() {}
        let offsets: Vec<u64> = batch.iter().map(|r| r.position.offset).collect();
        assert_eq!(offsets, vec![1, 2]);
    }

    #[tokio::test]
    async fn records_read_are_handed_over_while_a_partial_line_waits_for_its_end() {
        let (mut writer, reader) = tokio::io::duplex(1 << 16);
        let mut source = LineSource::from_reader(reader, "pipe".into());
        writer
            .write_all(b"{\"a\":1}\n{\"b\":2}\n{\"c\":")
            .await
            .unwrap();
        let mut batch = Vec::new();
        // The writer pauses mid-record; the two whole records must not wait for it.
        tokio::time::timeout(Duration::from_secs(5), source.next_batch(&mut batch))
            .await
            .expect("the batch is handed over without the partial line")
            .unwrap();
        assert_eq!(batch.len(), 2);
        writer.write_all(b"3}\n").await.unwrap();
        drop(writer);
        batch.clear();
        while source.next_batch(&mut batch).await.unwrap() {}
        assert_eq!(&batch[0].payload[..], b"{\"c\":3}");
        assert_eq!(batch[0].position.offset, 2);
    }

    #[tokio::test]
    async fn a_byte_order_mark_at_the_start_is_not_part_of_the_first_record() {
        let input: &[u8] = b"\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n";
        let mut source = LineSource::from_reader(input, "test".into());
        let mut batch = Vec::new();
        while source.next_batch(&mut batch).await.unwrap() {}
        assert_eq!(&batch[0].payload[..], b"{\"a\":1}");
        // Only at the start of the input: elsewhere it is the record's own bytes.
        assert_eq!(&batch[1].payload[..], b"\xEF\xBB\xBF{\"b\":2}");
    }

    #[tokio::test]
    async fn reads_lines_with_their_line_numbers_and_skips_blank_ones() {
        let input: &[u8] = b"{\"a\":1}\n\n  {\"b\":2}  \r\n{\"c\":3}";
        let mut source = LineSource::from_reader(input, "test".into());
        let mut batch = Vec::new();
        while source.next_batch(&mut batch).await.unwrap() {}
        let got: Vec<(u64, &[u8])> = batch
            .iter()
            .map(|r| (r.position.offset, &r.payload[..]))
            .collect();
        assert_eq!(
            got,
            vec![(0, &b"{\"a\":1}"[..]), (2, b"{\"b\":2}"), (3, b"{\"c\":3}")]
        );
    }
}
