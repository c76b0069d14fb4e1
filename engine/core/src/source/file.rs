//! JSON Lines sources: a file (`file:PATH`) or standard input (`-`), one record per line.
//! A record's offset is its zero-based line number, so a resumed run skips the lines below its
//! checkpoint. Blank lines are not records and are skipped, and a UTF-8 byte order mark at the
//! start of the input (as some editors and exporters write) is not part of the first record.
//!
//! A line longer than the record size limit is read no further than the limit: the rest is
//! hashed and skipped up to the next newline, and the record is handed on cut (`Cut`), to be
//! dead-lettered as `oversized` with its whole length and SHA-256. A 300 MiB line costs no more
//! memory than a record at the limit.

use std::pin::Pin;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Cut, Source, SourceRecord};
use crate::error::{Error, Result};
use crate::event::{Position, MAX_BATCH};

pub struct LineSource {
    reader: BufReader<Pin<Box<dyn AsyncRead + Send>>>,
    spec: String,
    line: u64,
    /// Lines below this were decided by an earlier run.
    resume_at: u64,
    /// The most bytes of a line kept: the record size limit, with room for the whitespace
    /// around a record.
    keep: usize,
    buffer: Vec<u8>,
}

/// Whitespace a line may carry beyond the record size limit and still be read whole, since a
/// record is trimmed before its size is checked.
const WHITESPACE_SLACK: usize = 64;

impl LineSource {
    /// Reads the file at `path`, records up to `limit` bytes.
    pub async fn open(path: &str, limit: usize) -> Result<Self> {
        let spec = format!("file:{path}");
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| Error::Open {
                what: format!("source {spec}"),
                cause: source,
            })?;
        Ok(Self::from_reader(file, spec, limit))
    }

    pub fn stdin(limit: usize) -> Self {
        Self::from_reader(tokio::io::stdin(), "-".to_owned(), limit)
    }

    pub fn from_reader(
        reader: impl AsyncRead + Send + 'static,
        spec: String,
        limit: usize,
    ) -> Self {
        let reader: Pin<Box<dyn AsyncRead + Send>> = Box::pin(reader);
        LineSource {
            reader: BufReader::with_capacity(1 << 16, reader),
            spec,
            line: 0,
            resume_at: 0,
            keep: limit.saturating_add(WHITESPACE_SLACK),
            buffer: Vec::new(),
        }
    }

    /// Reads the next line, without its newline, into `buffer`, keeping at most `keep` bytes
    /// of it. `None` at the end of the input; otherwise the line's `Cut` when it was longer.
    async fn read_line(&mut self) -> Result<Option<Option<Cut>>> {
        self.buffer.clear();
        let mut length = 0u64;
        let mut overflow: Option<Sha256> = None;
        loop {
            let available = self.reader.fill_buf().await.map_err(|source| Error::Io {
                what: format!("cannot read source {}", self.spec),
                cause: source,
            })?;
            if available.is_empty() {
                if length == 0 && self.buffer.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (part, ended) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            let stored = part.len().min(self.keep - self.buffer.len());
            self.buffer.extend_from_slice(&part[..stored]);
            if stored < part.len() {
                overflow
                    .get_or_insert_with(|| Sha256::new_with_prefix(&self.buffer))
                    .update(&part[stored..]);
            }
            length += part.len() as u64;
            let consumed = part.len() + usize::from(ended);
            self.reader.consume(consumed);
            if ended {
                break;
            }
        }
        Ok(Some(overflow.map(|hash| Cut {
            bytes: length,
            sha256: hash.finalize().into(),
        })))
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
            let Some(cut) = self.read_line().await? else {
                return Ok(false);
            };
            let offset = self.line;
            self.line += 1;
            let mut record = match cut {
                Some(_) => &self.buffer[..],
                None => self.buffer.trim_ascii(),
            };
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
                cut,
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
        let mut source = LineSource::from_reader(input, "test".into(), 1_024).resume_at(1);
        let mut batch = Vec::new();
        while source.next_batch(&mut batch).await.unwrap() {}
        let offsets: Vec<u64> = batch.iter().map(|r| r.position.offset).collect();
        assert_eq!(offsets, vec![1, 2]);
    }

    #[tokio::test]
    async fn records_read_are_handed_over_while_a_partial_line_waits_for_its_end() {
        let (mut writer, reader) = tokio::io::duplex(1 << 16);
        let mut source = LineSource::from_reader(reader, "pipe".into(), 1_024);
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
        let mut source = LineSource::from_reader(input, "test".into(), 1_024);
        let mut batch = Vec::new();
        while source.next_batch(&mut batch).await.unwrap() {}
        assert_eq!(&batch[0].payload[..], b"{\"a\":1}");
        // Only at the start of the input: elsewhere it is the record's own bytes.
        assert_eq!(&batch[1].payload[..], b"\xEF\xBB\xBF{\"b\":2}");
    }

    #[tokio::test]
    async fn reads_lines_with_their_line_numbers_and_skips_blank_ones() {
        let input: &[u8] = b"{\"a\":1}\n\n  {\"b\":2}  \r\n{\"c\":3}";
        let mut source = LineSource::from_reader(input, "test".into(), 1_024);
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

    #[tokio::test]
    async fn a_line_past_the_limit_is_read_no_further_and_handed_on_cut() {
        let long = vec![b'x'; 1_000_000];
        let mut input = b"{\"a\":1}\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\n{\"c\":3}\n");
        let mut source = LineSource::from_reader(std::io::Cursor::new(input), "test".into(), 100);
        let mut batch = Vec::new();
        while source.next_batch(&mut batch).await.unwrap() {}
        let cut: Vec<Option<Cut>> = batch.iter().map(|r| r.cut).collect();
        let expected = Cut {
            bytes: 1_000_000,
            sha256: Sha256::digest(&long).into(),
        };
        assert_eq!(cut, [None, Some(expected), None]);
        assert_eq!(batch[1].payload.len(), 100 + WHITESPACE_SLACK);
        assert_eq!(&batch[2].payload[..], b"{\"c\":3}");
        assert_eq!(batch[2].position.offset, 2);
    }
}
