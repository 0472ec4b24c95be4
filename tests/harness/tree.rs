//! What a run left on disk: every path under a folder, checked against the folders it may
//! write to and the identifier gate's names. Shared by the CLI's and the service's tests.

use std::path::{Path, PathBuf};

/// Every file and folder under `root`, relative, sorted.
pub fn tree(root: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            all.push(p.strip_prefix(root).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    all.sort();
    all
}

/// A name the identifier gate could have given: `[A-Za-z0-9._-]`, no leading dot, not too
/// long.
pub fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Every path under `root`, each as (its first component, the components below it), after
/// checking that the first is one of `tops` (nothing was written anywhere else).
pub fn paths_under(root: &Path, tops: &[&str]) -> Vec<(String, Vec<String>)> {
    tree(root)
        .into_iter()
        .map(|rel| {
            let mut parts = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            let top = parts.next().unwrap();
            assert!(
                tops.contains(&top.as_str()),
                "{} was written outside {tops:?}",
                rel.display()
            );
            (top, parts.collect())
        })
        .collect()
}
