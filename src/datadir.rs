//! The data directory at rest: who may read it, and which server owns it.
//!
//! Layering: called by the start-up code in `lib.rs` only; it knows file
//! names and permissions, nothing about SQL, object keys or HTTP.
//!
//! - The directory is created `0700` and the secrets in it (the SQLite
//!   database and its `-wal`/`-shm` files, which hold password hashes and
//!   the audit log, and `token.key`) are `0600`. Installs from before this
//!   rule are tightened at start-up, with one log line naming each change.
//!   Blob files keep the store's default modes: they are image content, and
//!   the `0700` directory above them already keeps other users out (a
//!   `storage.path` outside the data directory is the operator's to protect).
//! - `wharf serve` holds an exclusive `flock` on `<data_dir>/wharf.lock` for
//!   its lifetime, so a second server on the same directory (two writers on
//!   one SQLite file, two schedulers) refuses to start and names the holder.
//!   The kernel drops the lock when the process ends, however it ends; the
//!   file itself stays, and its contents mean something only while locked.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "wharf.lock";

/// Permission bits for group and others: none of them on anything secret.
const GROUP_OTHER: u32 = 0o077;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(
        "data directory {dir} is in use by another wharf server ({holder}); stop that server first, or give this one another --data-dir"
    )]
    Locked { dir: String, holder: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |e| DataDirError::Io(path.display().to_string(), e)
}

/// Creates the data directory, `0700`, if it does not exist yet (an
/// existing one is left to [`tighten`]).
pub fn create(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// This server's exclusive hold on a data directory; released when dropped
/// (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Takes the data directory's lock without waiting, and records this
/// process in the lock file; if another process holds it, the error names
/// that process as its lock file describes it.
pub fn lock(dir: &Path) -> Result<DataDirLock, DataDirError> {
    let path = dir.join(LOCK_FILE);
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path).map_err(io_error(&path))?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            let mut recorded = String::new();
            // Unreadable contents still mean "locked"; the holder is then unknown.
            let _ = file.read_to_string(&mut recorded);
            return Err(DataDirError::Locked { dir: dir.display().to_string(), holder: describe_holder(&recorded) });
        }
        Err(e) => return Err(DataDirError::Io(path.display().to_string(), e.into())),
    }
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let record = format!(
        "pid={}\nhost={host}\nsince={}\n",
        std::process::id(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    file.set_len(0).and_then(|()| file.write_all(record.as_bytes())).map_err(io_error(&path))?;
    Ok(DataDirLock { _file: file })
}

/// "pid 42 on host build-1, since 2026-…" from a lock file's `key=value` lines.
fn describe_holder(recorded: &str) -> String {
    let field = |key: &str| recorded.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::trim).filter(|v| !v.is_empty());
    match (field("pid"), field("host"), field("since")) {
        (Some(pid), host, since) => {
            format!("pid {pid} on host {}, since {}", host.unwrap_or("unknown"), since.unwrap_or("an unknown time"))
        }
        _ => "a process that has not recorded itself yet".into(),
    }
}

/// One permission change [`tighten`] made.
#[derive(Debug, PartialEq, Eq)]
pub struct Tightened {
    pub path: PathBuf,
    pub from: u32,
    pub to: u32,
}

impl std::fmt::Display for Tightened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:04o}→{:04o}", self.path.display(), self.from, self.to)
    }
}

/// Takes group and other permissions off each path that exists (missing
/// ones are skipped: SQLite creates `-wal`/`-shm` later with the database
/// file's mode). Returns the changes made, and the paths it could not
/// change with why.
pub fn tighten(paths: &[PathBuf]) -> (Vec<Tightened>, Vec<(PathBuf, std::io::Error)>) {
    let mut changed = Vec::new();
    let mut failed = Vec::new();
    for path in paths {
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                failed.push((path.clone(), e));
                continue;
            }
        };
        if mode & GROUP_OTHER == 0 {
            continue;
        }
        let to = mode & !GROUP_OTHER;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(to)) {
            Ok(()) => changed.push(Tightened { path: path.clone(), from: mode, to }),
            Err(e) => failed.push((path.clone(), e)),
        }
    }
    (changed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_directory_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).expect("first lock");
        // flock conflicts between open file descriptions, even in one process.
        match lock(dir.path()) {
            Err(DataDirError::Locked { holder, .. }) => {
                assert!(holder.starts_with(&format!("pid {} on host ", std::process::id())), "{holder}");
            }
            other => panic!("second lock: {other:?}"),
        }
        drop(held);
        lock(dir.path()).expect("lock again after release");
    }

    #[test]
    fn holder_description_copes_with_partial_records() {
        assert_eq!(describe_holder("pid=7\nhost=h\nsince=t\n"), "pid 7 on host h, since t");
        assert_eq!(describe_holder("pid=7\n"), "pid 7 on host unknown, since an unknown time");
        assert_eq!(describe_holder(""), "a process that has not recorded itself yet");
    }

    #[test]
    fn tighten_removes_group_and_other_bits_only() {
        let dir = tempfile::tempdir().unwrap();
        let loose = dir.path().join("loose");
        let tight = dir.path().join("tight");
        std::fs::write(&loose, b"x").unwrap();
        std::fs::write(&tight, b"x").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o764)).unwrap();
        std::fs::set_permissions(&tight, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (changed, failed) = tighten(&[loose.clone(), tight.clone(), dir.path().join("missing")]);
        assert!(failed.is_empty());
        assert_eq!(changed, vec![Tightened { path: loose.clone(), from: 0o764, to: 0o700 }]);
        assert_eq!(std::fs::metadata(&loose).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(std::fs::metadata(&tight).unwrap().permissions().mode() & 0o7777, 0o600);
    }
}
