//! CSV history (`file:PATH` opened with a column mapping): the header line is kept for the
//! decoder, which resolves the mapping against it, and every later line is one record. Offsets
//! are line numbers as in JSON Lines files (the header is line 0), so a resumed run skips what
//! an earlier one decided.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::file::{without_bom, LineSource};
use super::{Format, Source, SourceRecord};
use crate::error::{Error, Result};

pub struct CsvSource {
    lines: LineSource,
    header: Bytes,
    mapping: PathBuf,
    file_name: String,
}

impl CsvSource {
    /// Opens the CSV file at `path`, to be read through the mapping file at `mapping`,
    /// resuming at `line`, rows up to `limit` bytes.
    pub async fn open(path: &str, mapping: &Path, line: u64, limit: usize) -> Result<Self> {
        let open_error = |source| Error::Open {
            what: format!("source file:{path}"),
            cause: source,
        };
        // The header is read no further than a row may be long.
        let mut header = Vec::new();
        std::io::BufReader::new(std::fs::File::open(path).map_err(open_error)?)
            .take(limit as u64)
            .read_until(b'\n', &mut header)
            .map_err(open_error)?;
        let file_name = Path::new(path)
            .file_name()
            .map_or(path.into(), |n| n.to_string_lossy())
            .into_owned();
        Ok(CsvSource {
            lines: LineSource::open(path, limit).await?.resume_at(line.max(1)),
            header: Bytes::copy_from_slice(without_bom(header.trim_ascii())),
            mapping: mapping.to_owned(),
            file_name,
        })
    }
}

#[async_trait]
impl Source for CsvSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> Result<bool> {
        self.lines.next_batch(batch).await
    }

    fn format(&self) -> Format {
        Format::Csv {
            mapping: self.mapping.clone(),
            header: self.header.clone(),
            file_name: self.file_name.clone(),
        }
    }

    fn describe(&self) -> String {
        self.lines.describe()
    }
}
