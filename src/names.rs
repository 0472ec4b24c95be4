//! The one gate from identifiers to names (pure, but for [`dir_under`]).
//!
//! Every identifier that came from an input (a manifest's `streamId` and `id`, LiveSwitch
//! client, connection, channel and application ids, EnableX room and file names, API job
//! keys, labels) is data. It becomes a file name or an object key only through
//! [`plain_name`], which gives a name of `[A-Za-z0-9._-]`, not starting with a dot, at most
//! [`MAX_LEN`] bytes long. A name that is already plain is kept as it is; any other gets a
//! short hash of the original appended (`~` is not plain, so `a~b` becomes `a_b-h3f9c…`), so
//! two different identifiers never give the same name. Paths are then joined under the
//! folder the user chose with [`join_under`], which refuses anything but such a name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The longest name the gate gives, in bytes (the hash suffix included).
pub const MAX_LEN: usize = 96;

/// `-h` and 12 hex digits: the suffix of a name the gate changed.
const SUFFIX_LEN: usize = 2 + 12;

/// Whether `c` may appear in a plain name.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `name` is what the gate gives unchanged: allowed characters only, no leading
/// dot, not empty, not too long, and not ending like a changed name does (`-h` and 12 hex
/// digits), which keeps a plain identifier from ever equalling another one's changed name.
pub fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LEN
        && !name.starts_with('.')
        && name.chars().all(allowed)
        && !looks_changed(name)
}

fn looks_changed(name: &str) -> bool {
    let Some(at) = name.len().checked_sub(SUFFIX_LEN) else {
        return false;
    };
    let Some(tail) = name.get(at..) else {
        return false;
    };
    tail.starts_with("-h")
        && tail[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The plain name for an identifier; see the module docs.
pub fn plain_name(id: &str) -> String {
    if is_plain(id) {
        return id.to_owned();
    }
    let mut cleaned = String::with_capacity(id.len().min(MAX_LEN));
    for c in id.chars() {
        let c = if allowed(c) { c } else { '_' };
        // Runs of replaced characters become one.
        if !(c == '_' && cleaned.ends_with('_')) {
            cleaned.push(c);
        }
    }
    let cleaned = cleaned.trim_start_matches(['.', '_']).trim_end_matches('_');
    let keep = MAX_LEN - SUFFIX_LEN;
    // Every character left is ASCII, so any byte index is a boundary.
    let head = &cleaned[..cleaned.len().min(keep)];
    let head = head.trim_end_matches(['_', '-', '.']);
    let hash = format!("{:012x}", fnv1a(id.as_bytes()) >> 16);
    if head.is_empty() {
        format!("h{hash}")
    } else {
        format!("{head}-h{hash}")
    }
}

/// `<a>-<b>` of two identifiers, each through the gate; `<a>` alone when `b` adds nothing
/// or the two would be too long (a [`NameSet`] keeps such names distinct in a folder).
pub fn joined(a: &str, b: &str) -> String {
    let pa = plain_name(a);
    if b.trim().is_empty() || b == a {
        return pa;
    }
    let both = format!("{pa}-{}", plain_name(b));
    if both.len() <= MAX_LEN { both } else { pa }
}

/// 64-bit FNV-1a: stable across builds and platforms (the names it makes are kept).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Names given out within one folder, each distinct: a second identifier that maps to a
/// name already given (two labels alike, say) gets the hash of its own key appended.
#[derive(Debug, Default)]
pub struct NameSet {
    given: std::collections::BTreeSet<String>,
}

impl NameSet {
    /// A distinct plain name for `stem` (already through the gate) with extension `ext`
    /// (`""` for none); `key` is the identifier that tells this one apart.
    pub fn take(&mut self, stem: &str, key: &str, ext: &str) -> String {
        let with_ext = |s: &str| match ext {
            "" => s.to_owned(),
            e => format!("{s}.{e}"),
        };
        let mut name = with_ext(stem);
        let mut n = 0u32;
        while self.given.contains(&name.to_ascii_lowercase()) {
            n += 1;
            let tag = format!("{key}#{n}");
            let hash = format!("{:08x}", fnv1a(tag.as_bytes()) >> 32);
            name = with_ext(&format!("{stem}-{hash}"));
        }
        self.given.insert(name.to_ascii_lowercase());
        name
    }
}

/// `dir/name`, where `name` must be a single plain name (as the gate gives, or with an
/// extension): anything else is an error, so no identifier can lead out of `dir`.
pub fn join_under(dir: &Path, name: &str) -> Result<PathBuf> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LEN + 16
        && !name.starts_with('.')
        && name.chars().all(allowed);
    if !ok {
        return Err(Error::UnsafeOutputName {
            name: name.to_owned(),
        });
    }
    Ok(dir.join(name))
}

/// `dir/name` as a folder to write in: as [`join_under`], and refused when it exists as a
/// link, which could lead out of `dir` (edge: looks at the file system).
pub fn dir_under(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = join_under(dir, name)?;
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::UnsafeOutputName {
            name: format!("{name} (a link in {})", dir.display()),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers_are_kept() {
        for id in [
            "b40ef09b-3811-4b2c-9f1e-7a0b9d1c2e3f",
            "cam_1.2",
            "A-h12",
            "x-h0123456789",
        ] {
            assert_eq!(plain_name(id), id);
        }
    }

    #[test]
    fn hostile_identifiers_become_distinct_plain_names() {
        let long = "a".repeat(300);
        let ids = [
            "../../x",
            "/abs/x",
            "a/b",
            "a\\b",
            "..",
            ".",
            "",
            ".hidden",
            "a b",
            "a~b",
            "a_b",
            "Ångström",
            "Bob 🎥",
            "x\0y",
            long.as_str(),
            &format!("{long}b"),
            "x-h0123456789ab",
        ];
        let mut names = std::collections::BTreeSet::new();
        for id in ids {
            let name = plain_name(id);
            assert!(
                !name.is_empty() && name.len() <= MAX_LEN && !name.starts_with('.'),
                "{id:?} -> {name:?}"
            );
            assert!(name.chars().all(allowed), "{id:?} -> {name:?}");
            assert!(join_under(Path::new("/out"), &name).is_ok());
            assert!(names.insert(name.clone()), "{id:?} -> {name:?} twice");
        }
        assert!(plain_name("../../x").starts_with("x-h"));
        assert!(plain_name("a b").starts_with("a_b-h"));
        // A plain id that looks like a changed one is changed too, so it cannot collide.
        let changed = plain_name("a b");
        assert_ne!(plain_name(&changed), changed);
        // Stable: the same id gives the same name on every run and build.
        assert_eq!(plain_name("a/b"), plain_name("a/b"));
        assert_eq!(plain_name("a/b"), "a_b-he620c3190468");
    }

    #[test]
    fn join_under_takes_plain_names_only() {
        for bad in ["", "..", ".", "a/b", "../x", "/x", ".x", "a\\b", "é"] {
            assert!(join_under(Path::new("/out"), bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            join_under(Path::new("/out"), "a-b.webm").unwrap(),
            Path::new("/out/a-b.webm")
        );
    }

    #[test]
    fn a_name_set_keeps_names_distinct() {
        let mut set = NameSet::default();
        let a = set.take("cam-Alice", "s1", "webm");
        let b = set.take("cam-Alice", "s2", "webm");
        let c = set.take("CAM-alice", "s3", "webm");
        assert_eq!(a, "cam-Alice.webm");
        assert!(b != a && c != a && c != b, "{a} {b} {c}");
        assert!(b.starts_with("cam-Alice-") && b.ends_with(".webm"));
    }

    #[test]
    fn joined_names() {
        assert_eq!(joined("s1", ""), "s1");
        assert_eq!(joined("s1", "s1"), "s1");
        assert_eq!(joined("s1", "Bob"), "s1-Bob");
        assert!(joined("../s1", "Bob Smith").starts_with("s1-h"));
    }
}
