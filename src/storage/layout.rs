//! Every object key Wharf writes, in one place.
//!
//! ```text
//! <prefix>/
//!   blobs/<algorithm>/<first 2 hex>/<hex>   content-addressed, written once, immutable
//!   uploads/<upload id>/<part id>           parts of an in-progress upload (S3)
//!   uploads/<upload id>/data                an in-progress upload (filesystem)
//! ```
//! On the filesystem an upload grows `data` in place and is renamed to its
//! address once verified, so a blob file is whole or absent.
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

pub fn blob(digest: &Digest) -> Path {
    let hex = digest.hex();
    Path::from_iter(["blobs", digest.algorithm().as_str(), &hex[..2], hex])
}

pub fn upload_part(upload_id: &str, part_id: &str) -> Path {
    Path::from_iter(["uploads", upload_id, part_id])
}

/// What a key under `blobs/` or `uploads/` is, for sweeping strays.
#[derive(Debug, PartialEq)]
pub enum KeyKind {
    /// A content-addressed blob.
    Blob(Digest),
    /// A part or file of the upload with this id.
    Upload(String),
    /// A temporary file of a join cut short.
    Temporary,
    Other,
}

pub fn classify(key: &Path) -> KeyKind {
    let parts: Vec<&str> = key.as_ref().split('/').collect();
    match parts.as_slice() {
        ["blobs", _, _, name] if name.starts_with(".concat-") => KeyKind::Temporary,
        ["blobs", algorithm, _, hex] => match Digest::parse(&format!("{algorithm}:{hex}")) {
            Ok(d) if blob(&d) == *key => KeyKind::Blob(d),
            _ => KeyKind::Other,
        },
        ["uploads", id, _] => KeyKind::Upload((*id).to_owned()),
        _ => KeyKind::Other,
    }
}

/// The single file an upload grows on the filesystem.
pub fn upload_data(upload_id: &str) -> Path {
    Path::from_iter(["uploads", upload_id, "data"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_keys_for_the_stray_sweep() {
        let d = Digest::parse(&format!("sha256:ab{}", "0".repeat(62))).unwrap();
        assert_eq!(classify(&blob(&d)), KeyKind::Blob(d));
        assert_eq!(classify(&upload_data("u1")), KeyKind::Upload("u1".into()));
        assert_eq!(classify(&upload_part("u1", "p")), KeyKind::Upload("u1".into()));
        assert_eq!(classify(&Path::from("blobs/sha256/ab/.concat-x")), KeyKind::Temporary);
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
