//! Whole JSON Lines streams, as a hostile or broken producer writes them: read by the engine's
//! own line source (with a small record limit, so long lines are cut), decoded, and each event
//! processed by its customer's state with failure isolation, as the actors do. Time attacks
//! (times in microseconds, far future, before 1970, out of order) and identity attacks (ids
//! repeated within and across customers, reused with other content, control characters) come
//! from the seeds and the mutations. Checked on every stream:
//! - every record read has exactly one outcome, scored or dead-lettered;
//! - a decision's score is a number unless it is degraded, and it says why when it is;
//! - two different decisions never share a `decision_id`: a repeat is the same decision;
//! - every customer's state survives passivation (encode, decode) unchanged.
#![no_main]

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use vigil_engine::actors::customer::process_isolated;
use vigil_engine::decision::Decision;
use vigil_engine::decode::decode;
use vigil_engine::event::Inbound;
use vigil_engine::outcome::Outcome;
use vigil_engine::scoring::CustomerState;
use vigil_engine::source::file::LineSource;
use vigil_engine::source::Source;

/// Records longer than this are cut by the source.
const LIMIT: usize = 4_096;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let scoring = common::scoring();
    let records = runtime().block_on(async {
        let mut source =
            LineSource::from_reader(std::io::Cursor::new(data.to_vec()), "fuzz".into(), LIMIT);
        let mut records = Vec::new();
        while source
            .next_batch(&mut records)
            .await
            .expect("reading memory")
        {}
        records
    });
    let mut customers: HashMap<String, CustomerState> = HashMap::new();
    let mut decided: HashMap<String, Decision> = HashMap::new();
    let (mut scored, mut rejected) = (0, 0);
    for record in &records {
        if record.cut.is_some() {
            assert!(record.payload.len() <= LIMIT + 64);
            rejected += 1;
            continue;
        }
        let Ok(event) = decode(&record.payload, LIMIT) else {
            rejected += 1;
            continue;
        };
        let state = customers.entry(event.customer_id.clone()).or_default();
        let inbound = Inbound {
            watermark: vigil_engine::pipeline::watermark::NO_WATERMARK,
            event,
            position: record.position,
            ingested: Instant::now(),
            raw: record.payload.clone(),
        };
        match process_isolated(state, &inbound, scoring) {
            Outcome::Scored { decision, .. } => {
                scored += 1;
                if let Some(decision) = decision {
                    assert_eq!(decision.score.is_some(), !decision.degraded);
                    assert!(decision.score.is_none_or(f64::is_finite));
                    assert_eq!(decision.degraded, decision.degraded_reason.is_some());
                    if let Some(earlier) = decided.get(&decision.decision_id) {
                        assert_eq!(earlier, &*decision, "two decisions share an id");
                    }
                    decided.insert(decision.decision_id.clone(), *decision);
                }
            }
            Outcome::Rejected { .. } => rejected += 1,
        }
    }
    assert_eq!(scored + rejected, records.len());
    for state in customers.values_mut() {
        let restored = CustomerState::decode(&state.encode()).expect("state decodes");
        assert_eq!(&restored, state);
    }
});
