//! The LiveSwitch recording log parser, and the session timeline of what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic::source::liveswitch::{log, session};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = log::parse("fuzz.json", data) {
        for s in session::sessions(vec![parsed.recording]) {
            let t = s.timeline(&|_| None);
            let _ = t.span();
            let _ = s.key();
        }
    }
});
