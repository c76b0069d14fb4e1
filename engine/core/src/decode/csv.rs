//! CSV history through a column mapping: a data scientist's labelled history (a bank export,
//! the public Sparkov card-transaction set) becomes schema v1 events without a conversion step.
//!
//! A mapping file (TOML, see `models/mappings/sparkov.toml`) says which `kind` every row
//! becomes and, for each event field, which column holds it or which fixed value it takes.
//! The source reads the header line and resolves the mapping against it once ([`CsvRows`]);
//! each later line is split (RFC 4180 quoting, one record per line) and its columns converted
//! into a `WireEvent`, which then goes through the same validation as JSON input. A row that
//! cannot be converted is rejected naming the event field, its column and the reason.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::dead_letter::{RejectReason, Rejection};
use crate::error::Error;
use crate::event::{Label, WireEvent, KINDS, SCHEMA_VERSION};

/// A mapping file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The event kind every row becomes, e.g. `payment`.
    pub kind: String,
    /// Field separator; a comma unless said.
    #[serde(default = "comma")]
    pub delimiter: char,
    pub customer_id: Field,
    /// Left out, a row's id is `{file name}:{line}`, stable across runs over the same file.
    pub event_id: Option<Field>,
    pub timestamp: Timestamp,
    pub amount: Option<Field>,
    pub currency: Option<Field>,
    pub country: Option<Field>,
    pub lat: Option<Field>,
    pub lon: Option<Field>,
    pub merchant: Option<Field>,
    /// The merchant category, the event's `mcc`.
    pub category: Option<Field>,
    pub channel: Option<Field>,
    pub label: Option<LabelColumn>,
}

fn comma() -> char {
    ','
}

/// Where an event field comes from: a column by name, or `{ value = "…" }` for every row.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Field {
    Column(String),
    Value { value: String },
}

/// The event-time column and how its values are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    pub column: String,
    pub format: TimeFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Seconds since the Unix epoch, e.g. `1325376018`.
    EpochS,
    /// Milliseconds since the Unix epoch.
    EpochMs,
    /// `YYYY-MM-DD HH:MM:SS` (or RFC 3339), in UTC.
    Datetime,
    /// A day, `YYYY-MM-DD` or `YYYYMMDD`, as its first millisecond in UTC: purchase logs often
    /// record no time of day.
    Date,
}

/// The ground-truth column: `1`/`0` or `true`/`false`; an empty cell is unlabelled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelColumn {
    pub column: String,
    pub target: LabelTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelTarget {
    Fraud,
    Churn,
}

/// A mapping or header that cannot be used, naming the mapping file and the key.
fn mapping_error(path: &Path, key: &str, detail: String) -> Error {
    Error::Mapping {
        path: path.to_owned(),
        detail: format!("`{key}`: {detail}"),
    }
}

impl Mapping {
    pub fn load(path: &Path) -> crate::error::Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Open {
            what: format!("mapping file {}", path.display()),
            cause: source,
        })?;
        let mapping: Mapping = toml::from_str(&text).map_err(|source| Error::Mapping {
            path: path.to_owned(),
            detail: source.to_string(),
        })?;
        if !KINDS.contains(&mapping.kind.as_str()) {
            return Err(mapping_error(
                path,
                "kind",
                format!("`{}` is not one of {}", mapping.kind, KINDS.join(", ")),
            ));
        }
        if !mapping.delimiter.is_ascii() {
            return Err(mapping_error(
                path,
                "delimiter",
                format!("`{}` is not a single ASCII character", mapping.delimiter),
            ));
        }
        Ok(mapping)
    }
}

/// Where a resolved field's value comes from.
#[derive(Debug, Clone)]
enum Source {
    Column { index: usize, name: String },
    Value(String),
}

/// A mapping resolved against a file's header: ready to turn rows into events.
#[derive(Debug, Clone)]
pub struct CsvRows {
    kind: String,
    delimiter: u8,
    columns: usize,
    /// `{file name}:` for ids of rows without an event id column.
    id_prefix: String,
    customer_id: Source,
    event_id: Option<Source>,
    timestamp: (usize, String, TimeFormat),
    amount: Option<Source>,
    currency: Option<Source>,
    country: Option<Source>,
    lat: Option<Source>,
    lon: Option<Source>,
    merchant: Option<Source>,
    category: Option<Source>,
    channel: Option<Source>,
    label: Option<(usize, String, LabelTarget)>,
}

/// A field's value in one row, with the column it came from for error messages.
struct Cell<'a> {
    text: &'a str,
    column: Option<&'a str>,
}

impl Cell<'_> {
    /// `column `amt`: ` when the value came from a column, for rejection details.
    fn origin(&self) -> String {
        self.column
            .map_or(String::new(), |c| format!("column `{c}`: "))
    }
}

impl CsvRows {
    /// Resolves `mapping` (read from `mapping_path`) against `header`, the file's first line.
    pub fn new(
        mapping: &Mapping,
        mapping_path: &Path,
        header: &[u8],
        file_name: &str,
    ) -> crate::error::Result<CsvRows> {
        let delimiter = mapping.delimiter as u8;
        let names = split(header, delimiter).map_err(|detail| {
            mapping_error(
                mapping_path,
                "delimiter",
                format!("the header line does not split: {detail}"),
            )
        })?;
        let names: Vec<String> = (0..names.len())
            .map(|i| names.get(i).trim().to_owned())
            .collect();
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let column = |key: &'static str, name: &str| {
            index.get(name).copied().ok_or_else(|| {
                mapping_error(
                    mapping_path,
                    key,
                    format!(
                        "column `{name}` is not in the header ({})",
                        names.join(", ")
                    ),
                )
            })
        };
        let resolve = |key: &'static str, field: &Field| -> crate::error::Result<Source> {
            Ok(match field {
                Field::Column(name) => Source::Column {
                    index: column(key, name)?,
                    name: name.clone(),
                },
                Field::Value { value } => Source::Value(value.clone()),
            })
        };
        let optional = |key: &'static str, field: &Option<Field>| {
            field.as_ref().map(|f| resolve(key, f)).transpose()
        };
        Ok(CsvRows {
            kind: mapping.kind.clone(),
            delimiter,
            columns: names.len(),
            id_prefix: format!("{file_name}:"),
            customer_id: resolve("customer_id", &mapping.customer_id)?,
            event_id: optional("event_id", &mapping.event_id)?,
            timestamp: (
                column("timestamp.column", &mapping.timestamp.column)?,
                mapping.timestamp.column.clone(),
                mapping.timestamp.format,
            ),
            amount: optional("amount", &mapping.amount)?,
            currency: optional("currency", &mapping.currency)?,
            country: optional("country", &mapping.country)?,
            lat: optional("lat", &mapping.lat)?,
            lon: optional("lon", &mapping.lon)?,
            merchant: optional("merchant", &mapping.merchant)?,
            category: optional("category", &mapping.category)?,
            channel: optional("channel", &mapping.channel)?,
            label: mapping
                .label
                .as_ref()
                .map(|l| {
                    Ok::<_, Error>((
                        column("label.column", &l.column)?,
                        l.column.clone(),
                        l.target,
                    ))
                })
                .transpose()?,
        })
    }

    /// Converts the row at `line` of the file into the wire form of its event.
    pub fn wire(&self, raw: &[u8], line: u64) -> Result<WireEvent, Rejection> {
        let cells = split(raw, self.delimiter)
            .map_err(|detail| Rejection::new(RejectReason::InvalidCsv, None, detail))?;
        if cells.len() != self.columns {
            return Err(Rejection::new(
                RejectReason::InvalidCsv,
                None,
                format!(
                    "row has {} columns, the header has {}",
                    cells.len(),
                    self.columns
                ),
            ));
        }
        let text = |source: &Option<Source>| cells.cell(source).map(|c| c.text.to_owned());
        let number = |field: &str, source: &Option<Source>| -> Result<Option<f64>, Rejection> {
            cells
                .cell(source)
                .map(|c| {
                    c.text.parse::<f64>().map_err(|_| {
                        wrong_type(field, format!("{}`{}` is not a number", c.origin(), c.text))
                    })
                })
                .transpose()
        };

        let (ts_index, ts_column, format) = &self.timestamp;
        let ts_text = cells.get(*ts_index).trim();
        let ts = (!ts_text.is_empty())
            .then(|| timestamp(ts_text, *format))
            .transpose()
            .map_err(|expected| {
                wrong_type(
                    "ts",
                    format!("column `{ts_column}`: `{ts_text}` is not {expected}"),
                )
            })?;
        let label = match &self.label {
            Some((index, column, target)) => {
                let value = cells.get(*index).trim();
                let flag = match value {
                    "" => None,
                    "1" | "true" | "True" | "TRUE" => Some(true),
                    "0" | "false" | "False" | "FALSE" => Some(false),
                    other => {
                        return Err(wrong_type(
                            "label",
                            format!("column `{column}`: `{other}` is not 0, 1, true or false"),
                        ))
                    }
                };
                flag.map(|flag| match target {
                    LabelTarget::Fraud => Label {
                        fraud: Some(flag),
                        churn: None,
                    },
                    LabelTarget::Churn => Label {
                        fraud: None,
                        churn: Some(flag),
                    },
                })
            }
            None => None,
        };
        let customer_id = Some(self.customer_id.clone());
        Ok(WireEvent {
            schema: Some(SCHEMA_VERSION),
            event_id: Some(
                text(&self.event_id).unwrap_or_else(|| format!("{}{line}", self.id_prefix)),
            ),
            customer_id: text(&customer_id),
            ts,
            kind: Some(self.kind.clone()),
            amount: number("amount", &self.amount)?,
            currency: text(&self.currency),
            country: text(&self.country),
            lat: number("lat", &self.lat)?,
            lon: number("lon", &self.lon)?,
            merchant: text(&self.merchant),
            mcc: text(&self.category),
            channel: text(&self.channel),
            label,
            ..WireEvent::default()
        })
    }
}

fn wrong_type(field: &str, detail: String) -> Rejection {
    Rejection::new(RejectReason::WrongType, Some(field), detail)
}

/// Event time in ms from a cell, or what the cell should have been.
fn timestamp(text: &str, format: TimeFormat) -> Result<i64, &'static str> {
    match format {
        TimeFormat::EpochS => text
            .parse::<i64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .ok_or("an epoch time in seconds"),
        TimeFormat::EpochMs => text.parse::<i64>().map_err(|_| "an epoch time in ms"),
        TimeFormat::Datetime => humantime::parse_rfc3339_weak(text)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .ok_or("a `YYYY-MM-DD HH:MM:SS` time"),
        TimeFormat::Date => {
            let dashed = match text.as_bytes() {
                [y @ .., m1, m2, d1, d2] if y.len() == 4 && text.is_ascii() => {
                    format!(
                        "{}-{}{}-{}{}",
                        &text[..4],
                        *m1 as char,
                        *m2 as char,
                        *d1 as char,
                        *d2 as char
                    )
                }
                _ => text.to_owned(),
            };
            humantime::parse_rfc3339_weak(&format!("{dashed} 00:00:00"))
                .ok()
                .filter(|_| dashed.len() == 10)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .ok_or("a `YYYY-MM-DD` or `YYYYMMDD` date")
        }
    }
}

/// One split CSV record: its unquoted text and where each field ends in it.
pub(crate) struct Row {
    text: String,
    ends: Vec<usize>,
}

impl Row {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The fields in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    fn get(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.text[start..self.ends[index]]
    }

    /// A field's non-empty value and where it came from.
    fn cell<'a>(&'a self, source: &'a Option<Source>) -> Option<Cell<'a>> {
        match source.as_ref()? {
            Source::Column { index, name } => {
                let text = self.get(*index).trim();
                (!text.is_empty()).then_some(Cell {
                    text,
                    column: Some(name),
                })
            }
            Source::Value(value) => Some(Cell {
                text: value,
                column: None,
            }),
        }
    }
}

/// Splits one CSV record (RFC 4180 quoting) into its fields.
pub(crate) fn split(raw: &[u8], delimiter: u8) -> Result<Row, String> {
    use csv_core::ReadRecordResult::{End, InputEmpty, Record};
    std::str::from_utf8(raw).map_err(|e| format!("row is not UTF-8: {e}"))?;
    // Unquoting never lengthens a field, and there is at most one field per delimiter plus
    // one, so neither buffer can fill up.
    let mut output = vec![0u8; raw.len()];
    let mut ends = vec![0usize; raw.iter().filter(|&&b| b == delimiter).count() + 1];
    let mut reader = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let (mut result, read, mut written, mut fields) =
        reader.read_record(raw, &mut output, &mut ends);
    if result == InputEmpty {
        // The line ended without a terminator: end of input closes the record.
        let (last, _, w, f) = reader.read_record(&[], &mut output[written..], &mut ends[fields..]);
        (result, written, fields) = (last, written + w, fields + f);
    }
    if !matches!(result, Record | End) {
        return Err("row could not be split into fields".into());
    }
    if raw[read..].iter().any(|b| !b.is_ascii_whitespace()) {
        return Err("row holds more than one record (a line break inside quotes?)".into());
    }
    output.truncate(written);
    ends.truncate(fields);
    // Only ASCII quote bytes were removed from valid UTF-8, so the text is still UTF-8.
    let text = String::from_utf8(output).map_err(|_| "row is not UTF-8".to_owned())?;
    Ok(Row { text, ends })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;
    use crate::event::EventKind;

    const SPARKOV: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/mappings/sparkov.toml"
    );
    const HEADER: &str = ",trans_date_trans_time,cc_num,merchant,category,amt,first,last,gender,street,city,state,zip,lat,long,city_pop,job,dob,trans_num,unix_time,merch_lat,merch_long,is_fraud";
    const ROW: &str = r#"0,2019-01-01 00:00:18,2703186189652095,"fraud_Rippin, Kub and Mann",misc_net,4.97,Jennifer,Banks,F,561 Perry Cove,Moravian Falls,NC,28654,36.0788,-81.1781,3495,"Psychologist, counselling",1988-03-09,0b242abb623afc578575680df30655b9,1325376018,36.011293,-82.048315,0"#;

    fn sparkov() -> Decoder {
        let mapping = Mapping::load(Path::new(SPARKOV)).unwrap();
        let rows = CsvRows::new(&mapping, Path::new(SPARKOV), HEADER.as_bytes(), "t.csv").unwrap();
        Decoder::Csv(std::sync::Arc::new(rows))
    }

    #[test]
    fn a_sparkov_row_becomes_a_labelled_payment() {
        let event = sparkov().decode(ROW.as_bytes(), 65_536, 1).unwrap();
        assert_eq!(event.customer_id, "2703186189652095");
        assert_eq!(event.event_id, "0b242abb623afc578575680df30655b9");
        assert_eq!(event.ts, 1_546_300_818_000, "2019-01-01 00:00:18 UTC");
        assert_eq!(event.label.unwrap().fraud, Some(false));
        let EventKind::Payment(p) = event.kind else {
            panic!("a payment")
        };
        assert_eq!(p.amount, 4.97);
        assert_eq!(
            p.merchant, "fraud_Rippin, Kub and Mann",
            "quoted comma kept"
        );
        assert_eq!(p.mcc, "misc_net");
        assert_eq!((p.country.as_str(), p.currency.as_str()), ("US", "USD"));
        let at = p.location.unwrap();
        assert_eq!((at.lat, at.lon), (36.011293, -82.048315));
    }

    #[test]
    fn a_bad_cell_is_rejected_naming_the_field_and_its_column() {
        let row = ROW.replace(",4.97,", ",4,97x,");
        let err = sparkov().decode(row.as_bytes(), 65_536, 1).unwrap_err();
        assert_eq!(err.reason, RejectReason::InvalidCsv, "{err:?}");
        assert!(
            err.detail.contains("24 columns, the header has 23"),
            "{err:?}"
        );

        let row = ROW.replace(",4.97,", ",4.97$,");
        let err = sparkov().decode(row.as_bytes(), 65_536, 1).unwrap_err();
        assert_eq!(err.reason, RejectReason::WrongType);
        assert_eq!(err.field.as_deref(), Some("amount"));
        assert!(err.detail.contains("column `amt`: `4.97$`"), "{err:?}");

        let row = ROW.replace("2019-01-01 00:00:18", "01/01/2019");
        let err = sparkov().decode(row.as_bytes(), 65_536, 1).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("ts"));
        assert!(
            err.detail.contains("column `trans_date_trans_time`"),
            "{err:?}"
        );

        let row = ROW.replace(",-82.048315,0", ",-82.048315,maybe");
        let err = sparkov().decode(row.as_bytes(), 65_536, 1).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("label"));

        let row = ROW.replace(",4.97,", ",-4.97,");
        let err = sparkov().decode(row.as_bytes(), 65_536, 1).unwrap_err();
        assert_eq!(
            (err.reason, err.field.as_deref()),
            (RejectReason::InvalidValue, Some("amount")),
            "the schema's own validation applies"
        );

        let err = sparkov()
            .decode(b"\"unterminated,1,2", 65_536, 1)
            .unwrap_err();
        assert_eq!(err.reason, RejectReason::InvalidCsv);
    }

    #[test]
    fn epoch_formats_and_rows_without_an_id_column() {
        let mapping: Mapping = toml::from_str(
            r#"
            kind = "login"
            customer_id = "who"
            timestamp = { column = "when", format = "epoch_ms" }
            "#,
        )
        .unwrap();
        let rows = CsvRows::new(&mapping, Path::new("m.toml"), b"who;when", "logins.csv");
        let rows = rows.unwrap_err();
        assert!(rows
            .to_string()
            .contains("column `who` is not in the header (who;when)"));
        let rows = CsvRows::new(&mapping, Path::new("m.toml"), b"who,when", "logins.csv").unwrap();
        let decoder = Decoder::Csv(std::sync::Arc::new(rows));
        let event = decoder.decode(b"c-1,1763805600123", 1024, 7).unwrap();
        assert_eq!(event.ts, 1_763_805_600_123);
        assert_eq!(event.event_id, "logins.csv:7");
        assert!(matches!(event.kind, EventKind::Login { place: None }));
        assert_eq!(
            timestamp("1325376018", TimeFormat::EpochS),
            Ok(1_325_376_018_000)
        );
    }

    #[test]
    fn dates_without_a_time_of_day_are_their_first_millisecond() {
        // 1997-01-01T00:00:00Z, as a purchase log writes it either way.
        assert_eq!(timestamp("19970101", TimeFormat::Date), Ok(852_076_800_000));
        assert_eq!(
            timestamp("1997-01-01", TimeFormat::Date),
            Ok(852_076_800_000)
        );
        for bad in [
            "1997-1-1",
            "19971301",
            "1997010",
            "1997-01-01 10:00:00",
            "",
            "ab970101",
        ] {
            assert!(timestamp(bad, TimeFormat::Date).is_err(), "{bad}");
        }
    }

    #[test]
    fn mapping_errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        std::fs::write(
            &path,
            "kind = \"purchase\"\ncustomer_id = \"a\"\ntimestamp = { column = \"t\", format = \"epoch_s\" }\n",
        )
        .unwrap();
        let err = Mapping::load(&path).unwrap_err().to_string();
        assert!(err.contains("bank.toml") && err.contains("`kind`"), "{err}");
        std::fs::write(&path, "kind = \"payment\"\ncustomer = \"a\"\n").unwrap();
        let err = Mapping::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("bank.toml") && err.contains("customer"),
            "{err}"
        );
    }
}
