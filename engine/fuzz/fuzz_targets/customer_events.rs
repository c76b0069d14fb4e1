//! One customer's state through arbitrary event sequences: lines of the input that decode are
//! fed, in order, through features, models, policy and decision building; nothing panics, and
//! the state survives passivation (encode, decode) unchanged.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vigil_engine::config::{Config, LatencyBudget};
use vigil_engine::decode::decode;
use vigil_engine::event::{Inbound, Position};
use vigil_engine::scoring::{CustomerState, Scoring};
use vigil_engine::telemetry::Telemetry;

fn scoring() -> &'static Scoring {
    static SCORING: OnceLock<Scoring> = OnceLock::new();
    SCORING.get_or_init(|| {
        let mut config = Config::builtin();
        config.engine.latency_budget = LatencyBudget::uniform(Duration::from_secs(3600));
        Scoring::from_config(&config, Telemetry::new()).expect("shipped models load")
    })
}

fuzz_target!(|data: &[u8]| {
    let scoring = scoring();
    let mut state = CustomerState::default();
    for (offset, line) in data.split(|&b| b == b'\n').enumerate() {
        let Ok(mut event) = decode(line, 64 * 1024) else {
            continue;
        };
        event.customer_id = "c-fuzz".to_owned();
        let inbound = Inbound {
            event,
            position: Position {
                partition: 0,
                offset: offset as u64,
            },
            ingested: Instant::now(),
            raw: Bytes::copy_from_slice(line),
        };
        state.process(&inbound, scoring);
        let restored = CustomerState::decode(&state.encode()).expect("state decodes");
        assert_eq!(restored, state);
    }
});
