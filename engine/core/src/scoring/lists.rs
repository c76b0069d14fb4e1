//! Lists: named sets of values a payment's field is checked against, the risk team's own
//! knowledge (merchants known for fraud, customers vetted by hand, countries under sanction).
//! Each list names the payment field it holds (`customer_id`, `merchant`, `mcc`, `country`,
//! `channel`) and, optionally, what membership does on its own: a `block` list forces a
//! freeze, an `allow` list caps the action at an alert; either way the decision's `rules` name
//! `list:NAME`. Rules test membership too (`{ in = "blocked_merchants" }`).
//!
//! A list is a lock-free concurrent set, so a value added or removed while the engine runs
//! takes effect at the next payment without stopping any actor, and reading it costs a hash
//! lookup. Lists are read from files at start (one value per line; blank lines and lines
//! starting with `#` are skipped); a changes source (`--lists fluvio:TOPIC`, `ListChanges`) then
//! adds and removes values live: `{"list":"NAME","value":"…"}`, with `"removed":true` to take
//! one out. It is read from its start on every run, over the files, so the changes apply in
//! the order they were made.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::ListConfig;
use crate::dead_letter::{RejectReason, Rejection};
use crate::source::SourceRecord;

/// The payment field a list holds values of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListField {
    CustomerId,
    Merchant,
    Mcc,
    Country,
    Channel,
}

/// What membership in a list does by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListAction {
    /// Freeze, whatever the score.
    Block,
    /// At most an alert, whatever the score or the rules (a block list still freezes).
    Allow,
}

/// The payment fields lists can hold.
#[derive(Debug, Clone, Copy)]
pub struct ListedFields<'a> {
    pub customer_id: &'a str,
    pub merchant: &'a str,
    pub mcc: &'a str,
    pub country: &'a str,
    pub channel: Option<&'a str>,
}

/// One named list.
pub struct List {
    pub name: Arc<str>,
    /// `list:NAME`, as decisions cite it.
    pub cited: Arc<str>,
    pub field: ListField,
    pub action: Option<ListAction>,
    values: papaya::HashSet<Box<str>>,
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("List")
            .field("name", &self.name)
            .field("field", &self.field)
            .field("action", &self.action)
            .field("values", &self.len())
            .finish()
    }
}

impl List {
    /// An empty list.
    pub fn new(name: &str, field: ListField, action: Option<ListAction>) -> List {
        List {
            name: name.into(),
            cited: format!("list:{name}").into(),
            field,
            action,
            values: papaya::HashSet::new(),
        }
    }

    /// The list `config` describes, read from its file; a file that cannot be read is the
    /// error returned, naming the file.
    pub fn load(name: &str, config: &ListConfig) -> std::result::Result<List, String> {
        let list = List::new(name, config.field, config.action);
        let text = std::fs::read_to_string(&config.file)
            .map_err(|e| format!("cannot read {}: {e}", config.file.display()))?;
        list.extend(values(&text));
        Ok(list)
    }

    /// Whether the payment's field holds a listed value.
    pub fn holds(&self, payment: &ListedFields) -> bool {
        let value = match self.field {
            ListField::CustomerId => payment.customer_id,
            ListField::Merchant => payment.merchant,
            ListField::Mcc => payment.mcc,
            ListField::Country => payment.country,
            ListField::Channel => match payment.channel {
                Some(channel) => channel,
                None => return false,
            },
        };
        self.values.pin().contains(value)
    }

    pub fn insert(&self, value: &str) -> bool {
        self.values.pin().insert(value.into())
    }

    pub fn remove(&self, value: &str) -> bool {
        self.values.pin().remove(value)
    }

    pub fn extend<'a>(&self, values: impl IntoIterator<Item = &'a str>) {
        let set = self.values.pin();
        for value in values {
            set.insert(value.into());
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// One change to a list, as a changes source writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListChange {
    list: String,
    value: String,
    #[serde(default)]
    removed: bool,
}

/// A changes source's records applied to the policy's lists as they are taken in.
pub struct ListChanges {
    lists: Vec<Arc<List>>,
    /// Changes applied since `applied` was last asked.
    since: u64,
}

impl ListChanges {
    pub fn new(lists: Vec<Arc<List>>) -> ListChanges {
        ListChanges { lists, since: 0 }
    }

    /// Applies one change, or says why it is none.
    pub fn take(&mut self, record: &SourceRecord) -> Option<Rejection> {
        let rejection = self.apply(&record.payload).err();
        self.since += u64::from(rejection.is_none());
        rejection
    }

    /// How many changes were applied since the last call.
    pub fn applied(&mut self) -> u64 {
        std::mem::take(&mut self.since)
    }

    fn apply(&self, raw: &[u8]) -> std::result::Result<(), Rejection> {
        let change: ListChange = serde_json::from_slice(raw).map_err(|e| {
            let reason = if e.is_syntax() || e.is_eof() {
                RejectReason::InvalidJson
            } else {
                RejectReason::WrongType
            };
            Rejection::new(reason, None, format!("not a list change: {e}"))
        })?;
        let list = self
            .lists
            .iter()
            .find(|l| *l.name == change.list)
            .ok_or_else(|| {
                let known: Vec<&str> = self.lists.iter().map(|l| &*l.name).collect();
                Rejection::new(
                    RejectReason::InvalidValue,
                    Some("list"),
                    format!(
                        "`{}` is not one of policy.lists ({})",
                        change.list,
                        known.join(", ")
                    ),
                )
            })?;
        if change.value.is_empty() {
            return Err(Rejection::new(
                RejectReason::InvalidValue,
                Some("value"),
                "an empty value",
            ));
        }
        if change.removed {
            list.remove(&change.value);
        } else {
            list.insert(&change.value);
        }
        Ok(())
    }
}

/// The values in a list file's text.
fn values(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment<'a>(merchant: &'a str) -> ListedFields<'a> {
        ListedFields {
            customer_id: "c-1",
            merchant,
            mcc: "5411",
            country: "FR",
            channel: None,
        }
    }

    #[test]
    fn a_list_holds_what_its_file_lists_and_changes_while_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("merchants.txt");
        std::fs::write(&file, "# known bad\nm-1\n\n  m-2  \n").unwrap();
        let config = ListConfig {
            file: file.clone(),
            field: ListField::Merchant,
            action: Some(ListAction::Block),
        };
        let list = List::load("bad_merchants", &config).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(&*list.cited, "list:bad_merchants");
        assert!(list.holds(&payment("m-1")) && list.holds(&payment("m-2")));
        assert!(!list.holds(&payment("m-3")) && !list.holds(&payment("# known bad")));
        assert!(list.insert("m-3"));
        assert!(list.holds(&payment("m-3")));
        assert!(list.remove("m-1"));
        assert!(!list.holds(&payment("m-1")));

        let missing = ListConfig {
            file: dir.path().join("nope.txt"),
            ..config
        };
        let err = List::load("x", &missing).unwrap_err();
        assert!(err.contains("nope.txt"), "{err}");
    }

    #[test]
    fn changes_add_and_remove_values_and_refuse_unknown_lists_by_field() {
        let list = Arc::new(List::new(
            "bad",
            ListField::Merchant,
            Some(ListAction::Block),
        ));
        let feed = ListChanges::new(vec![list.clone()]);
        feed.apply(br#"{"list":"bad","value":"m-9"}"#).unwrap();
        assert!(list.holds(&payment("m-9")));
        feed.apply(br#"{"list":"bad","value":"m-9","removed":true}"#)
            .unwrap();
        assert!(!list.holds(&payment("m-9")));
        let unknown = feed.apply(br#"{"list":"good","value":"m-9"}"#).unwrap_err();
        assert_eq!(unknown.field.as_deref(), Some("list"));
        assert!(unknown.detail.contains("`good`") && unknown.detail.contains("bad"));
        assert_eq!(
            feed.apply(b"{oops").unwrap_err().reason,
            RejectReason::InvalidJson
        );
    }
}
