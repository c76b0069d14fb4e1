//! One customer's state through arbitrary event sequences: lines of the input that decode are
//! fed, in order, through features, models, policy and decision building; nothing panics, and
//! the state survives passivation (encode, decode) unchanged.
#![no_main]

mod common;

use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vigil_engine::decode::decode;
use vigil_engine::event::{Inbound, Position};
use vigil_engine::scoring::CustomerState;

fuzz_target!(|data: &[u8]| {
    let scoring = common::scoring();
    let mut state = CustomerState::default();
    for (offset, line) in data.split(|&b| b == b'\n').enumerate() {
        let Ok(mut event) = decode(line, 64 * 1024) else {
            continue;
        };
        event.customer_id = "c-fuzz".to_owned();
        let inbound = Inbound {
            watermark: vigil_engine::pipeline::watermark::NO_WATERMARK,
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
