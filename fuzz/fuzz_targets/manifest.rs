//! The OpenTok manifest parser, and the timeline built from whatever it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = mosaic::archive::manifest::Manifest::parse("fuzz.json", data) {
        let t = mosaic::source::opentok::timeline(&m);
        let _ = t.span();
        for s in &t.streams {
            let _ = s.presence();
        }
    }
});
