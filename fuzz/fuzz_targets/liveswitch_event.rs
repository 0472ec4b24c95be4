//! The LiveSwitch webhook event parser, and the session timeline of what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic::source::liveswitch::event::{self, FileKind};
use mosaic::source::liveswitch::session::Session;

fuzz_target!(|data: &[u8]| {
    let mut find =
        |connection: &str, kind: FileKind| Ok(format!("{connection}.{}", kind.extension()));
    if let Ok(e) = event::parse("fuzz.json", data, &mut find) {
        let s = Session::of_channel(
            e.connections,
            Some((e.channel.start_ms, e.channel.stop_ms)),
            e.channel.id,
            e.channel.application_id,
            e.channel.channel_id,
        );
        let t = s.timeline(&|_| None);
        let _ = t.span();
        let _ = s.key();
    }
});
