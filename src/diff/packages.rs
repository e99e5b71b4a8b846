//! Operating-system packages: the package databases Debian-like and Alpine
//! images carry, parsed to name → version, and two of them compared.
//!
//! dpkg's `status` and apk's `installed` are both paragraphs separated by
//! blank lines; dpkg names fields `Package:` / `Version:` / `Status:`, apk
//! uses one-letter keys `P:` / `V:`. Only packages dpkg reports as installed
//! count (a removed package keeps a paragraph with its config files).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The databases looked for, by path in the merged filesystem.
pub const PACKAGE_DBS: &[(&str, Format)] = &[("/var/lib/dpkg/status", Format::Dpkg), ("/lib/apk/db/installed", Format::Apk)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dpkg,
    Apk,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dpkg => "dpkg",
            Format::Apk => "apk",
        }
    }
}

/// The format of the package database at `path`, if it is one.
pub fn format_of(path: &str) -> Option<Format> {
    PACKAGE_DBS.iter().find(|(p, _)| *p == path).map(|(_, f)| *f)
}

/// One parsed database: the content hash of the file it was read from (to
/// match it with the entry the merged filesystem shows) and name → version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDb {
    #[serde(rename = "h")]
    pub sha256: String,
    #[serde(rename = "p")]
    pub packages: BTreeMap<String, String>,
}

/// Name → version of every installed package. A second package with the
/// same name (dpkg multi-arch) is keyed `name:arch`.
pub fn parse(format: Format, text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for paragraph in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut installed) = (None, None, None, format == Format::Apk);
        for line in paragraph.lines() {
            let (key, value) = match format {
                Format::Dpkg => match line.split_once(':') {
                    // Continuation lines (descriptions, conffiles) start with a space.
                    Some((k, v)) if !line.starts_with([' ', '\t']) => (k, v.trim()),
                    _ => continue,
                },
                Format::Apk => match line.split_once(':') {
                    Some((k, v)) if k.len() == 1 => (k, v),
                    _ => continue,
                },
            };
            match (format, key) {
                (Format::Dpkg, "Package") | (Format::Apk, "P") => name = Some(value),
                (Format::Dpkg, "Version") | (Format::Apk, "V") => version = Some(value),
                (Format::Dpkg, "Architecture") | (Format::Apk, "A") => arch = Some(value),
                (Format::Dpkg, "Status") => installed = value.ends_with(" installed"),
                _ => {}
            }
        }
        if let (Some(name), Some(version), true) = (name, version, installed) {
            let key = if out.contains_key(name) { format!("{name}:{}", arch.unwrap_or("?")) } else { name.to_owned() };
            out.insert(key, version.to_owned());
        }
    }
    out
}

/// Packages added, removed and changed version, each in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageChanges {
    pub added: Vec<(String, String)>,
    pub removed: Vec<(String, String)>,
    /// Name, version before, version after.
    pub changed: Vec<(String, String, String)>,
}

pub fn diff_packages(from: &BTreeMap<String, String>, to: &BTreeMap<String, String>) -> PackageChanges {
    let mut out = PackageChanges::default();
    for (name, v) in from {
        match to.get(name) {
            None => out.removed.push((name.clone(), v.clone())),
            Some(w) if w != v => out.changed.push((name.clone(), v.clone(), w.clone())),
            Some(_) => {}
        }
    }
    out.added = to.iter().filter(|(n, _)| !from.contains_key(*n)).map(|(n, v)| (n.clone(), v.clone())).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dpkg_status_keeping_installed_packages_only() {
        let status =
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\nDescription: GNU C\n Library: x\n\n\
                      Package: old\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                      Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9\n";
        let p = parse(Format::Dpkg, status);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), [("libc6".into(), "2.36-9".into()), ("libc6:i386".into(), "2.36-9".into())]);
    }

    #[test]
    fn parses_apk_installed_and_diffs() {
        let a = parse(Format::Apk, "C:Q1x=\nP:musl\nV:1.2.4-r1\nA:x86_64\n\nP:busybox\nV:1.36.1-r0\n\nP:zlib\nV:1.3-r0\n");
        let b = parse(Format::Apk, "P:musl\nV:1.2.4-r2\n\nP:busybox\nV:1.36.1-r0\n\nP:curl\nV:8.5.0-r0\n");
        let d = diff_packages(&a, &b);
        assert_eq!(d.added, [("curl".to_string(), "8.5.0-r0".to_string())]);
        assert_eq!(d.removed, [("zlib".to_string(), "1.3-r0".to_string())]);
        assert_eq!(d.changed, [("musl".to_string(), "1.2.4-r1".to_string(), "1.2.4-r2".to_string())]);
        assert_eq!(format_of("/lib/apk/db/installed"), Some(Format::Apk));
        assert_eq!(format_of("/etc/passwd"), None);
    }
}
