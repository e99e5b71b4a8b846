//! Layers applied in order with the OCI whiteout rules, and the difference
//! of two resulting filesystems.
//!
//! Whiteouts (image-spec `layer.md`): `<dir>/.wh.<name>` removes `<name>`
//! (and what is below it) from the lower layers; `<dir>/.wh..wh..opq` makes
//! `<dir>` opaque, removing everything the lower layers put in it. Both
//! apply to the lower layers only, so a layer's own entries are added
//! after its whiteouts are applied.

use std::collections::BTreeMap;

use super::index::{EntryKind, FileEntry};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A merged filesystem: path → the entry that is visible there.
pub type Merged<'a> = BTreeMap<&'a str, &'a FileEntry>;

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Removes everything strictly below `dir` (`""` is the root).
fn remove_below(merged: &mut Merged<'_>, dir: &str) {
    let prefix = format!("{dir}/");
    let doomed: Vec<&str> = merged.range(prefix.as_str()..).map(|(k, _)| *k).take_while(|k| k.starts_with(&prefix)).collect();
    for k in doomed {
        merged.remove(k);
    }
}

/// Applies the layers, lowest first.
pub fn merge_layers<'a>(layers: &[&'a [FileEntry]]) -> Merged<'a> {
    let mut merged: Merged<'a> = BTreeMap::new();
    for layer in layers {
        for e in layer.iter() {
            let (dir, base) = split(&e.path);
            if base == OPAQUE {
                remove_below(&mut merged, dir);
            } else if let Some(name) = base.strip_prefix(WHITEOUT) {
                let target = format!("{dir}/{name}");
                merged.remove(target.as_str());
                remove_below(&mut merged, &target);
            }
        }
        for e in layer.iter() {
            if split(&e.path).1.starts_with(WHITEOUT) {
                continue;
            }
            // A non-directory somewhere above this path is replaced by the
            // directory this entry implies.
            let mut ancestor = split(&e.path).0;
            while !ancestor.is_empty() {
                if merged.get(ancestor).is_some_and(|a| a.kind != EntryKind::Dir) {
                    merged.remove(ancestor);
                }
                ancestor = split(ancestor).0;
            }
            if let Some(old) = merged.get(e.path.as_str()) {
                if old.kind == EntryKind::Dir && e.kind != EntryKind::Dir {
                    remove_below(&mut merged, &e.path);
                }
            }
            merged.insert(&e.path, e);
        }
    }
    merged
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Modified,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Modified => "modified",
        }
    }
}

/// One path that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileChange<'a> {
    pub path: &'a str,
    pub change: Change,
    pub from: Option<&'a FileEntry>,
    pub to: Option<&'a FileEntry>,
}

/// Whether two entries at the same path differ in what a diff reports;
/// modification times are not recorded, so they never count.
fn same(a: &FileEntry, b: &FileEntry) -> bool {
    a.kind == b.kind && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.size == b.size && a.sha256 == b.sha256 && a.link == b.link
}

/// Every differing path, in path order (a merge-join of the two trees, so a
/// page is a `skip_while` over this iterator).
pub fn diff_files<'a>(from: &'a Merged<'a>, to: &'a Merged<'a>) -> impl Iterator<Item = FileChange<'a>> + 'a {
    let mut a = from.iter().peekable();
    let mut b = to.iter().peekable();
    std::iter::from_fn(move || loop {
        let change = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some((pa, _)), Some((pb, _))) if pa == pb => {
                let ((path, x), (_, y)) = (a.next()?, b.next()?);
                if same(x, y) {
                    continue;
                }
                FileChange { path, change: Change::Modified, from: Some(*x), to: Some(*y) }
            }
            (Some((pa, _)), Some((pb, _))) if pa > pb => {
                let (path, y) = b.next()?;
                FileChange { path, change: Change::Added, from: None, to: Some(*y) }
            }
            (None, Some(_)) => {
                let (path, y) = b.next()?;
                FileChange { path, change: Change::Added, from: None, to: Some(*y) }
            }
            (Some(_), _) => {
                let (path, x) = a.next()?;
                FileChange { path, change: Change::Removed, from: Some(*x), to: None }
            }
        };
        return Some(change);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, kind: EntryKind, content: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: content.len() as u64,
            sha256: (kind == EntryKind::File).then(|| content.into()),
            link: None,
        }
    }
    fn f(path: &str, content: &str) -> FileEntry {
        e(path, EntryKind::File, content)
    }
    fn d(path: &str) -> FileEntry {
        e(path, EntryKind::Dir, "")
    }

    fn paths(m: &Merged<'_>) -> Vec<String> {
        m.keys().map(|k| k.to_string()).collect()
    }

    #[test]
    fn whiteouts_remove_lower_entries_and_their_children() {
        let base = vec![d("/a"), f("/a/x", "1"), d("/a/sub"), f("/a/sub/y", "2"), f("/a.txt", "3"), f("/b", "4")];
        let upper = vec![f("/a/.wh.sub", ""), f("/.wh.b", ""), f("/a/sub2", "5")];
        let m = merge_layers(&[&base, &upper]);
        assert_eq!(paths(&m), ["/a", "/a.txt", "/a/sub2", "/a/x"]);
    }

    #[test]
    fn opaque_directory_hides_lower_content_but_keeps_its_own() {
        let base = vec![d("/etc"), f("/etc/a", "1"), f("/etc/b", "2"), f("/etcetera", "3")];
        let upper = vec![d("/etc"), f("/etc/.wh..wh..opq", ""), f("/etc/c", "4")];
        let m = merge_layers(&[&base, &upper]);
        assert_eq!(paths(&m), ["/etc", "/etc/c", "/etcetera"]);
    }

    #[test]
    fn a_file_replacing_a_directory_drops_the_directory_content() {
        let base = vec![d("/opt"), f("/opt/a", "1")];
        let upper = vec![f("/opt", "now a file")];
        let m = merge_layers(&[&base, &upper]);
        assert_eq!(paths(&m), ["/opt"]);
        // And back: a directory implied under a path that was a file.
        let third = vec![f("/opt/b", "2")];
        assert_eq!(paths(&merge_layers(&[&base, &upper, &third])), ["/opt/b"]);
    }

    #[test]
    fn diff_reports_added_removed_and_modified_attributes_only() {
        let mut owner = f("/o", "x");
        owner.uid = 1;
        let mut mode = f("/m", "x");
        mode.mode = 0o755;
        let from_layer = vec![f("/same", "s"), f("/gone", "g"), f("/c", "aa"), f("/o", "x"), f("/m", "x")];
        let to_layer = vec![f("/same", "s"), f("/c", "bb"), owner, mode, f("/new", "n")];
        let (fm, tm) = (merge_layers(&[&from_layer]), merge_layers(&[&to_layer]));
        let changes: Vec<(String, Change)> = diff_files(&fm, &tm).map(|c| (c.path.to_string(), c.change)).collect();
        assert_eq!(
            changes,
            [
                ("/c".to_string(), Change::Modified),
                ("/gone".to_string(), Change::Removed),
                ("/m".to_string(), Change::Modified),
                ("/new".to_string(), Change::Added),
                ("/o".to_string(), Change::Modified),
            ]
        );
    }
}
