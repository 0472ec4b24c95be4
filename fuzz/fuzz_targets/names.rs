//! The identifier gate: whatever two identifiers an input holds, each gives a plain name that
//! `join_under` accepts, and two different identifiers never give the same name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic::names::{join_under, plain_name};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    let (na, nb) = (plain_name(a), plain_name(b));
    for (id, name) in [(a, &na), (b, &nb)] {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        assert!(
            !name.is_empty() && name.chars().all(allowed),
            "{id:?} -> {name:?}"
        );
        assert!(
            join_under(std::path::Path::new("/out"), name).is_ok(),
            "{id:?} -> {name:?}"
        );
        assert!(!name.starts_with('.') && name.len() <= mosaic::names::MAX_LEN);
    }
    if a != b {
        assert_ne!(na, nb, "{a:?} and {b:?}");
    }
});
