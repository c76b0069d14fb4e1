//! CSV history through the Sparkov column mapping on arbitrary bytes: the first line is taken as
//! the header and resolved against the mapping, and every later line is decoded as a row. Nothing
//! panics, and an accepted row's event survives a round trip through the engine's own JSON.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use vigil_engine::decode::csv::{CsvRows, Mapping};
use vigil_engine::decode::{decode, Decoder};

const SPARKOV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/mappings/sparkov.toml"
);

fn mapping() -> &'static Mapping {
    static MAPPING: OnceLock<Mapping> = OnceLock::new();
    MAPPING.get_or_init(|| Mapping::load(Path::new(SPARKOV)).expect("the shipped mapping loads"))
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let Some(header) = lines.next() else { return };
    let Ok(rows) = CsvRows::new(mapping(), Path::new(SPARKOV), header, "fuzz.csv") else {
        return;
    };
    let decoder = Decoder::Csv(Arc::new(rows));
    for (line, row) in lines.enumerate() {
        if let Ok(event) = decoder.decode(row, 64 * 1024, line as u64 + 1) {
            let again = decode(event.to_json().as_bytes(), usize::MAX)
                .expect("an accepted row re-encodes to an accepted record");
            assert_eq!(again, event);
        }
    }
});
