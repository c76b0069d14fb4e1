//! Analysts' verdicts on decisions, the labels that flow back into training: a `Feedback`
//! record per verdict (written by the risk console to its feedback sink), and `FeedbackLabels`,
//! the latest verdict per event read back from such a file, which `vigil train --labels` joins
//! onto history and `vigil replay --labels` measures the decisions against.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::decision::DecisionKind;
use crate::error::{Error, Result};

/// What an analyst found a fraud decision to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The payment was fraud: the decision was right.
    ConfirmedFraud,
    /// The payment was the customer's own: the decision was wrong.
    FalsePositive,
    /// The hold was lifted after review (the customer confirmed the payment): not fraud.
    Released,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [
        Verdict::ConfirmedFraud,
        Verdict::FalsePositive,
        Verdict::Released,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::ConfirmedFraud => "confirmed_fraud",
            Verdict::FalsePositive => "false_positive",
            Verdict::Released => "released",
        }
    }

    /// The fraud label the verdict gives the payment.
    pub fn is_fraud(self) -> bool {
        self == Verdict::ConfirmedFraud
    }
}

/// One analyst's verdict on one decision, as the feedback sink holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub decision_id: String,
    pub event_id: String,
    pub customer_id: String,
    pub event_ts: i64,
    pub decision: DecisionKind,
    pub verdict: Verdict,
    /// The name of the analyst's console token (`local` on a console without tokens).
    pub analyst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the verdict was given, ms since the epoch.
    pub ts: i64,
}

/// The latest verdict on each event of a feedback file.
#[derive(Debug, Default)]
pub struct FeedbackLabels {
    by_event: HashMap<String, Verdict>,
}

impl FeedbackLabels {
    /// Reads a feedback file (JSON Lines, as the console writes it; `file:` before the path is
    /// allowed). Later verdicts on an event replace earlier ones, in the order of their `ts`. A
    /// line that is not a feedback record is an error naming the file, the line and the field.
    pub fn read(path: &Path) -> Result<FeedbackLabels> {
        let path = path
            .to_str()
            .and_then(|p| p.strip_prefix("file:"))
            .map_or(path, Path::new);
        let text = std::fs::read_to_string(path).map_err(|cause| Error::ConfigRead {
            path: path.to_owned(),
            cause,
        })?;
        let mut latest: HashMap<String, (i64, Verdict)> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut json = serde_json::Deserializer::from_str(line);
            let feedback: Feedback =
                serde_path_to_error::deserialize(&mut json).map_err(|e| Error::Config {
                    layer: format!("{} line {}", path.display(), i + 1),
                    key: e.path().to_string(),
                    reason: format!("is not valid: {}", e.inner()),
                })?;
            let entry = latest
                .entry(feedback.event_id)
                .or_insert((feedback.ts, feedback.verdict));
            if feedback.ts >= entry.0 {
                *entry = (feedback.ts, feedback.verdict);
            }
        }
        Ok(FeedbackLabels {
            by_event: latest.into_iter().map(|(e, (_, v))| (e, v)).collect(),
        })
    }

    /// The verdict on `event_id`, if an analyst gave one.
    pub fn verdict(&self, event_id: &str) -> Option<Verdict> {
        self.by_event.get(event_id).copied()
    }

    pub fn len(&self) -> usize {
        self.by_event.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_event.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: &str, verdict: &str, ts: i64) -> String {
        format!(
            r#"{{"decision_id":"c-1/{event}/5/freeze","event_id":"{event}","customer_id":"c-1","event_ts":5,"decision":"freeze","verdict":"{verdict}","analyst":"ana","ts":{ts}}}"#
        )
    }

    #[test]
    fn the_latest_verdict_on_an_event_wins_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feedback.jsonl");
        let lines = [
            line("e-1", "false_positive", 20),
            line("e-1", "confirmed_fraud", 10),
            line("e-2", "released", 5),
            line("e-2", "confirmed_fraud", 6),
        ];
        std::fs::write(&path, lines.join("\n") + "\n\n").unwrap();
        let spec = format!("file:{}", path.display());
        let labels = FeedbackLabels::read(Path::new(&spec)).unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels.verdict("e-1"), Some(Verdict::FalsePositive));
        assert_eq!(labels.verdict("e-2"), Some(Verdict::ConfirmedFraud));
        assert_eq!(labels.verdict("e-3"), None);

        std::fs::write(
            &path,
            format!("{}\n{}\n", lines[0], line("e-3", "maybe", 1)),
        )
        .unwrap();
        let err = FeedbackLabels::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("feedback.jsonl line 2") && err.contains("`verdict`"),
            "{err}"
        );
    }
}
