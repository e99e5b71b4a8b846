//! A layer's file index: every entry of its tar stream with the attributes
//! a diff compares and the sha256 of each regular file's content.
//!
//! The layer is read once, as a stream: decompressed on the fly (gzip with
//! several members as eStargz writes them, zstd with several frames, or a
//! plain tar; told apart by their magic bytes, not by a media type a client
//! chose), parsed with the `tar` crate (PAX, GNU long names) and hashed as it
//! passes. Nothing is buffered but one read buffer and the entries, and every
//! dimension a hostile layer could inflate is bounded by [`Limits`].

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use super::packages::{self, PackageDb};

/// How far one layer may go before it is refused.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Tar entries, whiteouts included.
    pub max_entries: usize,
    /// Sum of the sizes the entries declare.
    pub max_total_size: u64,
    /// Bytes of one path (or link target) after PAX / GNU long names.
    pub max_path_len: usize,
    /// Bytes of tar metadata (headers, long names, PAX records) before one entry.
    pub max_metadata: u64,
    /// Wall time for reading the whole layer.
    pub max_time: Duration,
    /// A package database larger than this is hashed but not parsed.
    pub max_package_db: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A large real layer (node_modules, a distro's /usr) has ~100k files.
            max_entries: 500_000,
            max_total_size: 32 << 30,
            max_path_len: 4096,
            max_metadata: 1 << 20,
            max_time: Duration::from_secs(300),
            max_package_db: 16 << 20,
        }
    }
}

/// Why a layer has no index. Everything but `Source` is the layer's fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayerError {
    #[error("the layer has more than {0} entries")]
    TooManyEntries(usize),
    #[error("the layer's entries declare more than {0} bytes")]
    TooLarge(u64),
    #[error("a path in the layer is longer than {0} bytes")]
    PathTooLong(usize),
    #[error("unsafe path in the layer: {0:?} (absolute or with ..)")]
    UnsafePath(String),
    #[error("tar metadata before one entry exceeds {0} bytes")]
    MetadataTooLarge(u64),
    #[error("reading the layer took longer than {0:?}")]
    Timeout(Duration),
    #[error("the layer is not a valid tar stream (plain, gzip or zstd): {0}")]
    Corrupt(String),
    /// The bytes could not be read from storage: not the layer's fault.
    #[error("reading the layer from storage: {0}")]
    Source(String),
}

/// Wraps a storage failure in the `io::Error` a caller's reader returns, so
/// it is reported as [`LayerError::Source`] and not as a corrupt layer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
            EntryKind::Char => "char",
            EntryKind::Block => "block",
            EntryKind::Fifo => "fifo",
        }
    }
}

/// One tar entry. Paths are absolute-style (`/etc/passwd`), normalised
/// (no `.`, no empty components, no trailing slash). Field names are short
/// because a stored index holds up to [`Limits::max_entries`] of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    #[serde(rename = "p")]
    pub path: String,
    #[serde(rename = "t")]
    pub kind: EntryKind,
    /// Permission bits (`0o7777`), without the file type.
    #[serde(rename = "m")]
    pub mode: u32,
    #[serde(rename = "u")]
    pub uid: u64,
    #[serde(rename = "g")]
    pub gid: u64,
    #[serde(rename = "s")]
    pub size: u64,
    /// Hex sha256 of the content (regular files, and hard links to one).
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target as written, or a hard link's normalised path.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The index of one layer, in tar order, with the package databases it
/// writes parsed (so a warm diff of packages reads no layer either).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIndex {
    #[serde(rename = "e")]
    pub entries: Vec<FileEntry>,
    /// Path → the packages of the database written there by this layer.
    #[serde(rename = "k", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub packages: BTreeMap<String, PackageDb>,
}

/// Counts what the tar parser reads between the entries the index sees, so
/// metadata (a GNU long name or a PAX record the `tar` crate reads into
/// memory whole) cannot grow without bound, and checks the clock.
struct Budgeted<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
    allowed: Rc<Cell<u64>>,
    deadline: Instant,
}

#[derive(Debug, thiserror::Error)]
#[error("over budget")]
struct OverBudget;

#[derive(Debug, thiserror::Error)]
#[error("out of time")]
struct OutOfTime;

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() > self.deadline {
            return Err(io::Error::other(OutOfTime));
        }
        let left = self.allowed.get().saturating_sub(self.consumed.get());
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::other(OverBudget));
        }
        let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..take])?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Reads a whole layer (compressed or not) and returns its index.
pub fn index_layer<R: Read>(mut reader: R, limits: &Limits) -> Result<LayerIndex, LayerError> {
    let start = Instant::now();
    let io_err = |e: io::Error| classify(e, limits);
    // Sniff the first bytes, then hand them back in front of the rest.
    let mut magic = [0u8; 4];
    let mut have = 0;
    while have < magic.len() {
        match reader.read(&mut magic[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        }
    }
    let stream = io::Cursor::new(magic[..have].to_vec()).chain(reader);
    let decoded: Box<dyn Read> = if magic[..have].starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(stream))
    } else if magic[..have] == ZSTD_MAGIC {
        // The streaming decoder reads every frame, not only the first.
        Box::new(zstd::stream::read::Decoder::new(stream).map_err(io_err)?)
    } else {
        Box::new(stream)
    };
    let consumed = Rc::new(Cell::new(0));
    let allowed = Rc::new(Cell::new(limits.max_metadata));
    let budgeted = Budgeted { inner: decoded, consumed: consumed.clone(), allowed: allowed.clone(), deadline: start + limits.max_time };
    let mut archive = tar::Archive::new(budgeted);
    let mut entries = Vec::new();
    let mut package_dbs = BTreeMap::new();
    let mut declared: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        if entries.len() >= limits.max_entries {
            return Err(LayerError::TooManyEntries(limits.max_entries));
        }
        let size = entry.size();
        declared = declared.saturating_add(size);
        if declared > limits.max_total_size {
            return Err(LayerError::TooLarge(limits.max_total_size));
        }
        // The content, its padding to 512 bytes, then the next entry's metadata.
        allowed.set(consumed.get() + size.div_ceil(512) * 512 + limits.max_metadata);
        let kind = match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => EntryKind::File,
            EntryType::Directory => EntryKind::Dir,
            EntryType::Symlink => EntryKind::Symlink,
            EntryType::Link => EntryKind::Hardlink,
            EntryType::Char => EntryKind::Char,
            EntryType::Block => EntryKind::Block,
            EntryType::Fifo => EntryKind::Fifo,
            // PAX global headers and unknown types describe no file.
            _ => continue,
        };
        let path = normalise(&entry.path_bytes(), limits)?;
        if path == "/" {
            continue;
        }
        let header = entry.header();
        let mode = header.mode().map_err(io_err)? & 0o7777;
        let uid = header.uid().map_err(io_err)?;
        let gid = header.gid().map_err(io_err)?;
        let link = match kind {
            EntryKind::Symlink => Some(link_text(entry.link_name_bytes().as_deref(), limits)?),
            EntryKind::Hardlink => Some(normalise(entry.link_name_bytes().as_deref().unwrap_or_default(), limits)?),
            _ => None,
        };
        // A package database small enough is kept while it is hashed.
        let package_format = packages::format_of(&path).filter(|_| kind == EntryKind::File && size <= limits.max_package_db);
        let mut package_text = Vec::new();
        let sha256 = if kind == EntryKind::File {
            let mut hasher = Sha256::new();
            let mut read: u64 = 0;
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err(e)),
                };
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                if package_format.is_some() && package_text.len() as u64 + n as u64 <= limits.max_package_db {
                    package_text.extend_from_slice(&buf[..n]);
                }
                read += n as u64;
            }
            // A decoder that stops early must not yield a hash of half a file.
            let sparse = entry.header().entry_type() == EntryType::GNUSparse;
            if read != size && !sparse {
                return Err(LayerError::Corrupt(format!("{path}: {read} of {size} bytes before the stream ends")));
            }
            Some((hex::encode(hasher.finalize()), read))
        } else {
            None
        };
        // A sparse file's content is its expanded size, not its stored one.
        let (sha256, size) = match sha256 {
            Some((sha, read)) => (Some(sha), read),
            None => (None, 0),
        };
        if let (Some(format), Some(sha)) = (package_format, &sha256) {
            let parsed = packages::parse(format, &String::from_utf8_lossy(&package_text));
            package_dbs.insert(path.clone(), PackageDb { sha256: sha.clone(), packages: parsed });
        }
        entries.push(FileEntry { path, kind, mode, uid, gid, size, sha256, link });
    }
    link_hard_links(&mut entries);
    Ok(LayerIndex { entries, packages: package_dbs })
}

/// A hard link shares its target's content: give it the target's hash and
/// size, so a change to the content shows on every name of the file.
fn link_hard_links(entries: &mut [FileEntry]) {
    let files: HashMap<String, (u64, Option<String>)> =
        entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| (e.path.clone(), (e.size, e.sha256.clone()))).collect();
    for e in entries.iter_mut().filter(|e| e.kind == EntryKind::Hardlink) {
        if let Some((size, sha)) = e.link.as_ref().and_then(|l| files.get(l)) {
            e.size = *size;
            e.sha256 = sha.clone();
        }
    }
}

/// Maps a read error to its cause: the budget, the clock, storage, or a
/// layer that does not decode.
fn classify(e: io::Error, limits: &Limits) -> LayerError {
    if let Some(inner) = e.get_ref() {
        if inner.is::<OverBudget>() {
            return LayerError::MetadataTooLarge(limits.max_metadata);
        }
        if inner.is::<OutOfTime>() {
            return LayerError::Timeout(limits.max_time);
        }
        if let Some(source) = inner.downcast_ref::<SourceError>() {
            return LayerError::Source(source.0.clone());
        }
    }
    LayerError::Corrupt(printable(&e.to_string()))
}

/// The tar reader's messages quote raw header bytes of the hostile layer;
/// they end up in API answers, logs and the one-line release history, so
/// anything but printable ASCII is escaped and the text is capped.
fn printable(message: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    for c in message.chars() {
        if out.len() >= MAX {
            out.push('…');
            break;
        }
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// A tar path as `/a/b`: `./` and empty components dropped; absolute paths
/// and `..` refused (a layer must not reach outside its root).
pub fn normalise(raw: &[u8], limits: &Limits) -> Result<String, LayerError> {
    if raw.len() > limits.max_path_len {
        return Err(LayerError::PathTooLong(limits.max_path_len));
    }
    let text = String::from_utf8_lossy(raw);
    if text.starts_with('/') {
        return Err(LayerError::UnsafePath(text.into_owned()));
    }
    let mut out = String::with_capacity(text.len() + 1);
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(LayerError::UnsafePath(text.into_owned())),
            part => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn link_text(raw: Option<&[u8]>, limits: &Limits) -> Result<String, LayerError> {
    let raw = raw.unwrap_or_default();
    if raw.len() > limits.max_path_len {
        return Err(LayerError::PathTooLong(limits.max_path_len));
    }
    Ok(String::from_utf8_lossy(raw).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(kind: EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(100);
        h
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            b.append_data(&mut header(EntryType::Regular, data.len() as u64, 0o644), path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn indexes_plain_gzip_multi_member_and_zstd_multi_frame() {
        let tar = tar_of(&[("./etc/a", b"hello"), ("etc/b/", b"")]);
        let expected = index_layer(&tar[..], &Limits::default()).unwrap();
        assert_eq!(expected.entries[0].path, "/etc/a");
        assert_eq!(expected.entries[0].sha256.as_deref(), Some(hex::encode(Sha256::digest(b"hello")).as_str()));
        assert_eq!((expected.entries[0].uid, expected.entries[0].gid, expected.entries[0].mode), (1000, 100, 0o644));
        let (first, second) = tar.split_at(700);
        let mut multi = gzip(first);
        multi.extend(gzip(second));
        assert_eq!(index_layer(&multi[..], &Limits::default()).unwrap(), expected);
        let mut frames = zstd::encode_all(first, 1).unwrap();
        frames.extend(zstd::encode_all(second, 1).unwrap());
        assert_eq!(index_layer(&frames[..], &Limits::default()).unwrap(), expected);
    }

    #[test]
    fn refuses_hostile_layers() {
        let limits = Limits::default();
        for bad in ["../x", "a/../../x", "/etc/passwd"] {
            // The builder refuses such names; write the header by hand.
            let mut h = header(EntryType::Regular, 0, 0o644);
            h.as_old_mut().name[..bad.len()].copy_from_slice(bad.as_bytes());
            h.set_cksum();
            let mut tar = h.as_bytes().to_vec();
            tar.extend_from_slice(&[0u8; 1024]);
            assert!(matches!(index_layer(&tar[..], &limits), Err(LayerError::UnsafePath(_))), "{bad}");
        }
        let gz = gzip(&tar_of(&[("a", &[7u8; 4000])]));
        assert!(matches!(index_layer(&gz[..gz.len() / 2], &limits), Err(LayerError::Corrupt(_))));
        let few = Limits { max_entries: 2, ..Limits::default() };
        assert_eq!(index_layer(&tar_of(&[("a", b""), ("b", b""), ("c", b"")])[..], &few), Err(LayerError::TooManyEntries(2)));
        // A header that declares 1 TiB with no content behind it.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(EntryType::Regular, 1 << 40, 0o644);
        h.set_path("big").unwrap();
        h.set_cksum();
        b.get_mut().extend_from_slice(h.as_bytes());
        assert_eq!(index_layer(&b.get_ref()[..], &limits), Err(LayerError::TooLarge(limits.max_total_size)));
    }

    #[test]
    fn long_gnu_names_are_bounded_by_the_metadata_budget() {
        let long = "d/".repeat(3000) + "f";
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut header(EntryType::Regular, 1, 0o644), &long, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let small = Limits { max_metadata: 2048, ..Limits::default() };
        assert_eq!(index_layer(&tar[..], &small), Err(LayerError::MetadataTooLarge(2048)));
        let roomy = Limits { max_path_len: 8192, ..Limits::default() };
        assert_eq!(index_layer(&tar[..], &roomy).unwrap().entries[0].path, format!("/{long}"));
    }

    #[test]
    fn hard_links_take_their_targets_content() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut header(EntryType::Regular, 3, 0o755), "bin/a", &b"abc"[..]).unwrap();
        b.append_link(&mut header(EntryType::Link, 0, 0o755), "bin/b", "bin/a").unwrap();
        b.append_link(&mut header(EntryType::Symlink, 0, 0o777), "bin/c", "../x/a").unwrap();
        let index = index_layer(&b.into_inner().unwrap()[..], &Limits::default()).unwrap();
        let link = &index.entries[1];
        assert_eq!((link.kind, link.link.as_deref(), link.size), (EntryKind::Hardlink, Some("/bin/a"), 3));
        assert_eq!(link.sha256, index.entries[0].sha256);
        assert_eq!(index.entries[2].link.as_deref(), Some("../x/a"));
    }

    #[test]
    fn corrupt_layer_messages_are_one_printable_capped_line() {
        let text = super::printable(&format!("cksum for \u{1}\nß{}", "x".repeat(500)));
        assert!(text.starts_with("cksum for \\u{1}\\n\\u{df}"), "{text}");
        assert!(text.chars().all(|c| c.is_ascii_graphic() || c == ' ' || c == '…') && text.len() < 220, "{text}");
    }
}
