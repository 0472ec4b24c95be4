//! The streaming Matroska/WebM scan: any bytes must give a report or a typed error, never
//! a panic, a hang or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic::inspect::{InspectOptions, inspect_container};

fuzz_target!(|data: &[u8]| {
    let _ = inspect_container(data, "fuzz.webm", &InspectOptions::default());
});
