//! What the sinks are given: a decision as its JSON, keyed by customer id (so keyed sinks keep
//! a customer's decisions on one partition, in order), and a dead letter as a JSON record
//! `{reason, field, detail, raw, source}` with the original bytes (as hex when they are not
//! UTF-8). A record longer than `engine.dead_letter_raw_bytes` keeps only that much of itself,
//! with its full length and SHA-256 (`raw_bytes`, `raw_sha256`), so a hostile 50 MiB line makes
//! a dead letter of a few KiB that still identifies it. A record the source already cut at the
//! size limit brings its whole length and SHA-256 with it.

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dead_letter::{DeadLetter, RejectReason};
use crate::decision::Decision;
use crate::event::Position;
use crate::sink::SinkRecord;

/// A decision as a sink record, keyed by customer id.
pub fn decision_record(decision: &Decision) -> SinkRecord {
    SinkRecord {
        key: Bytes::from(decision.customer_id.clone().into_bytes()),
        value: Bytes::from(decision.to_json().into_bytes()),
    }
}

#[derive(Serialize)]
struct DeadLetterRecord<'a> {
    reason: RejectReason,
    field: Option<&'a str>,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
    /// Hex of the original bytes, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_hex: Option<String>,
    /// The whole record's length and SHA-256 (hex), when `raw` holds only its start.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_sha256: Option<String>,
    source: Option<Position>,
}

/// The dead-letter JSON record, keeping at most `keep` bytes of the record, without a trailing
/// newline.
pub fn dead_letter_json(letter: &DeadLetter, keep: usize) -> String {
    let raw = &letter.raw[..];
    let cut = letter.cut.is_some() || raw.len() > keep;
    let kept = &raw[..raw.len().min(keep)];
    let text = match std::str::from_utf8(kept) {
        Ok(text) => Some(text),
        // Cut inside a character: keep the characters before it.
        Err(e) if cut && e.error_len().is_none() => {
            Some(std::str::from_utf8(&kept[..e.valid_up_to()]).expect("valid up to there"))
        }
        Err(_) => None,
    };
    let record = DeadLetterRecord {
        reason: letter.rejection.reason,
        field: letter.rejection.field.as_deref(),
        detail: &letter.rejection.detail,
        raw: text,
        raw_hex: text.is_none().then(|| hex(kept)),
        raw_bytes: cut.then(|| letter.cut.map_or(raw.len() as u64, |c| c.bytes)),
        raw_sha256: cut.then(|| match letter.cut {
            Some(c) => hex(&c.sha256),
            None => hex(&Sha256::digest(raw)),
        }),
        source: letter.position,
    };
    serde_json::to_string(&record).expect("dead letters always serialize")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A dead letter as a sink record, keeping at most `keep` bytes of the record; dead letters
/// have no key.
pub fn dead_letter_record(letter: &DeadLetter, keep: usize) -> SinkRecord {
    SinkRecord {
        key: Bytes::new(),
        value: Bytes::from(dead_letter_json(letter, keep).into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::Rejection;

    const KEEP: usize = 4096;

    fn letter(raw: Vec<u8>) -> serde_json::Value {
        let letter = DeadLetter {
            rejection: Rejection::new(RejectReason::Oversized, None, "too long"),
            raw: Bytes::from(raw),
            position: Some(Position {
                partition: 0,
                offset: 7,
            }),
            cut: None,
        };
        serde_json::from_str(&dead_letter_json(&letter, KEEP)).unwrap()
    }

    #[test]
    fn a_record_the_source_cut_keeps_the_whole_records_length_and_hash() {
        let letter = DeadLetter {
            rejection: Rejection::new(RejectReason::Oversized, None, "too long"),
            raw: Bytes::from(vec![b'x'; 100]),
            position: Some(Position {
                partition: 0,
                offset: 7,
            }),
            cut: Some(crate::source::Cut {
                bytes: 300 << 20,
                sha256: [0xab; 32],
            }),
        };
        let json: serde_json::Value =
            serde_json::from_str(&dead_letter_json(&letter, KEEP)).unwrap();
        assert_eq!(json["raw"].as_str().unwrap().len(), 100);
        assert_eq!(json["raw_bytes"], 300u64 << 20);
        assert_eq!(json["raw_sha256"], "ab".repeat(32));
        // With nothing of the record kept, the length and hash still identify it.
        let bare: serde_json::Value = serde_json::from_str(&dead_letter_json(&letter, 0)).unwrap();
        assert_eq!(
            (bare["raw"].as_str(), &bare["raw_bytes"]),
            (Some(""), &json["raw_bytes"])
        );
    }

    #[test]
    fn a_long_record_keeps_its_start_length_and_hash_only() {
        // 50 MiB of control bytes would escape to 300 MB.
        let hostile = vec![0x01u8; 50 << 20];
        let json = letter(hostile.clone());
        let kept = json["raw"].as_str().unwrap();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(json["raw_bytes"], 50 << 20);
        assert_eq!(
            json["raw_sha256"].as_str().unwrap(),
            hex(&Sha256::digest(&hostile))
        );
        assert!(serde_json::to_string(&json).unwrap().len() < 8 * KEEP);

        // A cut inside a character keeps text, not hex.
        let mut text = vec![b'a'; KEEP - 1];
        text.extend("é and more".as_bytes());
        let json = letter(text);
        assert_eq!(json["raw"].as_str().unwrap().len(), KEEP - 1);

        // A short record is whole, with no length or hash.
        let json = letter(b"{\"short\":1}".to_vec());
        assert_eq!(json["raw"], "{\"short\":1}");
        assert!(json.get("raw_bytes").is_none() && json.get("raw_sha256").is_none());
    }
}
