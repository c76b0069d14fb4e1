//! Customer profiles: what the business knows about a customer beyond their events (tier,
//! segment, home country, signup date, marketing consent and reachable channels), joined into
//! decisions. Profiles are reference data keyed by customer id, and the latest record for a
//! customer wins (`{"customer_id":…,"deleted":true}` removes one).
//!
//! They come from a source spec (`--profiles file:PATH.jsonl`, a CSV file read through
//! `profiles.columns`, or a keyed Fluvio topic followed live, the changelog pattern) and are
//! kept in the state store, so they survive passivation, restarts and checkpoints.
//! `ProfileUpdates` takes a source's records in and stores them; the pipeline reads the source
//! up to date before the engine reads events, then follows a live one, each update stored
//! before the next event looks it up. A record that is not a valid profile is dead-lettered
//! with the field and the reason, like an event.
//!
//! Scoring looks a profile up only when a decision needs it (a freeze, for the tier policy; an
//! outreach, for consent and the channel; a payment, when a rule reads a profile feature), so
//! a run without profiles, or a payment that decides nothing, pays nothing for them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::ProfilesConfig;
use crate::dead_letter::{RejectReason, Rejection};
use crate::decode::csv::split;
use crate::error::Result;
use crate::event::{Offsets, Position, MAX_TS};
use crate::source::SourceRecord;
use crate::state::store::StateStore;
use crate::telemetry::{ProfileMissing, ProfilesStored, Telemetry};

/// A channel outreach can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Push,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Push, Channel::Sms];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Push => "push",
            Channel::Sms => "sms",
        }
    }
}

/// What the business knows about one customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// ISO 3166 alpha-2, upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_country: Option<String>,
    /// When the customer signed up, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signup_ts: Option<i64>,
    /// Whether the customer agreed to marketing contact; outreach needs it.
    #[serde(default)]
    pub marketing_consent: bool,
    /// Which channels reach the customer.
    #[serde(default)]
    pub channels: BTreeMap<Channel, bool>,
    /// The channel the customer prefers, when it reaches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_channel: Option<Channel>,
    /// Anything else, kept as given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Profile {
    /// Whether `channel` reaches the customer.
    pub fn reachable(&self, channel: Channel) -> bool {
        self.channels.get(&channel).copied().unwrap_or(false)
    }
}

/// Tier and segment names are labels, not text.
const MAX_NAME_BYTES: usize = 64;
/// Customer ids are bounded as in events.
const MAX_ID_BYTES: usize = 128;

/// A profile update: the customer and their new profile, or `None` to remove it.
pub type Update = (String, Option<Profile>);

/// Reads one profile record (JSON: `customer_id`, the profile's fields, and `deleted` to
/// remove one), or says which field is wrong and why.
pub fn parse(raw: &[u8]) -> std::result::Result<Update, Rejection> {
    let wrong =
        |field: &str, detail: String| Rejection::new(RejectReason::WrongType, Some(field), detail);
    let mut record = match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(record)) => record,
        Ok(_) => {
            return Err(Rejection::new(
                RejectReason::WrongType,
                None,
                "a profile record is a JSON object",
            ))
        }
        Err(e) => {
            return Err(Rejection::new(
                RejectReason::InvalidJson,
                None,
                format!("not JSON: {e}"),
            ))
        }
    };
    let customer_id = match record.remove("customer_id") {
        Some(serde_json::Value::String(id)) => id,
        Some(_) => return Err(wrong("customer_id", "must be a string".into())),
        None => {
            return Err(Rejection::new(
                RejectReason::MissingField,
                Some("customer_id"),
                "required field `customer_id` is missing",
            ))
        }
    };
    let deleted = match record.remove("deleted") {
        None => false,
        Some(serde_json::Value::Bool(deleted)) => deleted,
        Some(_) => return Err(wrong("deleted", "must be true or false".into())),
    };
    let profile: Profile = serde_path_to_error::deserialize(serde_json::Value::Object(record))
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let field = match inner.strip_prefix("unknown field `") {
                Some(rest) => rest.split('`').next().unwrap_or_default().to_owned(),
                None => path,
            };
            wrong(&field, inner)
        })?;
    validate(&customer_id, &profile)?;
    Ok((customer_id, (!deleted).then_some(profile)))
}

fn validate(id: &str, p: &Profile) -> std::result::Result<(), Rejection> {
    let invalid = |field: &str, detail: String| {
        Err(Rejection::new(
            RejectReason::InvalidValue,
            Some(field),
            detail,
        ))
    };
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return invalid(
            "customer_id",
            format!("must be 1 to {MAX_ID_BYTES} bytes without control characters"),
        );
    }
    for (field, name) in [("tier", &p.tier), ("segment", &p.segment)] {
        if let Some(name) = name {
            if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control)
            {
                return invalid(
                    field,
                    format!("must be 1 to {MAX_NAME_BYTES} bytes without control characters"),
                );
            }
        }
    }
    if let Some(country) = &p.home_country {
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return invalid(
                "home_country",
                format!("`{country}` is not an upper-case ISO 3166 alpha-2 code"),
            );
        }
    }
    if let Some(ts) = p.signup_ts {
        if !(0..=MAX_TS).contains(&ts) {
            return invalid(
                "signup_ts",
                format!("{ts} is not a time in ms since the epoch (0..={MAX_TS})"),
            );
        }
    }
    Ok(())
}

/// The profiles a run decides with: the state store's, with the defaults for a customer who
/// has none.
pub struct ProfileBook {
    store: Arc<StateStore>,
    default: Arc<Profile>,
    telemetry: Telemetry,
}

impl ProfileBook {
    pub fn new(store: Arc<StateStore>, config: &ProfilesConfig, telemetry: Telemetry) -> Self {
        let default = Profile {
            tier: Some(config.default_tier.clone()),
            marketing_consent: config.default_consent,
            ..Profile::default()
        };
        ProfileBook {
            store,
            default: Arc::new(default),
            telemetry,
        }
    }

    /// The customer's profile, or the defaults (counted) when they have none. A stored
    /// profile that cannot be read counts as none, with a log line: a decision never waits on
    /// a broken record.
    pub fn get(&self, customer_id: &str) -> Arc<Profile> {
        let stored = match self.store.profile(customer_id) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, customer_id, "Cannot read a stored profile; using the defaults.");
                None
            }
        };
        match stored.map(|json| serde_json::from_slice::<Profile>(&json)) {
            Some(Ok(profile)) => Arc::new(profile),
            Some(Err(error)) => {
                tracing::warn!(%error, customer_id, "A stored profile does not parse; using the defaults.");
                self.missing()
            }
            None => self.missing(),
        }
    }

    fn missing(&self) -> Arc<Profile> {
        self.telemetry.emit(ProfileMissing);
        self.default.clone()
    }

    /// Stores `updates` with how far `source` has been read, in one transaction.
    pub fn store(&self, updates: &[Update], source: &str, resume: &Offsets) -> Result<()> {
        let encoded: Vec<(String, Option<Vec<u8>>)> = updates
            .iter()
            .map(|(id, profile)| {
                let json = profile
                    .as_ref()
                    .map(|p| serde_json::to_vec(p).expect("profiles always serialize"));
                (id.clone(), json)
            })
            .collect();
        self.store.put_profiles(&encoded, source, resume)?;
        self.telemetry.emit(ProfilesStored {
            count: updates.len() as u64,
        });
        Ok(())
    }

    /// How many profiles are stored.
    pub fn len(&self) -> Result<u64> {
        self.store.profiles_len()
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Where following `source` resumes.
    pub fn resume(&self, source: &str) -> Result<Offsets> {
        self.store.profile_offsets(source)
    }
}

/// How a profile source's records are written.
#[derive(Debug, Clone)]
pub enum ProfileFormat {
    /// One JSON profile record each.
    Json,
    /// CSV: the first record is the header, read through these settings' `columns`.
    Csv(ProfilesConfig),
}

/// A profile source's records on their way into the book: each one taken in is held until
/// `store` writes what was taken, with the source's position, in one transaction (one per
/// batch when following, one per many batches when loading).
pub struct ProfileUpdates {
    /// The spec of the source: its resume offsets are kept under it.
    spec: String,
    book: Arc<ProfileBook>,
    format: ProfileFormat,
    /// A CSV source's columns, once its header is read.
    columns: Option<CsvColumns>,
    resume: Offsets,
    /// Taken in and not yet stored.
    updates: Vec<Update>,
}

impl ProfileUpdates {
    /// Updates for `book` from the source `spec`, opened at `resume`.
    pub fn new(spec: &str, book: Arc<ProfileBook>, format: ProfileFormat, resume: Offsets) -> Self {
        ProfileUpdates {
            spec: spec.to_owned(),
            book,
            format,
            columns: None,
            resume,
            updates: Vec::new(),
        }
    }

    /// Takes one record in, or says why it is no profile record. A CSV header whose columns
    /// do not match `profiles.columns` is a configuration error naming the key.
    pub fn take(&mut self, record: &SourceRecord) -> Result<Option<Rejection>> {
        let Position { partition, offset } = record.position;
        self.resume.insert(partition, offset + 1);
        let parsed = match (&self.format, &self.columns) {
            (ProfileFormat::Json, _) => parse(&record.payload),
            (ProfileFormat::Csv(_), Some(columns)) => columns.parse(&record.payload),
            (ProfileFormat::Csv(config), None) => {
                let columns = CsvColumns::new(&record.payload, config).map_err(|reason| {
                    crate::error::Error::Config {
                        layer: self.spec.clone(),
                        key: "profiles.columns".into(),
                        reason,
                    }
                })?;
                self.columns = Some(columns);
                return Ok(None);
            }
        };
        Ok(match parsed {
            Ok(update) => {
                self.updates.push(update);
                None
            }
            Err(rejection) => Some(rejection),
        })
    }

    /// Profiles taken in and not yet stored.
    pub fn unstored(&self) -> usize {
        self.updates.len()
    }

    /// Stores what was taken in, with where the source stands, in one transaction; returns how
    /// many profiles that was.
    pub fn store(&mut self) -> Result<u64> {
        self.book.store(&self.updates, &self.spec, &self.resume)?;
        let stored = self.updates.len() as u64;
        self.updates.clear();
        Ok(stored)
    }
}

/// How a CSV profile file's columns map to profile fields: `profiles.columns` names the column
/// holding each field that is not named as the field; `channels` lists the reachable channels
/// separated by `|`; columns that are no field become `attributes`.
#[derive(Debug, Clone)]
pub struct CsvColumns {
    header: Vec<String>,
    /// Per column, the field it holds (`None`: an attribute).
    fields: Vec<Option<&'static str>>,
}

const CSV_FIELDS: [&str; 8] = [
    "customer_id",
    "tier",
    "segment",
    "home_country",
    "signup_ts",
    "marketing_consent",
    "channels",
    "preferred_channel",
];

impl CsvColumns {
    /// The mapping of a file whose header line is `header`; a mapped column the header lacks
    /// is an error naming the key.
    pub fn new(header: &[u8], config: &ProfilesConfig) -> std::result::Result<Self, String> {
        let header: Vec<String> = split(header, b',')
            .map_err(|e| format!("its header line: {e}"))?
            .fields()
            .map(|f| f.trim().to_owned())
            .collect();
        let mut fields = vec![None; header.len()];
        for field in CSV_FIELDS {
            let column = config.columns.get(field).map_or(field, String::as_str);
            match header.iter().position(|h| h == column) {
                Some(at) => fields[at] = Some(field),
                None if config.columns.contains_key(field) => {
                    return Err(format!(
                        "profiles.columns.{field} names the column `{column}`, which the header lacks"
                    ))
                }
                None if field == "customer_id" => {
                    return Err("the header has no `customer_id` column (profiles.columns.customer_id names another)".into())
                }
                None => {}
            }
        }
        Ok(CsvColumns { header, fields })
    }

    /// One CSV row as a profile update.
    pub fn parse(&self, row: &[u8]) -> std::result::Result<Update, Rejection> {
        let bad = |detail: String| Rejection::new(RejectReason::InvalidCsv, None, detail);
        let record = split(row, b',').map_err(bad)?;
        if record.len() != self.header.len() {
            return Err(bad(format!(
                "{} columns where the header has {}",
                record.len(),
                self.header.len()
            )));
        }
        let mut json = serde_json::Map::new();
        let mut attributes = serde_json::Map::new();
        for ((value, field), column) in record.fields().zip(&self.fields).zip(&self.header) {
            let value = value.trim();
            let Some(field) = field else {
                attributes.insert(column.clone(), value.into());
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let typed = |what: &str| {
                Rejection::new(
                    RejectReason::WrongType,
                    Some(field),
                    format!("`{value}` is not {what}"),
                )
            };
            let value: serde_json::Value = match *field {
                "signup_ts" => value
                    .parse::<i64>()
                    .map_err(|_| typed("a time in ms since the epoch"))?
                    .into(),
                "marketing_consent" => match value.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => true.into(),
                    "false" | "no" | "0" => false.into(),
                    _ => return Err(typed("true or false")),
                },
                "channels" => value
                    .split('|')
                    .map(|c| (c.trim().to_owned(), serde_json::Value::Bool(true)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
                _ => value.into(),
            };
            json.insert((*field).to_owned(), value);
        }
        if !attributes.is_empty() {
            json.insert("attributes".into(), attributes.into());
        }
        parse(&serde_json::to_vec(&json).expect("a map always serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_record_reads_with_its_channels_and_attributes() {
        let (id, profile) = parse(br#"{"customer_id":"c-1","tier":"vip","home_country":"FR","signup_ts":1700000000000,"marketing_consent":true,"channels":{"email":true,"sms":false},"preferred_channel":"sms","attributes":{"ltv":1200}}"#).unwrap();
        let profile = profile.unwrap();
        assert_eq!(id, "c-1");
        assert_eq!(profile.tier.as_deref(), Some("vip"));
        assert!(profile.reachable(Channel::Email));
        assert!(!profile.reachable(Channel::Sms) && !profile.reachable(Channel::Push));
        assert_eq!(profile.attributes["ltv"], 1200);
        let (_, deleted) = parse(br#"{"customer_id":"c-1","deleted":true}"#).unwrap();
        assert!(deleted.is_none());
    }

    #[test]
    fn a_malformed_profile_names_the_field_and_the_reason() {
        let cases: [(&[u8], RejectReason, Option<&str>); 6] = [
            (b"{not json", RejectReason::InvalidJson, None),
            (
                br#"{"tier":"vip"}"#,
                RejectReason::MissingField,
                Some("customer_id"),
            ),
            (
                br#"{"customer_id":"c-1","signup_ts":"yesterday"}"#,
                RejectReason::WrongType,
                Some("signup_ts"),
            ),
            (
                br#"{"customer_id":"c-1","home_country":"France"}"#,
                RejectReason::InvalidValue,
                Some("home_country"),
            ),
            (
                br#"{"customer_id":"c-1","channels":{"fax":true}}"#,
                RejectReason::WrongType,
                Some("channels"),
            ),
            (
                br#"{"customer_id":"c-1","tierr":"vip"}"#,
                RejectReason::WrongType,
                Some("tierr"),
            ),
        ];
        for (raw, reason, field) in cases {
            let rejection = parse(raw).unwrap_err();
            assert_eq!(rejection.reason, reason, "{}", rejection.detail);
            if let Some(field) = field {
                assert!(
                    rejection
                        .field
                        .as_deref()
                        .is_some_and(|f| f.contains(field)),
                    "{rejection:?}"
                );
            }
        }
        let unknown = parse(br#"{"customer_id":"c-1","tierr":"vip"}"#).unwrap_err();
        assert!(unknown.detail.contains("tierr"), "{}", unknown.detail);
    }

    #[test]
    fn csv_rows_map_columns_to_fields_and_keep_the_rest_as_attributes() {
        let mut config = ProfilesConfig {
            default_tier: "standard".into(),
            default_consent: false,
            columns: BTreeMap::new(),
        };
        config.columns.insert("customer_id".into(), "cust".into());
        config
            .columns
            .insert("marketing_consent".into(), "opt_in".into());
        let columns = CsvColumns::new(b"cust,tier,opt_in,channels,region", &config).unwrap();
        let (id, profile) = columns.parse(b"c-7,gold,yes,email|push,north").unwrap();
        let profile = profile.unwrap();
        assert_eq!(id, "c-7");
        assert!(profile.marketing_consent);
        assert!(profile.reachable(Channel::Push) && !profile.reachable(Channel::Sms));
        assert_eq!(profile.attributes["region"], "north");
        let err = columns.parse(b"c-7,gold,maybe,email,north").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("marketing_consent"));

        config.columns.insert("tier".into(), "level".into());
        let err = CsvColumns::new(b"cust,tier", &config).unwrap_err();
        assert!(
            err.contains("profiles.columns.tier") && err.contains("level"),
            "{err}"
        );
    }
}
