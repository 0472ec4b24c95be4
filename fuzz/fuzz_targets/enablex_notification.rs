//! The EnableX notification parser, and the timeline of what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic::source::enablex::{self, FileFacts};

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = enablex::parse("fuzz.json", data) {
        let facts: Vec<FileFacts> = n
            .files
            .iter()
            .enumerate()
            .map(|(i, _)| FileFacts {
                date_utc_ms: (i % 2 == 0).then_some(i as i64 * 1_000),
                end_ms: 1_000,
            })
            .collect();
        let t = enablex::timeline(&n, &facts);
        let _ = t.span();
    }
});
