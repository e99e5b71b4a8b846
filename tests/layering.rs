//! The layering rule, enforced: every `crate::` path in `src/` is read, and
//! an edge from one top-level module to another must point down the layers
//! in `LAYERS`. Also: no SQLite or PostgreSQL type outside `src/db`, and no source file
//! over 600 lines.
//!
//! `KNOWN_*` lists hold violations still being removed (all empty now: every
//! rule holds, keep it so). They only shrink: a
//! listed violation that no longer exists fails the test too, so the list
//! cannot hide a new one behind an old entry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module and the modules it may use. Anything not listed here
/// (`lib.rs`, `main.rs`) is the composition root and may use everything.
const LAYERS: &[(&str, &[&str])] = &[
    // Validated newtypes and typed configuration: the bottom.
    ("domain", &[]),
    ("config", &["domain"]),
    // Infrastructure that knows nothing of registries.
    ("datadir", &[]),
    ("telemetry", &["config"]),
    // Pure policy and pure file-index logic: values in, decisions out.
    ("governance", &["domain", "config"]),
    ("diff", &["domain"]),
    // Persistence: metadata and bytes.
    ("db", &["domain", "config"]),
    ("storage", &["domain", "config"]),
    // Use-cases. `registry` and `auth` are peers and never call each other.
    ("registry", &["domain", "config", "governance", "diff", "db", "storage"]),
    ("auth", &["domain", "config", "governance", "db"]),
    // Webhook delivery of the outbox: database state in, HTTP out; scheduled by `jobs`.
    ("events", &["domain", "config", "db"]),
    ("jobs", &["domain", "config", "registry", "auth", "events"]),
    // Metrics and probes: beside `jobs`; it reads `db` and `storage` only to
    // probe them (readiness) and count (gauges), never for client data.
    ("observability", &["domain", "config", "db", "storage", "registry"]),
    // The edges: HTTP, transport, command line. `api` never touches SQL or
    // object keys: it reaches `db` and `storage` only through use-cases.
    // The transport: `registry` only for the `LocalFile` sendfile sends.
    // `api` uses `server`, never the other way round.
    ("server", &["config", "registry"]),
    ("api", &["domain", "config", "governance", "diff", "registry", "auth", "telemetry", "server", "observability"]),
    // The web console: an edge beside `api` (HTML instead of JSON) over the
    // same use-cases (and the probes, for the admin page); it never reaches
    // `db` or `storage` directly. `server` only for the client's address
    // (behind a trusted proxy), as `api`.
    ("console", &["domain", "config", "governance", "registry", "auth", "observability", "server"]),
    (
        "cli",
        &["domain", "config", "datadir", "telemetry", "governance", "diff", "registry", "auth", "jobs", "server", "api", "db", "storage"],
    ),
];

/// (from module, to module, file) edges that break the rule today.
const KNOWN_EDGES: &[(&str, &str, &str)] = &[];

/// Files outside `src/db` that still name a `rusqlite` or `postgres` type.
const KNOWN_SQLITE_OUTSIDE_DB: &[&str] = &[];

/// Files over the length limit.
const KNOWN_LONG_FILES: &[&str] = &[];

const MAX_LINES: usize = 600;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to; `None` for the crate
/// root and for the separate binaries under `src/bin`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next()?;
    if first == "bin" || first == "lib.rs" || first == "main.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_owned())
}

/// The source without comments, so a doc sentence naming `crate::db` is not an edge.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named by a `crate::` path, including the members
/// of a grouped `use crate::{a::x, b}`.
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("crate::") {
        let start = from + found;
        from = start + "crate::".len();
        // `wharf_crate::x` or `$crate::` are not this crate's paths.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_' || bytes[start - 1] == b'$') {
            continue;
        }
        let rest = &text[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut at_item_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        at_item_start = true;
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 && at_item_start {
                    if c.is_alphanumeric() || c == '_' {
                        item.push(c);
                    } else if !item.is_empty() {
                        used.insert(item.clone());
                        at_item_start = false;
                    }
                }
            }
            if at_item_start && !item.is_empty() {
                used.insert(item);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used.remove("self");
    used
}

/// The ratchet: every violation found must be listed, and every listed one
/// must still exist.
fn assert_only_known<T: Ord + std::fmt::Debug>(found: BTreeSet<T>, known: BTreeSet<T>, what: &str, list: &str) {
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(new.is_empty(), "{what}: {new:#?}");
    assert!(gone.is_empty(), "fixed, remove from {list} in tests/layering.rs: {gone:#?}");
}

fn layers() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    LAYERS.iter().map(|(m, allowed)| (*m, allowed.iter().copied().collect())).collect()
}

#[test]
fn every_module_is_placed_in_a_layer() {
    let src = root().join("src");
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let unplaced: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).filter(|m| !layers.contains_key(m.as_str())).collect();
    assert!(unplaced.is_empty(), "modules missing from LAYERS in tests/layering.rs: {unplaced:?}");
}

#[test]
fn calls_only_go_down_the_layers() {
    let src = root().join("src");
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = BTreeSet::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let Some(allowed) = layers.get(module.as_str()) else { continue };
        let text = strip_comments(&std::fs::read_to_string(file).expect("read source"));
        for used in used_modules(&text) {
            if used != module && layers.contains_key(used.as_str()) && !allowed.contains(used.as_str()) {
                let rel = file.strip_prefix(root()).expect("under root").display().to_string();
                found.insert((module.clone(), used, rel));
            }
        }
    }
    let known = KNOWN_EDGES.iter().map(|(a, b, f)| (a.to_string(), b.to_string(), f.to_string())).collect();
    assert_only_known(found, known, "upward or sideways imports (module -> module, file); see LAYERS", "KNOWN_EDGES");
}

#[test]
fn no_sqlite_type_outside_the_database_layer() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let found: BTreeSet<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("db")))
        .filter(|f| names_an_engine_type(&strip_comments(&std::fs::read_to_string(f).expect("read source"))))
        .map(|f| f.strip_prefix(root()).expect("under root").display().to_string())
        .collect();
    let known = KNOWN_SQLITE_OUTSIDE_DB.iter().map(|s| s.to_string()).collect();
    assert_only_known(found, known, "rusqlite or postgres named outside src/db (use db::Tx)", "KNOWN_SQLITE_OUTSIDE_DB");
}

/// Whether code names a database engine's crate: `rusqlite` anywhere, or a
/// `postgres::` path (a `postgres://` URL in a string is not one).
fn names_an_engine_type(code: &str) -> bool {
    code.contains("rusqlite") || code.contains("postgres::")
}

#[test]
fn the_engine_check_sees_postgres_paths_but_not_urls() {
    assert!(names_an_engine_type("use postgres::Client;"));
    assert!(names_an_engine_type("fn f(e: ::postgres::Error) {}"));
    assert!(names_an_engine_type("let c = rusqlite::Connection::open(p);"));
    assert!(!names_an_engine_type("let url = \"postgres://wharf@db/wharf\";"));
}

#[test]
fn no_source_file_is_over_the_length_limit() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    let found: BTreeSet<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).expect("read source").lines().count() > MAX_LINES)
        .map(|f| f.strip_prefix(root()).expect("under root").display().to_string())
        .collect();
    let known = KNOWN_LONG_FILES.iter().map(|s| s.to_string()).collect();
    assert_only_known(found, known, &format!("files over {MAX_LINES} lines, split them"), "KNOWN_LONG_FILES");
}

#[test]
fn the_path_reader_sees_grouped_and_nested_imports() {
    let text = "use crate::{db::{self, Db}, storage::BlobStore};\nlet x = crate::registry::f();\nuse crate::api;";
    let used = used_modules(text);
    assert_eq!(used, ["api", "db", "registry", "storage"].iter().map(|s| s.to_string()).collect());
}
