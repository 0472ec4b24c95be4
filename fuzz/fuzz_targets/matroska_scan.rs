//! The streaming Matroska/WebM scan: any bytes must give a report or a typed error, never
//! a panic, a hang or an unbounded allocation. What compose makes of the report to start
//! late in the file (the cluster to resume at, the header rewritten to stand before it) is
//! held to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic::compose::resume::header_for_resuming;
use mosaic::inspect::{InspectOptions, inspect_container};

fuzz_target!(|data: &[u8]| {
    let _ = header_for_resuming(data);
    let Ok(report) = inspect_container(data, "fuzz.webm", &InspectOptions::default()) else {
        return;
    };
    let index = &report.clusters;
    for start in [0, 1, 1_000_000_000, i64::MAX] {
        let _ = index.resume_video(start);
        let _ = index.resume_audio(start, 250_000_000);
    }
    if let Some(end) = index.header_end().and_then(|e| usize::try_from(e).ok())
        && let Some(header) = data.get(..end)
        && let Some(rewritten) = header_for_resuming(header)
    {
        assert_eq!(rewritten.len(), header.len());
    }
});
