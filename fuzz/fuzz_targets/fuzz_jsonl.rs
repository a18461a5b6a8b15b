//! The JSONL reader (line mode and `[...]` array mode) on arbitrary bytes: it may reject them, it
//! must not panic, and every row it reports must point at a line of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verbatim::ingest::{read_bytes, Format};

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = read_bytes(data, Format::Jsonl, &common::mapping(), &common::options()) {
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        for row in &report.rows {
            let line = match row {
                Ok(r) => r.line,
                Err(e) => e.line,
            };
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
    }
});
