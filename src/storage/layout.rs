//! Every object key Wharf writes, in one place.
//!
//! ```text
//! <prefix>/
//!   blobs/<algorithm>/<first 2 hex>/<hex>   content-addressed, written once, immutable
//!   blobs/<algorithm>/<first 2 hex>/.partial-<uuid>
//!                                           a blob being written (filesystem): a join of
//!                                           parts, or a body whose digest came with it;
//!                                           renamed to its blob once whole and verified
//!   uploads/<upload id>/<part id>           parts of an in-progress upload (S3)
//!   uploads/<upload id>/data                an in-progress upload (filesystem)
//! ```
//! On the filesystem an upload grows `data` in place and is renamed to its
//! address once verified, so a blob file is whole or absent. A body that
//! brings its digest (a monolithic push) is written beside its address and
//! renamed there; on S3 it goes to the address as a multipart upload that
//! is completed only once verified.
//! The prefix is the S3 `prefix` setting (empty on the filesystem, whose root
//! is `storage.path`).
//!
//! No write is create-only (`PutMode::Create`): an upload part's key holds a
//! fresh UUID, and a blob's key is its digest, so whatever an earlier attempt
//! left there is this write's own bytes. Plain overwrites make a retried
//! write safe, and `BlobStore` retries one that the store refused with
//! `409 Conflict`.

use object_store::path::Path;

use crate::domain::Digest;

const BLOBS: &str = "blobs";
const UPLOADS: &str = "uploads";
/// The name of a blob's temporary file starts with this.
const TEMPORARY_PREFIX: &str = ".partial-";
/// ... and started with this before whole bodies were written beside their
/// address too: leftovers of older versions are still swept.
const OLD_TEMPORARY_PREFIX: &str = ".concat-";

pub fn blob(digest: &Digest) -> Path {
    let hex = digest.hex();
    Path::from_iter([BLOBS, digest.algorithm().as_str(), &hex[..2], hex])
}

/// A backup destination (`wharf backup create`) holds the blobs at the keys
/// above, shared by all its snapshots, and per snapshot:
/// `snapshots/<id>/wharf.db` (the metadata), `snapshots/<id>/blobs.txt` (the
/// blobs it references, `<digest> <size>` per line) and, written last,
/// `snapshots/<id>/manifest.json`: a snapshot without one is unfinished.
const SNAPSHOTS: &str = "snapshots";

pub fn backup_snapshots() -> Path {
    Path::from(SNAPSHOTS)
}

pub fn backup_metadata(snapshot: &str) -> Path {
    Path::from_iter([SNAPSHOTS, snapshot, "wharf.db"])
}

pub fn backup_blob_list(snapshot: &str) -> Path {
    Path::from_iter([SNAPSHOTS, snapshot, "blobs.txt"])
}

pub fn backup_manifest(snapshot: &str) -> Path {
    Path::from_iter([SNAPSHOTS, snapshot, "manifest.json"])
}

/// The snapshot a key under `snapshots/` belongs to.
pub fn backup_snapshot_of(key: &Path) -> Option<String> {
    let mut parts = key.parts();
    (parts.next()?.as_ref() == SNAPSHOTS).then_some(())?;
    Some(parts.next()?.as_ref().to_owned())
}

/// The prefix of every blob key, for listing what a backup destination holds.
pub fn blobs_root() -> Path {
    Path::from(BLOBS)
}

pub fn upload_part(upload_id: &str, part_id: &str) -> Path {
    Path::from_iter([UPLOADS, upload_id, part_id])
}

/// A fresh temporary key beside `target`, for bytes that are renamed to
/// `target` once whole (and verified).
pub fn temporary_beside(target: &Path) -> Path {
    let name = format!("{TEMPORARY_PREFIX}{}", uuid::Uuid::new_v4());
    let mut parts: Vec<_> = target.parts().collect();
    parts.pop();
    Path::from_iter(parts.into_iter().chain([name.as_str().into()]))
}

/// The prefixes under which every object Wharf writes lies, for sweeping strays.
pub fn roots() -> [Path; 2] {
    [Path::from(BLOBS), Path::from(UPLOADS)]
}

/// What a key under `blobs/` or `uploads/` is, for sweeping strays.
#[derive(Debug, PartialEq)]
pub enum KeyKind {
    /// A content-addressed blob.
    Blob(Digest),
    /// A part or file of the upload with this id.
    Upload(String),
    /// A temporary file of a blob write cut short.
    Temporary,
    Other,
}

pub fn classify(key: &Path) -> KeyKind {
    let parts: Vec<&str> = key.as_ref().split('/').collect();
    match parts.as_slice() {
        [BLOBS, _, _, name] if name.starts_with(TEMPORARY_PREFIX) || name.starts_with(OLD_TEMPORARY_PREFIX) => KeyKind::Temporary,
        [BLOBS, algorithm, _, hex] => match Digest::parse(&format!("{algorithm}:{hex}")) {
            Ok(d) if blob(&d) == *key => KeyKind::Blob(d),
            _ => KeyKind::Other,
        },
        [UPLOADS, id, _] => KeyKind::Upload((*id).to_owned()),
        _ => KeyKind::Other,
    }
}

/// The single file an upload grows on the filesystem.
pub fn upload_data(upload_id: &str) -> Path {
    Path::from_iter([UPLOADS, upload_id, "data"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_keys_for_the_stray_sweep() {
        let d = Digest::parse(&format!("sha256:ab{}", "0".repeat(62))).unwrap();
        assert_eq!(classify(&blob(&d)), KeyKind::Blob(d.clone()));
        assert_eq!(classify(&upload_data("u1")), KeyKind::Upload("u1".into()));
        assert_eq!(classify(&upload_part("u1", "p")), KeyKind::Upload("u1".into()));
        assert_eq!(classify(&Path::from("blobs/sha256/ab/.concat-x")), KeyKind::Temporary);
        assert_eq!(classify(&Path::from("blobs/sha256/ab/.partial-x")), KeyKind::Temporary);
        let temporary = temporary_beside(&blob(&d));
        assert!(temporary.as_ref().starts_with("blobs/sha256/ab/.partial-"), "{temporary}");
        assert_eq!(classify(&temporary), KeyKind::Temporary);
        // The sweep's roots hold every kind of key.
        let [blobs, uploads] = roots();
        assert!(blob(&d).prefix_matches(&blobs) && temporary.prefix_matches(&blobs));
        assert!(upload_data("u1").prefix_matches(&uploads) && upload_part("u1", "p").prefix_matches(&uploads));
        // A blob file under the wrong fan-out directory is not taken for the blob.
        assert_eq!(classify(&Path::from(format!("blobs/sha256/cd/ab{}", "0".repeat(62)))), KeyKind::Other);
        assert_eq!(classify(&Path::from("blobs/sha256/ab/short")), KeyKind::Other);
        assert_eq!(classify(&Path::from("elsewhere/x")), KeyKind::Other);
    }

    #[test]
    fn blob_keys_fan_out_by_hex_prefix() {
        let d = Digest::parse(&format!("sha256:ab{}", "0".repeat(62))).unwrap();
        assert_eq!(blob(&d).as_ref(), format!("blobs/sha256/ab/ab{}", "0".repeat(62)));
    }
}
