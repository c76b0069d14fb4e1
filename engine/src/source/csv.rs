//! CSV history (`file:PATH` opened with a column mapping): the header line resolves the
//! mapping, and every later line is one record, decoded by the mapping into an event. Offsets
//! are line numbers as in JSON Lines files (the header is line 0), so a resumed run skips what
//! an earlier one decided.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::file::LineSource;
use super::{Source, SourceError, SourceRecord};
use crate::decode::csv::{CsvRows, Mapping};
use crate::decode::Decoder;

pub struct CsvSource {
    lines: LineSource,
    rows: Arc<CsvRows>,
}

impl CsvSource {
    /// Opens the CSV file at `path` with the mapping file at `mapping`, resuming at `line`.
    pub async fn open(path: &str, mapping: &Path, line: u64) -> Result<Self, SourceError> {
        let spec = format!("file:{path}");
        let open_error = |source| SourceError::Open {
            spec: spec.clone(),
            source,
        };
        let mut header = Vec::new();
        std::io::BufReader::new(std::fs::File::open(path).map_err(open_error)?)
            .read_until(b'\n', &mut header)
            .map_err(open_error)?;
        let file_name = Path::new(path)
            .file_name()
            .map_or(path.into(), |n| n.to_string_lossy());
        let rows = CsvRows::new(
            &Mapping::load(mapping)?,
            mapping,
            header.trim_ascii(),
            &file_name,
        )?;
        Ok(CsvSource {
            lines: LineSource::open(path).await?.resume_at(line.max(1)),
            rows: Arc::new(rows),
        })
    }
}

#[async_trait]
impl Source for CsvSource {
    async fn next_batch(&mut self, batch: &mut Vec<SourceRecord>) -> Result<bool, SourceError> {
        self.lines.next_batch(batch).await
    }

    fn decoder(&self) -> Decoder {
        Decoder::Csv(self.rows.clone())
    }

    fn describe(&self) -> String {
        self.lines.describe()
    }
}
