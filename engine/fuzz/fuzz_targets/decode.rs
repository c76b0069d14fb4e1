//! The event decoder on arbitrary bytes: it never panics, and whatever it accepts survives a
//! round trip through the engine's own JSON unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_engine::decode::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = decode(data, 64 * 1024) {
        let again = decode(event.to_json().as_bytes(), usize::MAX)
            .expect("an accepted event re-encodes to an accepted record");
        assert_eq!(again, event);
    }
});
